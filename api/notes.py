"""What a request's handler learns about it (its dialect, its job), for the metrics middleware
(`api.observability`) and the logs and spans. Free of any web framework: the worker runs the
API's admission code for batch lines and imports this."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from reelay.tracing import bind_job

#: What the handler learnt about the request (its dialect), read when the response is sent.
NOTES: ContextVar[dict[str, str] | None] = ContextVar("reelay_request_notes", default=None)


def note_job(*, job_id: str, tenant: str, dialect: str, **fields: Any) -> None:
    """The request is about this job: its dialect for the metrics, the rest for logs/spans."""
    notes = NOTES.get()
    if notes is not None:
        notes["dialect"] = dialect
    bind_job(job_id=job_id, tenant=tenant, **fields)
