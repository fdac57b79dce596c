"""How a job that did not complete is reported, the same in every dialect."""

from __future__ import annotations

from reelay.errors import ErrorCode
from reelay.jobs import JobError, JobStatus, JobView

FAILED_MESSAGE = "Video generation failed"
CANCELLED_MESSAGE = "the job was cancelled"


def failure_of(
    view: JobView, *, failed: str = FAILED_MESSAGE, cancelled: str = CANCELLED_MESSAGE
) -> JobError | None:
    """The job's error: its own when it has one, else `failed` / `cancelled` with the codes
    `provider_error` / `cancelled`; None while it runs or once it completed."""
    if view.error is not None:
        return view.error
    if view.status is JobStatus.FAILED:
        return JobError(code=ErrorCode.PROVIDER_ERROR, message=failed)
    if view.status is JobStatus.CANCELLED:
        return JobError(code=ErrorCode.CANCELLED, message=cancelled)
    return None
