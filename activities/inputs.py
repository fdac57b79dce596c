"""Single-argument inputs of the job activities (they cross the Temporal boundary)."""

from __future__ import annotations

from pydantic import BaseModel

from reelay.jobs import JobSpec, Route


class ProviderTaskRef(BaseModel):
    """Which upstream task: enough to poll, cancel or download it."""

    route: Route
    task_id: str


class StoreRequest(BaseModel):
    job_id: str
    task: ProviderTaskRef
    trim_to_seconds: float | None = None


class SubmitRequest(BaseModel):
    job: JobSpec
    route: Route
