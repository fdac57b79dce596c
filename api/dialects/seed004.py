"""Seed 004: `POST /v1/videos` with `duration` / `aspect_ratio`, `GET /v1/videos/{id}`,
`GET /v1/videos/{id}/download`.

The path is shared with the OpenAI dialect (`api.dialects.videos` tells them apart), and so
is the error shape: OpenAI's. Statuses: `queued`, `processing` (also while the video is
stored), `completed`, `failed` (a cancelled job too, with the error code `cancelled`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from temporalio.client import Client

from api.deps import CurrentTenant, S3Client, SettingsDep, TemporalClient
from api.dialects import openai
from api.dialects.bodies import parse
from api.dialects.common import read_live_job, signed_links, stream_video, submit
from api.errors import shaped_route
from providers.catalog import resolve_request
from reelay.jobs import JobStatus, JobView
from reelay.settings import Settings
from reelay.tenants import Tenant

DIALECT = "seed004"
FIELDS = ("duration", "aspect_ratio")

_NAMES = {"duration_seconds": "duration"}
_STATUS_WORDS = {
    JobStatus.QUEUED: "queued",
    JobStatus.PROCESSING: "processing",
    JobStatus.STORING: "processing",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "failed",
}

router = APIRouter(tags=["seed 004"], route_class=shaped_route(lambda _: openai.error_response))


class Seed004CreateVideo(BaseModel):
    """`POST /v1/videos` in seed 004's shape."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "google/veo-3.0",
                    "prompt": "A cinematic sunrise over misty mountains",
                    "duration": 6,
                    "aspect_ratio": "16:9",
                }
            ]
        },
    )

    model: str = Field(description="Catalog model id or alias, e.g. google/veo-3.0")
    prompt: str
    duration: StrictInt | None = Field(default=None, description="seconds")
    aspect_ratio: str | None = Field(default=None, description="16:9 or 9:16")


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


async def create(
    body: dict[str, Any],
    tenant: Tenant,
    client: Client,
    settings: Settings,
    idempotency_key: str | None = None,
) -> Seed004Video:
    order = parse(Seed004CreateVideo, body)
    resolved = resolve_request(
        prompt=order.prompt,
        model=order.model,
        duration_seconds=order.duration,
        aspect_ratio=order.aspect_ratio,
        names=_NAMES,
    )
    admission = await submit(
        client, settings, tenant, resolved, dialect=DIALECT, idempotency_key=idempotency_key
    )
    return render(admission.view, settings)


def render(view: JobView, settings: Settings) -> Seed004Video:
    video = Seed004Video(
        id=view.job_id,
        status=_STATUS_WORDS[view.status],
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
    if view.error is not None:
        video.error = Seed004Error(code=view.error.code, message=view.error.message)
    elif view.status is JobStatus.CANCELLED:
        video.error = Seed004Error(code="cancelled", message="the job was cancelled")
    return video


@router.get(
    "/v1/videos/{video_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp4": {}}}, 206: {"content": {"video/mp4": {}}}},
)
async def download_video(
    request: Request,
    video_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> Response:
    """The MP4 (honours `Range`); 404 until the job is completed."""
    view, _ = await read_live_job(client, s3, settings, video_id, tenant)
    return await stream_video(view, s3, settings, request)
