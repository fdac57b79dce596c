"""The adapter interface: one implementation per upstream wire protocol."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

import httpx
from pydantic import BaseModel

from reelay.jobs import JobSpec, Route


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


@dataclass(frozen=True)
class SourceImage:
    """The job's source image in every form a provider may want it.

    `url` is a presigned GET of our own copy (reachable by the provider), `data` the bytes
    for providers that take a data URI or base64.
    """

    url: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Resume:
    """Where a partial download stopped: the bytes already written, and the first answer's
    `ETag` (or `Last-Modified`) so that a file that changed since is sent whole."""

    offset: int
    validator: str | None = None


@dataclass(frozen=True)
class CallbackEvent:
    """A verified provider callback. `event_id` identifies it for replay detection."""

    event_id: str
    task_id: str | None = None


class CallbackRejected(Exception):
    """A callback that failed verification (bad signature, stale timestamp, malformed)."""


class ProviderAdapter(Protocol):
    """What an adapter does. `task_id` is the adapter's own opaque handle of a task."""

    name: str

    async def submit(
        self,
        job: JobSpec,
        route: Route,
        *,
        image: SourceImage | None = None,
        callback_url: str | None = None,
    ) -> str:
        """Create the upstream task; returns its handle. Honours `route.clip_seconds`."""
        ...

    async def poll(self, route: Route, task_id: str) -> ProviderTaskStatus: ...

    def download(
        self, url: str, *, resume: Resume | None = None
    ) -> AbstractAsyncContextManager[httpx.Response]:
        """Open a streaming GET of an output URL (adding auth where the provider needs it);
        with `resume`, only the rest from `resume.offset` (a 206), or the whole file again
        (a 200) when the server cannot or the file changed."""
        ...

    async def cancel(self, route: Route, task_id: str) -> None: ...

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        """Check a callback's signature and freshness; raise `CallbackRejected` if it fails.

        Providers without callbacks raise `CallbackRejected` for everything.
        """
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class FindsSubmitted(Protocol):
    """An adapter whose provider lists the tasks it created (Luma, Replicate), so the task a
    lost submit attempt may have left upstream can be found instead of created again."""

    async def find_submitted(
        self,
        job: JobSpec,
        route: Route,
        *,
        since: datetime,
        image: SourceImage | None = None,
        callback_url: str | None = None,
    ) -> str | None:
        """The handle of the newest task created at or after `since` (the provider's clock)
        from the request `submit` would send for these arguments; None if there is none."""
        ...
