"""The adapter interface: one implementation per upstream wire protocol."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from enum import StrEnum
from typing import Protocol

import httpx
from pydantic import BaseModel

from reelay.jobs import JobSpec


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FailureKind(StrEnum):
    CONTENT_REFUSED = "content_refused"
    INVALID_REQUEST = "invalid_request"
    INTERNAL = "internal"


class ProviderTaskStatus(BaseModel):
    """A provider task's state in Reelay's words. Never carries credentials."""

    state: TaskState
    progress: float | None = None
    output_url: str | None = None
    failure: str | None = None
    failure_kind: FailureKind | None = None


class ProviderAdapter(Protocol):
    name: str

    async def submit(self, job: JobSpec) -> str:
        """Create the upstream task; returns the provider's task id."""
        ...

    async def poll(self, task_id: str) -> ProviderTaskStatus: ...

    def download(self, url: str) -> AbstractAsyncContextManager[httpx.Response]:
        """Open a streaming GET of an output URL (adding auth where the provider needs it)."""
        ...

    async def cancel(self, task_id: str) -> None: ...
