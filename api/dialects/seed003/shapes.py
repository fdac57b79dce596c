"""Seed 003: `POST /api/v1/videos/generate` and `GET /api/v1/videos/generations/{id}`.

`x-api-key` authenticates; `X-Workspace-Id` is the job's app id. `duration` is required and
must be one of the seed's values for its three models (the catalog's for any other model).
`source_image` is a media id from `POST /v1/media`. Credits: 1 credit = $0.01, so
`credits_used` is the estimated cost rounded up to whole cents. Errors are
`{"error": {"code": "<UPPER_SNAKE>", "message"}}`. Statuses: `processing` (queued or
running), `completed`, `failed` (a cancelled job too, with code VIDEO_GENERATION_CANCELLED).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from api.dialects.links import signed_links
from api.dialects.outcome import failure_of
from providers.catalog import ModelSpec, find_model
from providers.families import PLATFORMS
from reelay.jobs import JobStatus, JobView
from reelay.settings import Settings

DIALECT = "seed003"
DEFAULT_MODEL = "kling-3.0-pro"
MICRO_USD_PER_CREDIT = 10_000
STATUS_PREFIX = "/api/v1/videos/generations"
# The seed's own duration table; it is narrower than the catalog's for these models.
SEED_DURATIONS = {"kling-3.0-pro": (5, 10), "veo-3.1": (4, 8), "runway-gen-4.5": (5, 10)}
SIZES = {"landscape": "16:9", "portrait": "9:16"}

NAMES = {
    "duration_seconds": "duration",
    "aspect_ratio": "size",
    "audio": "has_audio",
    "image": "source_image",
}


CANCELLED_MESSAGE = "Video generation was cancelled"
FAILURE_CODES = {
    JobStatus.FAILED: "VIDEO_GENERATION_FAILED",
    JobStatus.CANCELLED: "VIDEO_GENERATION_CANCELLED",
}


# Request examples (OpenAPI `Example` objects), the requests of seed 003's own docs.
EXAMPLES: dict[str, dict[str, Any]] = {
    "seed 003: text-to-video": {
        "summary": "seed 003's text-to-video example",
        "value": {
            "prompt": "A golden retriever running through a field of wildflowers at sunset",
            "size": "landscape",
            "duration": 5,
            "model": "kling-3.0-pro",
            "has_audio": False,
        },
    },
    "seed 003: Veo 3.1 portrait": {
        "summary": "seed 003: another model of its table, portrait, with audio",
        "value": {
            "prompt": "A golden retriever running through a field of wildflowers at sunset",
            "size": "portrait",
            "duration": 8,
            "model": "veo-3.1",
            "has_audio": True,
        },
    },
}


class Seed003GenerateVideo(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [example["value"] for example in EXAMPLES.values()]},
    )

    prompt: str
    size: Literal["landscape", "portrait"] = "landscape"
    duration: StrictInt = Field(description="seconds; one of the model's durations")
    model: str = DEFAULT_MODEL
    has_audio: StrictBool = False
    enhance_prompt: StrictBool = Field(
        default=False, description="applied where the model's provider has a switch for it"
    )
    source_image: uuid.UUID | None = Field(
        default=None, description="media id (POST /v1/media) for image-to-video"
    )


class Seed003Accepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "video_generation_id": "job_vid_7a8b",
                    "status": "processing",
                    "credits_used": 50,
                    "remaining_credits": 85,
                    "enhance_prompt_applied": False,
                    "status_url": "/api/v1/videos/generations/job_vid_7a8b",
                }
            ]
        }
    )

    video_generation_id: str
    status: str
    credits_used: int
    remaining_credits: int | None = None
    enhance_prompt_applied: bool
    status_url: str


class Seed003Video(BaseModel):
    media_id: str
    url: str
    thumbnail_url: str | None = None
    width: int
    height: int
    duration: int


class Seed003Error(BaseModel):
    code: str
    message: str


class Seed003ErrorBody(BaseModel):
    """An error as seed 003 answers it."""

    error: Seed003Error


class Seed003VideoGeneration(BaseModel):
    video_generation_id: str
    status: str = Field(description="processing, completed or failed")
    prompt: str
    size: str = Field(
        description="landscape, portrait (or square / standard for jobs of other dialects)"
    )
    duration: int
    has_audio: bool
    model: str
    enhance_prompt_applied: bool
    created_at: datetime
    video: Seed003Video | None = None
    error: Seed003Error | None = None


def seed_durations(spec: ModelSpec | None) -> tuple[int, ...] | None:
    if spec is None:
        return None
    return next((d for name, d in SEED_DURATIONS.items() if find_model(name) is spec), None)


def enhancement_applied(view: JobView) -> bool:
    """Prompt enhancement was asked for and the route serving the job has a switch for it
    (Veo's enhancePrompt, Hailuo's prompt_optimizer)."""
    spec = find_model(view.model)
    if not view.enhance_prompt or spec is None:
        return False
    return any(
        route.enhance_prompt
        and view.provider in PLATFORMS.get(route.adapter, (route.adapter,))
        and view.model_used in (route.upstream_model, route.image_upstream_model)
        for route in spec.routes
    )


def _size(aspect_ratio: str) -> str:
    named = {ratio: size for size, ratio in SIZES.items()}
    return named.get(aspect_ratio, "square" if aspect_ratio == "1:1" else "standard")


def render(view: JobView, settings: Settings) -> Seed003VideoGeneration:
    body = Seed003VideoGeneration(
        video_generation_id=view.job_id,
        status="processing",
        prompt=view.prompt,
        size=_size(view.aspect_ratio),
        duration=view.duration_seconds,
        has_audio=view.audio,
        model=view.requested_model,
        enhance_prompt_applied=enhancement_applied(view),
        created_at=view.created_at,
    )
    links = signed_links(view, settings)
    if view.status is JobStatus.COMPLETED and view.video is not None and links is not None:
        body.status = "completed"
        body.video = Seed003Video(
            media_id=view.job_id,
            url=links[0],
            thumbnail_url=links[1],
            width=view.video.width,
            height=view.video.height,
            duration=round(view.video.duration_seconds),
        )
    elif (failure := failure_of(view, cancelled=CANCELLED_MESSAGE)) is not None:
        body.status = "failed"
        message = CANCELLED_MESSAGE if view.status is JobStatus.CANCELLED else failure.message
        body.error = Seed003Error(code=FAILURE_CODES[view.status], message=message)
    return body
