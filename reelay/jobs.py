"""The internal job model shared by the API, the workflow and the activities.

Everything here crosses the Temporal boundary (pydantic data converter), so it holds
no secrets and no live objects.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    STORING = "storing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class Continuation(StrEnum):
    """How a chained segment continues the previous one."""

    EXTEND = "extend"  # the provider extends its own earlier output (Veo video extension)
    KEYFRAME = "keyframe"  # the earlier generation is the new one's first keyframe (Luma)
    LAST_FRAME = "last_frame"  # the earlier video's last frame is the new first image


class Route(BaseModel):
    """One way to serve a catalog model: which adapter, and the model id upstream.

    `clip_seconds` is set when the upstream cannot make the requested length but can make
    a longer one: the route generates `clip_seconds` and the stored video is trimmed.
    """

    adapter: str
    upstream_model: str
    family: str | None = Field(
        default=None, description="the upstream vocabulary (providers.families); None: look up"
    )
    clip_seconds: int | None = None
    continuation: Continuation | None = Field(
        default=None, description="how this route carries a video on in a further segment"
    )
    continue_model: str | None = Field(
        default=None, description="upstream id of the continuation segments"
    )
    submit_locally: bool = Field(
        default=False,
        description="submitted by a local activity in the job's own workflow task (since "
        "`local-submits`), not through the provider's submit queue: set where neither a "
        "submit rate nor a lookup of a lost attempt's task needs the queue "
        "(`providers.registry.deployed_routes`)",
    )


class ImageRef(BaseModel):
    """A source image for image-to-video, already copied into our bucket."""

    key: str
    content_type: str


class WebhookTarget(BaseModel):
    url: str
    events: list[str]


class Resume(BaseModel):
    """Where a continued-as-new run picks up: the upstream task is already submitted."""

    task_id: str
    route_index: int = 0
    started_at: datetime
    progress: float = 0.0
    polls: int = 0


class SegmentRole(BaseModel):
    """Set on a chain's segment: the spec of a `ClipWorkflow` that makes one clip of it."""

    parent_id: str
    index: int
    keep_last_frame: bool = Field(description="save the last frame for the next segment")


class JobSpec(BaseModel):
    """The single input of `VideoGenerationWorkflow` (and of a chain's `ClipWorkflow`
    segments, with `segment` set): a fully validated request."""

    job_id: str
    tenant_id: str
    request_id: str
    model: str
    requested_model: str
    routes: list[Route] = Field(
        min_length=1,
        description="in failover order; for a chain, every route that can make its "
        "`segments` (each segment fails over among those that can continue the video)",
    )
    prompt: str
    negative_prompt: str | None = None
    duration_seconds: int
    resolution: str
    aspect_ratio: str
    audio: bool = False
    enhance_prompt: bool = False
    seed: int | None = None
    image: ImageRef | None = None
    continue_from: str | None = Field(
        default=None, description="the provider task this segment extends (extend, keyframe)"
    )
    segments: list[int] = Field(
        default_factory=list, description="clip lengths of a chained job; empty: one clip"
    )
    segment: SegmentRole | None = None
    dialect: str = "native"
    app_id: str | None = None
    webhook: WebhookTarget | None = None
    price_micro_usd_per_second: int
    created_at: datetime
    deadline_seconds: int
    poll_min_seconds: float = 1.0
    poll_max_seconds: float = 30.0
    poll_heartbeat_timeout_seconds: float = Field(
        default=60.0,
        description="the poll loop's heartbeat timeout (60: a job from before it was set)",
    )
    failover_after_seconds: float = 60.0
    account_id: str | None = Field(
        default=None, description="the tenant's AccountWorkflow; None when limits are off"
    )
    queued: bool = Field(default=False, description="wait for an `admit` signal before running")
    request_hash: str | None = None
    resume: Resume | None = None
    batch_id: str | None = Field(default=None, description="the batch this job is a line of")

    @property
    def estimated_cost_micro_usd(self) -> int:
        return quoted_cost_micro_usd(self.price_micro_usd_per_second, self.duration_seconds)

    @property
    def upstream_seconds(self) -> int:
        return bought_seconds(self.routes[0], self.duration_seconds, self.segments)

    def notifies(self, event: str) -> bool:
        """Whether the job's webhook asked for `event`."""
        return self.webhook is not None and event in self.webhook.events


