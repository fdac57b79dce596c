"""Protocol-neutral emulator state: tasks on a wall-clock timeline, run-time config, counters.

Each protocol router translates requests into `TaskStore` calls and `Snapshot`s into its own
status words, so every provider shares one behaviour model.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from emulator.callbacks import CallbackSender
from emulator.config import EmulatorConfig, RuntimeConfig
from emulator.directives import Directives
from emulator.render import RenderCache
from emulator.states import FailureKind, TaskState

FAILURE_MESSAGES = {
    FailureKind.CONTENT_REFUSED: "Content moderation: the prompt was flagged",
    FailureKind.INTERNAL: "An internal error occurred while generating the video",
}
UNAVAILABLE_MESSAGE = "Service temporarily unavailable"
TERMINAL = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})


@dataclass(frozen=True)
class Snapshot:
    state: TaskState
    progress: float | None = None
    failure: FailureKind | None = None
    message: str | None = None


@dataclass(frozen=True)
class CreateFault:
    """An injected error answer to a create call."""

    status: int
    message: str
    retry_after: int | None = None


def iso_utc(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Task:
    id: str
    provider: str
    model: str
    prompt: str
    duration: int
    ratio: str
    created_at: float
    queue_seconds: float
    generation_seconds: float
    steps: int
    output_ttl_seconds: int
    directives: Directives
    outcome: Future[Path] | FailureKind = field(repr=False)  # the render, or a planned failure
    cancelled: bool = False
    polls: int = 0
    downloads_started: int = 0
    details: dict[str, Any] = field(default_factory=dict)  # protocol-specific record fields
    echo: dict[str, Any] = field(default_factory=dict)  # the create body, echoed by some APIs
    callback_url: str | None = None
    callback_attempts: int = 0
    callback_delivered: bool = False
    start_frame: int = 0  # the render's first frame number (continuations go on from there)
    fps: int = 8

    @property
    def next_frame(self) -> int:
        """Where a continuation of this task's video starts."""
        return self.start_frame + round(self.duration * self.fps)

    @property
    def ends_at(self) -> float:
        return self.created_at + self.queue_seconds + self.generation_seconds

    @property
    def expires_at(self) -> int:
        """When the output URL stops working (unix seconds)."""
        return int(self.ends_at + self.output_ttl_seconds)

    def snapshot(self) -> Snapshot:
        if self.cancelled:
            return Snapshot(TaskState.CANCELLED)
        elapsed = time.time() - self.created_at - self.queue_seconds
        if elapsed < 0:
            return Snapshot(TaskState.QUEUED)
        if elapsed < self.generation_seconds:
            step = int(elapsed / self.generation_seconds * self.steps)
            return Snapshot(TaskState.RUNNING, progress=min(step / self.steps, 0.99))
        if isinstance(self.outcome, FailureKind):
            return Snapshot(
                TaskState.FAILED, failure=self.outcome, message=FAILURE_MESSAGES[self.outcome]
            )
        if not self.outcome.done():
            return Snapshot(TaskState.RUNNING, progress=0.99)
        if (error := self.outcome.exception()) is not None:
            return Snapshot(
                TaskState.FAILED, failure=FailureKind.INTERNAL, message=f"render: {error}"
            )
        return Snapshot(TaskState.SUCCEEDED, progress=1.0)

    def output_path(self) -> Path | None:
        if (
            isinstance(self.outcome, FailureKind)
            or self.snapshot().state is not TaskState.SUCCEEDED
        ):
            return None
        return self.outcome.result()

    def cancel(self) -> None:
        if self.snapshot().state not in TERMINAL:
            self.cancelled = True

    def take_poll_fault(self) -> bool:
        """Count a poll; True while within the first `poll_5xx` polls."""
        self.polls += 1
        return self.polls <= self.directives.poll_5xx

    def take_truncation(self) -> bool:
        """Count a download; True while within the first `truncate` downloads."""
        self.downloads_started += 1
        return self.downloads_started <= self.directives.truncate

    @property
    def terminal(self) -> bool:
        return self.snapshot().state in TERMINAL

    def submission(self) -> dict[str, Any]:
        record = {
            "provider": self.provider,
            "task_id": self.id,
            "model": self.model,
            "prompt": self.prompt,
            "duration": self.duration,
            "ratio": self.ratio,
            "received_at": iso_utc(self.created_at),
            **self.details,
        }
        if self.callback_url is not None:
            record["callback"] = {
                "url": self.callback_url,
                "attempts": self.callback_attempts,
                "delivered": self.callback_delivered,
            }
        return record


