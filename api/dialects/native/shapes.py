"""The native dialect (seed 000): request and response bodies, status words, rendering."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from api.dialects.links import signed_links
from reelay.jobs import JobStatus, JobView, WebhookDeliveryState, micro_usd_to_usd
from reelay.settings import Settings

DIALECT = "native"
STATUS_WORDS = {
    JobStatus.QUEUED: "pending",
    JobStatus.PROCESSING: "processing",
    JobStatus.STORING: "processing",
    JobStatus.COMPLETED: "complete",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}
# Words the listing's `status` filter takes (the statuses of other dialects too).
STATUS_FROM_WORD = {
    "pending": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "processing": JobStatus.PROCESSING,
    "storing": JobStatus.STORING,
    "complete": JobStatus.COMPLETED,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
}


# Request examples (OpenAPI `Example` objects), the requests of seed 000's own docs.
EXAMPLES: dict[str, dict[str, Any]] = {
    "seed 000: cURL": {
        "summary": "seed 000's cURL request",
        "value": {
            "prompt": "A serene mountain landscape with flowing water and dramatic clouds, "
            "cinematic quality",
            "model": "runway-gen3",
            "duration_seconds": 8,
            "resolution": "1080p",
            "aspect_ratio": "16:9",
        },
    },
    "seed 000: client": {
        "summary": "seed 000's JavaScript and Python clients",
        "value": {
            "prompt": "A cat playing piano in a jazz club, cinematic lighting",
            "model": "runway-gen3",
            "duration_seconds": 8,
        },
    },
    "seed 000: prompt only": {
        "summary": "seed 000's prompt advice: a prompt alone, the defaults for the rest",
        "value": {
            "prompt": "Drone shot flying over a mountain range at sunrise, slowly revealing a "
            "valley with a river below, cinematic quality"
        },
    },
}


class CreateGeneration(BaseModel):
    """`POST /v1/video/generations`. Absent fields take the model's defaults."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [example["value"] for example in EXAMPLES.values()]}
    )

    prompt: str | None = Field(default=None, description="Description of the video (required)")
    model: str | None = Field(default=None, description="Model id; default runway-gen3")
    duration_seconds: StrictInt | StrictFloat | None = Field(
        default=None, description="Whole seconds; default 4 (model-dependent max)"
    )
    resolution: str | None = Field(default=None, description="720p or 1080p; default 1080p")
    aspect_ratio: str | None = Field(default=None, description="16:9, 9:16, 1:1 or 4:3")
    negative_prompt: str | None = Field(default=None, description="What to keep out of the video")
    webhook_url: str | None = Field(default=None, description="https URL told of the job's events")
    webhook_events: list[str] | None = Field(
        default=None,
        description="among progress, completed, failed, cancelled; default: the job's end",
    )


class ErrorDetail(BaseModel):
    type: str = Field(description="the error code, e.g. invalid_request")
    message: str


class NativeErrorBody(BaseModel):
    """An error as the native dialect answers it."""

    error: ErrorDetail


class Perf(BaseModel):
    request_id: str
    model_used: str
    provider: str
    latency_ms: int | None = None
    generation_time_ms: int | None = None
    cost_usd: float | None = None
    upstream_seconds: int | None = Field(
        default=None, description="seconds bought upstream (a clip made longer, or a chain's)"
    )


class VideoInfo(BaseModel):
    width: int
    height: int
    duration_seconds: float
    size_bytes: int
    sha256: str
    content_type: str


class Segments(BaseModel):
    """A video longer than one clip is made as continued segments."""

    total: int
    completed: int


class Generation(BaseModel):
    """A job as the native dialect shows it."""

    id: str
    status: str = Field(description="pending, processing, complete, failed or cancelled")
    model: str
    prompt: str
    negative_prompt: str | None = None
    duration_seconds: int
    resolution: str
    aspect_ratio: str
    created_at: datetime
    estimated_cost_usd: float
    queue_position: int | None = Field(
        default=None, description="place in the tenant's queue while waiting for a slot"
    )
    progress_percent: int | None = None
    estimated_remaining_seconds: int | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    video: VideoInfo | None = None
    error_message: str | None = None
    error_code: str | None = None
    segments: Segments | None = None
    webhooks: list[WebhookDeliveryState] | None = Field(
        default=None, description="delivery of the job's webhook events: attempts, last code"
    )
    perf: Perf


class GenerationList(BaseModel):
    object: str = "list"
    data: list[Generation]
    has_more: bool
    next_cursor: str | None = None


def render(view: JobView, settings: Settings, *, latency_ms: int | None = None) -> Generation:
    perf = Perf(
        request_id=view.request_id,
        model_used=view.model_used,
        provider=view.provider,
        latency_ms=latency_ms,
        upstream_seconds=view.upstream_seconds,
    )
    body = Generation(
        id=view.job_id,
        status=STATUS_WORDS[view.status],
        model=view.requested_model,
        prompt=view.prompt,
        negative_prompt=view.negative_prompt,
        duration_seconds=view.duration_seconds,
        resolution=view.resolution,
        aspect_ratio=view.aspect_ratio,
        created_at=view.created_at,
        estimated_cost_usd=micro_usd_to_usd(view.estimated_cost_micro_usd),
        perf=perf,
    )
    if view.status is JobStatus.QUEUED:
        body.queue_position = view.queue_position
    if view.status in (JobStatus.PROCESSING, JobStatus.STORING):
        body.progress_percent = round(view.progress * 100)
        if view.eta_seconds is not None:
            body.estimated_remaining_seconds = round(view.eta_seconds)
    links = signed_links(view, settings)
    if view.status is JobStatus.COMPLETED and view.video is not None and links is not None:
        body.video_url, body.thumbnail_url = links
        body.video = VideoInfo.model_validate(view.video, from_attributes=True)
        body.progress_percent = 100
    if view.completed_at is not None and view.status is JobStatus.COMPLETED:
        perf.generation_time_ms = round(
            (view.completed_at - view.created_at).total_seconds() * 1000
        )
    if view.cost_micro_usd is not None:
        perf.cost_usd = micro_usd_to_usd(view.cost_micro_usd)
    if view.error is not None:
        body.error_message = view.error.message
        body.error_code = view.error.code
    if view.segments_total:
        body.segments = Segments(total=view.segments_total, completed=view.segments_done)
    body.webhooks = view.webhooks or None
    return body
