"""Request and response bodies of the native dialect (seed 000)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from reelay.jobs import WebhookDeliveryState


class CreateGeneration(BaseModel):
    """`POST /v1/video/generations`. Absent fields take the model's defaults."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prompt": "A serene mountain landscape with flowing water and dramatic clouds",
                    "model": "runway-gen3",
                    "duration_seconds": 8,
                    "resolution": "1080p",
                    "aspect_ratio": "16:9",
                }
            ]
        }
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


class Perf(BaseModel):
    request_id: str
    model_used: str
    provider: str
    latency_ms: int | None = None
    generation_time_ms: int | None = None
    cost_usd: float | None = None


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


class ModelRoute(BaseModel):
    provider: str
    upstream_model: str
    min_seconds: int
    max_seconds: int
    durations: list[int] | None
    resolutions: list[str]
    aspect_ratios: list[str]
    image_to_video: bool
    continuation: str | None = Field(
        description="how this route continues a video longer than one clip: extend, keyframe, "
        "last_frame; null: it cannot"
    )
    available: bool


class ModelInfo(BaseModel):
    id: str
    object: str = "model"
    name: str
    vendor: str
    aliases: list[str]
    max_duration_seconds: int = Field(description="the longest video Reelay makes of this model")
    max_clip_seconds: int = Field(description="the longest one upstream clip makes")
    chained: bool = Field(description="longer videos are made as continued, stitched segments")
    min_duration_seconds: int
    default_duration_seconds: int
    resolutions: list[str]
    default_resolution: str
    aspect_ratios: list[str]
    default_aspect_ratio: str
    max_prompt_chars: int
    price_usd_per_second: float
    status: str = Field(default="available", description="available, retired or unavailable")
    reason: str | None = None
    routes: list[ModelRoute]


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelInfo]