class TaskStore:
    """All state of one emulator process. Used from the event loop only (async handlers)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.renders = RenderCache(config.data_dir / "renders")
        self.callbacks = CallbackSender(attempts=config.callback_attempts)
        self.reset()

    def reset(self) -> None:
        """Back to the start-up state: no tasks, zero counters, start-up config, no outages,
        no callbacks still to deliver."""
        self.callbacks.cancel_all()
        self.runtime = RuntimeConfig.initial(self.config)
        self._tasks: dict[str, Task] = {}
        self._create_attempts: Counter[str] = Counter()
        self._prompt_attempts: Counter[tuple[str, str]] = Counter()
        self._downloads: Counter[str] = Counter()

    def begin_create(self, provider: str) -> CreateFault | None:
        """Count a create call; the provider's configured outage, if any."""
        self._create_attempts[provider] += 1
        status = self.runtime.outages.get(provider)
        if status is None:
            return None
        message = UNAVAILABLE_MESSAGE if status == 503 else HTTPStatus(status).phrase
        return CreateFault(status, message, retry_after=1 if status == 429 else None)

    def directive_fault(
        self, provider: str, prompt: str, directives: Directives
    ) -> CreateFault | None:
        """Count a valid create of `prompt`: its first `create_429` attempts answer 429, the
        next `create_5xx` answer 503."""
        key = (provider, prompt)
        self._prompt_attempts[key] += 1
        attempt = self._prompt_attempts[key]
        if attempt <= directives.create_429:
            return CreateFault(429, "Rate limit exceeded", retry_after=directives.retry_after)
        if attempt <= directives.create_429 + directives.create_5xx:
            return CreateFault(503, UNAVAILABLE_MESSAGE)
        return None

    def submit(
        self,
        *,
        provider: str,
        model: str,
        prompt: str,
        duration: int,
        ratio: str,
        size: tuple[int, int],
        directives: Directives,
        details: dict[str, Any] | None = None,
        callback_url: str | None = None,
        start_frame: int = 0,
        task_id: str | None = None,
    ) -> Task:
        """Accept a task and start rendering its video (unless it is set to fail).

        `size` is the render size (already scaled); `details` are extra submission fields;
        `task_id` overrides the default id (a UUID) where a provider's ids look different."""
        defaults = self.runtime
        outcome: Future[Path] | FailureKind
        if directives.refuse:
            outcome = FailureKind.CONTENT_REFUSED
        elif directives.fail:
            outcome = FailureKind.INTERNAL
        else:
            width, height = size
            outcome = self.renders.get(
                width=width,
                height=height,
                duration_seconds=duration,
                fps=self.config.fps,
                start_frame=start_frame,
            )
        task = Task(
            id=task_id or str(uuid.uuid4()),
            provider=provider,
            model=model,
            prompt=prompt,
            duration=duration,
            ratio=ratio,
            created_at=time.time(),
            queue_seconds=defaults.queue_seconds if directives.queue is None else directives.queue,
            generation_seconds=(
                defaults.generation_seconds if directives.gen is None else directives.gen
            ),
            steps=directives.steps or defaults.steps,
            output_ttl_seconds=defaults.output_ttl_seconds,
            directives=directives,
            outcome=outcome,
            details=details or {},
            callback_url=callback_url,
            start_frame=start_frame,
            fps=self.config.fps,
        )
        self._tasks[task.id] = task
        return task

    def get(self, provider: str, task_id: str) -> Task | None:
        task = self._tasks.get(task_id)
        return task if task is not None and task.provider == provider else None

    def record_download(self, task_id: str) -> None:
        self._downloads[task_id] += 1

    def submissions(self, provider: str | None = None) -> list[dict[str, Any]]:
        return [
            task.submission()
            for task in self._tasks.values()
            if provider is None or task.provider == provider
        ]

    def tasks(self, provider: str) -> list[Task]:
        return [task for task in self._tasks.values() if task.provider == provider]

    def stats(self) -> dict[str, dict[str, int]]:
        return {
            "create_attempts": dict(self._create_attempts),
            "accepted": dict(Counter(task.provider for task in self._tasks.values())),
            "downloads": dict(self._downloads),
        }
