"""Seed 002: `POST /v2/videos/generate` and `GET /v2/jobs/{jobId}`.

Errors are `{"error": "<title>", "message": "<what and why>", "status": <HTTP status>}`
with the seed's titles (400 `Validation error`, 401 `Unauthorized`, 402 `Insufficient
credits`, 503 `Service unavailable`, ...). Statuses: QUEUED, PROCESSING (also while the
video is stored), COMPLETED, FAILED, CANCELLED.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from api.dialects.catalog_fields import AspectRatio, ModelId, Resolution, Seconds
from api.dialects.links import signed_links
from api.dialects.outcome import failure_of
from api.dialects.submission import Submission
from api.dialects.webhooks import WebhookEvents, WebhookUrl
from api.problem import parse
from providers.catalog import resolve_request
from reelay.jobs import JobStatus, JobView
from reelay.settings import Settings

DIALECT = "seed002"
MAX_PROMPT_CHARS = 4000

TITLES = {
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
STATUS_WORDS = {
    JobStatus.QUEUED: "QUEUED",
    JobStatus.PROCESSING: "PROCESSING",
    JobStatus.STORING: "PROCESSING",
    JobStatus.COMPLETED: "COMPLETED",
    JobStatus.FAILED: "FAILED",
    JobStatus.CANCELLED: "CANCELLED",
}
NAMES = {
    "duration_seconds": "parameters.duration",
    "aspect_ratio": "parameters.aspect_ratio",
    "resolution": "parameters.resolution",
    "negative_prompt": "parameters.negative_prompt",
    "audio": "parameters.audio",
    "image": "parameters.image_url",
}


class Seed002Parameters(BaseModel):
    """The per-model options Reelay understands; any other key is refused by name."""

    model_config = ConfigDict(extra="forbid")

    duration: Seconds | None = None
    aspect_ratio: AspectRatio | None = Field(
        default=None, validation_alias=AliasChoices("aspect_ratio", "aspectRatio")
    )
    resolution: Resolution | None = None
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


# Request examples (OpenAPI `Example` objects): seed 002's common body with models from its
# table and their `parameters`.
EXAMPLES: dict[str, dict[str, Any]] = {
    "seed 002: common body": {
        "summary": "seed 002's common request body: prompt and model",
        "value": {
            "prompt": "A paper boat drifting down a rainy street, cinematic",
            "model": "veo-3",
        },
    },
    "seed 002: parameters": {
        "summary": "seed 002: a model of its table with the model's own parameters",
        "value": {
            "prompt": "A paper boat drifting down a rainy street, cinematic",
            "model": "kling-2.5-turbo-pro",
            "parameters": {"duration": 5, "aspect_ratio": "16:9"},
        },
    },
}


class Seed002GenerateVideo(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [example["value"] for example in EXAMPLES.values()]},
    )

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: ModelId
    webhookUrl: WebhookUrl | None = None
    webhookEvents: WebhookEvents | None = None
    parameters: Seed002Parameters | None = None


class Seed002ErrorBody(BaseModel):
    """An error as seed 002 answers it."""

    error: str = Field(description="the title, e.g. Validation error")
    message: str
    status: int


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


def render(view: JobView, settings: Settings) -> Seed002Job:
    job = Seed002Job(
        jobId=view.job_id,
        status=STATUS_WORDS[view.status],
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
    if (failure := failure_of(view)) is not None:
        job.error = Seed002Error(code=failure.code, message=failure.message)
    return job


def submission(body: dict[str, Any]) -> Submission:
    """Seed 002's submit body, parsed and resolved."""
    order = parse(Seed002GenerateVideo, body)
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
        names=NAMES,
    )
    return Submission(
        dialect=DIALECT,
        resolved=resolved,
        webhook_url=order.webhookUrl,
        webhook_events=order.webhookEvents,
        webhook_fields=("webhookUrl", "webhookEvents"),
        image_url=parameters.image_url,
        image_fields=("parameters.image_url", "media_id"),
    )