class WebhookDeliveryState(BaseModel):
    """How the delivery of one event is going (from its delivery workflow)."""

    event: str
    state: str
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None


class JobError(BaseModel):
    code: str
    message: str


class StoredVideo(BaseModel):
    key: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    duration_seconds: float
    content_type: str = "video/mp4"
    thumbnail_key: str | None = None
    last_frame_key: str | None = None


class JobView(BaseModel):
    """What the workflow's `view` query returns and every API dialect renders."""

    job_id: str
    tenant_id: str
    request_id: str
    dialect: str = "native"
    app_id: str | None = None
    status: JobStatus
    model: str
    requested_model: str
    provider: str
    model_used: str
    prompt: str
    negative_prompt: str | None = None
    duration_seconds: int
    resolution: str
    aspect_ratio: str
    audio: bool = False
    enhance_prompt: bool = False
    has_image: bool = False
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    eta_seconds: float | None = None
    provider_task_id: str | None = None
    queue_position: int | None = None
    segments_total: int | None = None
    segments_done: int = 0
    upstream_seconds: int | None = Field(
        default=None, description="seconds of video bought upstream (clips, before trimming)"
    )
    request_hash: str | None = None
    account_id: str | None = None
    webhook_deliveries: list[str] = Field(
        default_factory=list, description="workflow ids of the webhook deliveries started"
    )
    webhooks: list[WebhookDeliveryState] = Field(
        default_factory=list, description="filled in by the API when read: delivery states"
    )
    error: JobError | None = None
    video: StoredVideo | None = None
    estimated_cost_micro_usd: int
    cost_micro_usd: int | None = None
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @classmethod
    def from_spec(cls, spec: JobSpec) -> JobView:
        return cls(
            job_id=spec.job_id,
            tenant_id=spec.tenant_id,
            request_id=spec.request_id,
            dialect=spec.dialect,
            app_id=spec.app_id,
            status=JobStatus.QUEUED,
            model=spec.model,
            requested_model=spec.requested_model,
            provider=spec.routes[0].adapter,
            model_used=spec.routes[0].upstream_model,
            prompt=spec.prompt,
            negative_prompt=spec.negative_prompt,
            duration_seconds=spec.duration_seconds,
            resolution=spec.resolution,
            aspect_ratio=spec.aspect_ratio,
            audio=spec.audio,
            enhance_prompt=spec.enhance_prompt,
            has_image=spec.image is not None,
            segments_total=len(spec.segments) or None,
            upstream_seconds=spec.upstream_seconds,
            request_hash=spec.request_hash,
            account_id=spec.account_id,
            estimated_cost_micro_usd=spec.estimated_cost_micro_usd,
            created_at=spec.created_at,
        )


def micro_usd_to_usd(micro: int) -> float:
    return round(micro / 1_000_000, 6)


def bought_seconds(route: Route, duration_seconds: int, segments: list[int]) -> int:
    """Seconds of video a job buys upstream: a chain's clips, or its one (longer) clip."""
    return sum(segments) or route.clip_seconds or duration_seconds


def quoted_cost_micro_usd(price_micro_usd_per_second: int, duration_seconds: int) -> int:
    """The estimate: the asked length at the price (the most a job is ever billed)."""
    return price_micro_usd_per_second * duration_seconds


def settled_cost_micro_usd(spec: JobSpec, stored_duration_seconds: float) -> int:
    """Bill the stored duration (to 0.1 s), never more than the quoted estimate."""
    billed_tenths = min(round(stored_duration_seconds * 10), spec.duration_seconds * 10)
    return spec.price_micro_usd_per_second * billed_tenths // 10
