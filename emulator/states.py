"""The emulator's own task vocabulary; each protocol router maps it to its provider's words."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FailureKind(StrEnum):
    """Why a task ends FAILED."""

    CONTENT_REFUSED = "content_refused"
    INTERNAL = "internal"
