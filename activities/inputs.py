"""Single-argument inputs of the job activities (they cross the Temporal boundary)."""

from __future__ import annotations

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
