"""Seed 004: `POST /v1/videos` with `duration` / `aspect_ratio`, `GET /v1/videos/{id}`,
`GET /v1/videos/{id}/download`.

The path is shared with the OpenAI dialect (`api.dialects.videos` tells them apart), and so
is the error shape: OpenAI's. Statuses: `queued`, `processing` (also while the video is
stored), `completed`, `failed` (a cancelled job too, with the error code `cancelled`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.dialects.catalog_fields import AspectRatio, Prompt, Seconds, TextModelId
from api.dialects.links import signed_links
from api.dialects.outcome import failure_of
from api.dialects.submission import Submission
from api.problem import parse
from providers.catalog import resolve_request
from reelay.jobs import JobStatus, JobView
from reelay.settings import Settings

DIALECT = "seed004"
FIELDS = ("duration", "aspect_ratio")

NAMES = {"duration_seconds": "duration"}
STATUS_WORDS = {
    JobStatus.QUEUED: "queued",
    JobStatus.PROCESSING: "processing",
    JobStatus.STORING: "processing",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "failed",
}


# Request examples (OpenAPI `Example` objects), the requests of seed 004's own docs.
EXAMPLES: dict[str, dict[str, Any]] = {
    "seed 004: full example": {
        "summary": "seed 004's full example",
        "value": {
            "model": "google/veo-3.0",
            "prompt": "A cinematic sunrise over misty mountains",
            "duration": 6,
        },
    },
    "seed 004: vertical": {
        "summary": "seed 004: with its aspect_ratio parameter",
        "value": {
            "model": "google/veo-3.0",
            "prompt": "A cinematic sunrise over misty mountains",
            "duration": 8,
            "aspect_ratio": "9:16",
        },
    },
}


class Seed004CreateVideo(BaseModel):
    """`POST /v1/videos` in seed 004's shape."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [example["value"] for example in EXAMPLES.values()]},
    )

    model: TextModelId
    prompt: Prompt
    duration: Seconds | None = None
    aspect_ratio: AspectRatio | None = None


class Seed004Error(BaseModel):
    code: str
    message: str


class Seed004Video(BaseModel):
    """A job as seed 004 shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "job_vid_9d0e",
                    "object": "video",
                    "status": "processing",
                    "model": "google/veo-3.0",
                    "prompt": "A cinematic sunrise over misty mountains",
                    "duration": 6,
                    "aspect_ratio": "16:9",
                    "progress": 40,
                    "created_at": "2026-11-21T10:00:00Z",
                }
            ]
        }
    )

    id: str
    object: str = "video"
    status: str = Field(description="queued, processing, completed or failed")
    model: str
    prompt: str
    duration: int
    aspect_ratio: str
    progress: int = Field(description="0 to 100")
    created_at: datetime
    completed_at: datetime | None = None
    video_url: str | None = Field(
        default=None, description="signed link (no key needed); or GET /v1/videos/{id}/download"
    )
    error: Seed004Error | None = None


def speaks(body: dict[str, Any]) -> bool:
    return any(field in body for field in FIELDS)


def render(view: JobView, settings: Settings) -> Seed004Video:
    video = Seed004Video(
        id=view.job_id,
        status=STATUS_WORDS[view.status],
        model=view.requested_model,
        prompt=view.prompt,
        duration=view.duration_seconds,
        aspect_ratio=view.aspect_ratio,
        progress=round(view.progress * 100),
        created_at=view.created_at,
        completed_at=view.completed_at,
    )
    links = signed_links(view, settings)
    if view.status is JobStatus.COMPLETED and links is not None:
        video.video_url = links[0]
    if (failure := failure_of(view)) is not None:
        video.error = Seed004Error(code=failure.code, message=failure.message)
    return video


def submission(body: dict[str, Any]) -> Submission:
    """Seed 004's submit body, parsed and resolved."""
    order = parse(Seed004CreateVideo, body)
    resolved = resolve_request(
        prompt=order.prompt,
        model=order.model,
        duration_seconds=order.duration,
        aspect_ratio=order.aspect_ratio,
        names=NAMES,
    )
    return Submission(dialect=DIALECT, resolved=resolved)
