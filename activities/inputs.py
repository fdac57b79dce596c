"""Single-argument inputs of the job activities (they cross the Temporal boundary)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from reelay.jobs import JobSpec, Route


class ProviderTaskRef(BaseModel):
    """Which upstream task: enough to poll, cancel or download it."""

    route: Route
    task_id: str


class StoreRequest(BaseModel):
    job_id: str
    task: ProviderTaskRef
    trim_to_seconds: float | None = None
    key: str | None = Field(default=None, description="object key; default the job's video")
    keep_last_frame: bool = False


class StitchRequest(BaseModel):
    """Join a chain's stored segments into the job's video."""

    job_id: str
    segment_keys: list[str]
    seconds: float
    drop_seam_frame: bool


class SubmitRequest(BaseModel):
    job: JobSpec
    route: Route
    check: bool = Field(
        default=False,
        description="re-check the job against today's catalog first (a job's first submit)",
    )


class PollRequest(BaseModel):
    """Poll `task` until it ends or `deadline` passes, reporting progress to `workflow_id`."""

    workflow_id: str
    task: ProviderTaskRef
    started_at: datetime
    deadline: datetime
    polls: int = 0
    progress: float = 0.0
    poll_min_seconds: float
    poll_max_seconds: float
    report_step: float = Field(default=0.05, description="report progress in steps this big")
    store: StoreRequest | None = Field(
        default=None, description="store the video when the task succeeds (since store-in-poll)"
    )
