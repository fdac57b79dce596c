"""Seed 002: `POST /v2/videos/generate` and `GET /v2/jobs/{jobId}`.

Errors are `{"error": "<title>", "message": "<what and why>", "status": <HTTP status>}`
with the seed's titles (400 `Validation error`, 401 `Unauthorized`, 402 `Insufficient
credits`, 503 `Service unavailable`, ...). Statuses: QUEUED, PROCESSING (also while the
video is stored), COMPLETED, FAILED, CANCELLED.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictInt

from api.deps import CurrentTenant, IdempotencyKey, S3Client, SettingsDep, TemporalClient
from api.dialects.common import read_live_job, signed_links, submit
from api.dialects.webhooks import webhook_target
from api.errors import APIError, shaped_route
from providers.catalog import resolve_request
from reelay.jobs import JobStatus, JobView
from reelay.media import resolve_image
from reelay.settings import Settings

DIALECT = "seed002"
MAX_PROMPT_CHARS = 4000

_TITLES = {
    400: "Validation error",
    401: "Unauthorized",
    402: "Insufficient credits",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    429: "Too many requests",
    503: "Service unavailable",
}
_STATUS_WORDS = {
    JobStatus.QUEUED: "QUEUED",
    JobStatus.PROCESSING: "PROCESSING",
    JobStatus.STORING: "PROCESSING",
    JobStatus.COMPLETED: "COMPLETED",
    JobStatus.FAILED: "FAILED",
    JobStatus.CANCELLED: "CANCELLED",
}
_NAMES = {
    "duration_seconds": "parameters.duration",
    "aspect_ratio": "parameters.aspect_ratio",
    "resolution": "parameters.resolution",
    "negative_prompt": "parameters.negative_prompt",
    "audio": "parameters.audio",
    "image": "parameters.image_url",
}


def error_response(exc: APIError) -> JSONResponse:
    title = _TITLES.get(exc.status_code, "Internal error" if exc.status_code >= 500 else "Error")
    return JSONResponse(
        {"error": title, "message": exc.message, "status": exc.status_code},
        exc.status_code,
        headers=exc.headers,
    )


router = APIRouter(tags=["seed 002"], route_class=shaped_route(lambda _: error_response))


class Seed002Parameters(BaseModel):
    """The per-model options Reelay understands; any other key is refused by name."""

    model_config = ConfigDict(extra="forbid")

    duration: StrictInt | None = Field(default=None, description="seconds")
    aspect_ratio: str | None = Field(
        default=None, validation_alias=AliasChoices("aspect_ratio", "aspectRatio")
    )
    resolution: str | None = None
    negative_prompt: str | None = Field(
        default=None, validation_alias=AliasChoices("negative_prompt", "negativePrompt")
    )
    audio: bool | None = Field(
        default=None, validation_alias=AliasChoices("audio", "generate_audio", "generateAudio")
    )
    image_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("image_url", "imageUrl"),
        description="source image for image-to-video (https)",
    )


class Seed002GenerateVideo(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "prompt": "A paper boat drifting down a rainy street, cinematic",
                    "model": "kling-2.5-turbo-pro",
                    "webhookUrl": "https://example.com/hooks/video",
                    "webhookEvents": ["completed", "failed"],
                    "parameters": {"duration": 5, "aspect_ratio": "16:9"},
                }
            ]
        },
    )

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str
    webhookUrl: str | None = None
    webhookEvents: list[str] | None = Field(
        default=None, description="among progress, completed, failed, cancelled"
    )
    parameters: Seed002Parameters | None = None


class Seed002Accepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"jobId": "job_vid_b2c3", "status": "QUEUED"}]}
    )

    jobId: str
    status: str = "QUEUED"


class Seed002Result(BaseModel):
    videoUrl: str
    thumbnailUrl: str | None = None
    width: int
    height: int
    durationSeconds: float


class Seed002Error(BaseModel):
    code: str
    message: str


class Seed002Job(BaseModel):
    jobId: str
    status: str = Field(description="QUEUED, PROCESSING, COMPLETED, FAILED or CANCELLED")
    model: str
    prompt: str
    progress: int = Field(description="0 to 100")
    createdAt: datetime
    completedAt: datetime | None = None
    result: Seed002Result | None = None
    error: Seed002Error | None = None


@router.post("/v2/videos/generate", status_code=202)
async def generate_video(
    order: Seed002GenerateVideo,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Seed002Accepted:
    parameters = order.parameters or Seed002Parameters()
    resolved = resolve_request(
        prompt=order.prompt,
        model=order.model,
        duration_seconds=parameters.duration,
        resolution=parameters.resolution,
        aspect_ratio=parameters.aspect_ratio,
        negative_prompt=parameters.negative_prompt,
        audio=parameters.audio,
        with_image=parameters.image_url is not None,
        names=_NAMES,
    )
    webhook = webhook_target(
        order.webhookUrl,
        order.webhookEvents,
        settings,
        url_field="webhookUrl",
        events_field="webhookEvents",
    )
    image = await resolve_image(
        s3,
        settings,
        tenant.id,
        image_url=parameters.image_url,
        media_id=None,
        image_field="parameters.image_url",
    )
    admission = await submit(
        client,
        settings,
        tenant,
        resolved,
        dialect=DIALECT,
        image=image,
        webhook=webhook,
        idempotency_key=idempotency_key,
    )
    return Seed002Accepted(jobId=admission.view.job_id, status=_STATUS_WORDS[admission.view.status])


@router.get("/v2/jobs/{jobId}", response_model_exclude_none=True)
async def get_job(
    jobId: Annotated[str, Path(description="the id from POST /v2/videos/generate")],
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> Seed002Job:
    view, _ = await read_live_job(client, s3, settings, jobId, tenant)
    return render(view, settings)


def render(view: JobView, settings: Settings) -> Seed002Job:
    job = Seed002Job(
        jobId=view.job_id,
        status=_STATUS_WORDS[view.status],
        model=view.requested_model,
        prompt=view.prompt,
        progress=round(view.progress * 100),
        createdAt=view.created_at,
        completedAt=view.completed_at,
    )
    links = signed_links(view, settings)
    if view.status is JobStatus.COMPLETED and view.video is not None and links is not None:
        job.result = Seed002Result(
            videoUrl=links[0],
            thumbnailUrl=links[1],
            width=view.video.width,
            height=view.video.height,
            durationSeconds=view.video.duration_seconds,
        )
    if view.error is not None:
        job.error = Seed002Error(code=view.error.code, message=view.error.message)
    elif view.status is JobStatus.CANCELLED:
        job.error = Seed002Error(code="cancelled", message="the job was cancelled")
    return job
