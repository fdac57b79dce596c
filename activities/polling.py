"""Polling a provider task inside one heartbeating activity.

A poll of an unchanged task writes no history and runs no workflow task: the loop runs in
the worker (Temporal's "frequent polling" pattern, temporalio/samples-python `polling/`),
its position (polls made, progress seen, the ETA) kept in the heartbeat details, so a worker
lost mid-poll is noticed within the heartbeat timeout and the retried attempt carries on from
there — the task is never submitted again. The same details are the job's live progress: the
loop heartbeats at once when progress moved by `PROGRESS_SHOWN_STEP`, and the API shows a
processing job's position from them (`show_position`). The loop tells its workflow only what
the workflow must act on: progress that moved by the step the workflow asked for
(`PollRequest.report_step`, by `PROGRESS_SIGNAL`: a chain's segment, progress webhooks, and the
memo that lists and the Temporal UI read) and the end (the activity's result). Provider
callbacks wake the workflow, which polls once itself and lets the loop go on.

A loop asked to (`PollRequest.store`, runs since `store-in-poll`) stores the video of the
task it saw succeed, with the output URL that poll returned: no workflow task and no
activity of its own for the store. A store that takes more than a second says so in its
heartbeat (`STORING`, which the API reads as the job's `storing` status). A store that fails
here for any reason is handed back (`PollOutcome.video` None): the workflow's own store
activity then waits out the outage or fails the job as it always has.

A new task's first poll waits the shortest interval (a task created a moment ago is only
ever queued); a loop resumed from a heartbeat, or carrying on from earlier polls, polls at
once. The interval rule (`next_poll_delay`) is pure; the legacy timer loop of runs started before
the activity existed uses it too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.errors import error_label, provider_errors
from activities.inputs import PollRequest, StoreRequest
from activities.jobs import JobActivities, heartbeating
from providers.base import ProviderAdapter, ProviderTaskStatus, TaskState
from reelay import metrics
from reelay.jobs import JobStatus, JobView, StoredVideo

log = structlog.get_logger()

#: The signal the loop sends its workflow when progress moved by `PollRequest.report_step`.
PROGRESS_SIGNAL = "provider_progress"
#: Back-off between polls the provider answered with a transient error (capped).
ERROR_FIRST_DELAY_SECONDS = 1.0
ERROR_MAX_DELAY_SECONDS = 15.0
#: The activity label one poll inside the loop is measured under (as the one-shot activity).
ONE_POLL = JobActivities.poll_provider.__name__
#: ... and the store it may end with (as the store activity).
ONE_STORE = JobActivities.store_video.__name__
#: The heartbeat detail that says the loop is storing the video (read by the API).
STORING = "storing"
#: A store still going this long into it heartbeats `STORING` (then every few seconds); one
#: done sooner (most are) costs Temporal no heartbeat, a write of the activity's state.
STORING_SHOWN_AFTER_SECONDS = 1.0
TERMINAL = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})


#: Progress stays below this until the video is stored.
PROGRESS_BEFORE_STORED = 0.99
#: Progress that moved this far since the last heartbeat is heartbeated at once (a read of the
#: job shows it within the SDK's `THROTTLE`); slower, it waits for the next due beat.
PROGRESS_SHOWN_STEP = 0.05


def advanced(progress: float, reported: float | None) -> float:
    """Progress after a provider's report: it never goes back, and stays below
    `PROGRESS_BEFORE_STORED` until the video is stored."""
    if reported is None:
        return progress
    return max(progress, min(reported, PROGRESS_BEFORE_STORED))


def show_position(view: JobView, details: object) -> None:
    """Show a processing job's poll loop position (its heartbeat `details`) in its `view`,
    read from the memo: `storing`, or progress (and its ETA) beyond the memo's. The memo
    moves in the workflow's steps; the heartbeat within `PROGRESS_SHOWN_STEP`."""
    if view.status is not JobStatus.PROCESSING or not isinstance(details, dict):
        return
    if details.get(STORING):
        view.status = JobStatus.STORING
    progress = details.get("progress")
    if isinstance(progress, int | float) and progress > view.progress:
        view.progress = advanced(view.progress, progress)
        eta = details.get("eta_seconds")
        view.eta_seconds = float(eta) if isinstance(eta, int | float) else None


def estimate_remaining(elapsed_seconds: float, progress: float | None) -> float | None:
    """Seconds left, extrapolated from progress so far; None until progress is meaningful."""
    if progress is None or progress < 0.02 or elapsed_seconds <= 0:
        return None
    if progress >= 1.0:
        return 0.0
    return elapsed_seconds * (1.0 - progress) / progress


def next_poll_delay(
    *, polls: int, remaining: float | None, min_seconds: float, max_seconds: float
) -> float:
    """Poll at about half the remaining time, within bounds; back off gently without an ETA."""
    delay = min_seconds * 1.5**polls if remaining is None else remaining / 2
    return max(min_seconds, min(max_seconds, delay))


class PollProgress(BaseModel):
    """What the loop reports to its workflow (the signal's argument)."""

    progress: float
    eta_seconds: float | None
    polls: int


class PollOutcome(BaseModel):
    """How the loop ended: the task's last status (terminal unless `deadline_passed`)."""

    status: ProviderTaskStatus
    polls: int
    progress: float
    deadline_passed: bool = False
    video: StoredVideo | None = Field(
        default=None, description="the video the loop stored (asked to, and it could)"
    )


Clock = Callable[[], Awaitable[datetime]]
Sleep = Callable[[float], Awaitable[None]]
Report = Callable[[PollProgress], Awaitable[None]]


class Store(Protocol):
    """Stores a finished task's video (`JobActivities.store`), updating `progress` as it
    goes; `finished` is the status just polled (its output URL fresh); `first`: no store of
    this video can have run before (see `JobActivities.store`)."""

    async def __call__(
        self,
        request: StoreRequest,
        progress: dict[str, Any],
        *,
        finished: ProviderTaskStatus,
        first: bool,
    ) -> StoredVideo: ...


async def poll_loop(
    request: PollRequest,
    poll: Callable[[], Awaitable[ProviderTaskStatus]],
    *,
    now: Clock,
    sleep: Sleep,
    report: Report,
    heartbeat: Callable[[dict[str, Any]], None],
    resumed: dict[str, Any] | None = None,
) -> PollOutcome:
    """Poll until the task ends or the deadline passes. Clock, sleep, report and heartbeat
    are passed in, so the loop runs the same on a worker and on a test server's clock."""
    polls = int(resumed.get("polls", request.polls)) if resumed else request.polls
    progress = float(resumed.get("progress", request.progress)) if resumed else request.progress
    reported = progress
    error_delay = ERROR_FIRST_DELAY_SECONDS
    status = ProviderTaskStatus(state=TaskState.RUNNING, progress=progress)
    if polls == 0 and resumed is None:
        # The task was created a moment ago: no provider has its video yet, and a poll that
        # could only say "queued" costs the worker and the provider a request for nothing.
        left = (request.deadline - await now()).total_seconds()
        await sleep(min(request.poll_min_seconds, max(left, 0.0)))
    while True:
        left = (request.deadline - await now()).total_seconds()
        if left <= 0:
            return PollOutcome(status=status, polls=polls, progress=progress, deadline_passed=True)
        try:
            with provider_errors():
                status = await poll()
        except ApplicationError as err:
            if err.non_retryable:
                raise
            # A transient answer: wait it out here, where waiting writes no history.
            wait = err.next_retry_delay.total_seconds() if err.next_retry_delay else error_delay
            heartbeat({"polls": polls, "progress": progress, "error": err.message})
            await sleep(min(max(wait, error_delay), left))
            error_delay = min(error_delay * 2, ERROR_MAX_DELAY_SECONDS)
            continue
        error_delay = ERROR_FIRST_DELAY_SECONDS
        polls += 1
        if status.state in TERMINAL:
            return PollOutcome(status=status, polls=polls, progress=progress)
        progress = advanced(progress, status.progress)
        elapsed = (await now() - request.started_at).total_seconds()
        remaining = estimate_remaining(elapsed, status.progress)
        if progress >= reported + request.report_step:
            reported = progress
            await report(PollProgress(progress=progress, eta_seconds=remaining, polls=polls))
        heartbeat({"polls": polls, "progress": progress, "eta_seconds": remaining})
        delay = next_poll_delay(
            polls=polls,
            remaining=remaining,
            min_seconds=request.poll_min_seconds,
            max_seconds=request.poll_max_seconds,
        )
        await sleep(min(delay, left))


class PollingActivities:
    """The poll loop as an activity. It needs the Temporal client to report progress, and
    `store` to store the video where the request asks it to."""

    def __init__(self, client: Client, adapters: dict[str, ProviderAdapter], store: Store) -> None:
        self._client = client
        self._adapters = adapters
        self._store = store

    @activity.defn
    async def poll_until_done(self, request: PollRequest) -> PollOutcome:
        """Poll `request.task` until it ends or the job's deadline passes (see module doc)."""
        task = request.task
        adapter = self._adapters.get(task.route.adapter)
        if adapter is None:
            raise ApplicationError(
                f"no adapter for provider {task.route.adapter!r}",
                type="invalid_request",
                non_retryable=True,
            )
        info = activity.info()
        details = info.heartbeat_details
        beat = _Heartbeat(info.heartbeat_timeout, shown_progress=request.progress)

        async def poll() -> ProviderTaskStatus:
            started = time.perf_counter()
            try:
                return await adapter.poll(task.route, task.task_id)
            except Exception as exc:
                error = type(exc).__name__
                metrics.ACTIVITY_ERRORS.labels(ONE_POLL, task.route.adapter, error).inc()
                raise
            finally:
                elapsed = time.perf_counter() - started
                metrics.ACTIVITY_LATENCY.labels(ONE_POLL, task.route.adapter).observe(elapsed)

        outcome = await poll_loop(
            request,
            poll,
            now=_utcnow,
            sleep=beat.sleep,
            report=lambda progress: self._report(request.workflow_id, progress),
            heartbeat=beat,
            resumed=details[0] if details and isinstance(details[0], dict) else None,
        )
        video = None
        if request.store is not None and outcome.status.state is TaskState.SUCCEEDED:
            # A first attempt that never heartbeated is the job's first store of this video.
            first = info.attempt == 1 and not details
            video = await self._store_now(request.store, outcome, first=first)
        # A store step asks for a fresh output URL; keep signed URLs out of history.
        status = outcome.status.model_copy(update={"output_url": None})
        return outcome.model_copy(update={"status": status, "video": video})

    async def _store_now(
        self, request: StoreRequest, outcome: PollOutcome, *, first: bool
    ) -> StoredVideo | None:
        """The video stored, or None (handed back to the workflow's store step) on any
        failure but a cancellation."""
        details: dict[str, Any] = {
            "polls": outcome.polls,
            "progress": outcome.progress,
            STORING: True,
        }
        provider = request.task.route.adapter
        started = time.perf_counter()
        try:
            async with heartbeating(details, first_after=STORING_SHOWN_AFTER_SECONDS):
                return await self._store(request, details, finished=outcome.status, first=first)
        except Exception as exc:
            error = error_label(exc)
            metrics.ACTIVITY_ERRORS.labels(ONE_STORE, provider, error).inc()
            log.warning("storing after the poll failed; the store step takes over", error=error)
            return None
        finally:
            elapsed = time.perf_counter() - started
            metrics.ACTIVITY_LATENCY.labels(ONE_STORE, provider).observe(elapsed)

    async def _report(self, workflow_id: str, progress: PollProgress) -> None:
        try:
            await self._client.get_workflow_handle(workflow_id).signal(PROGRESS_SIGNAL, progress)
        except Exception:  # progress is advisory: the loop goes on, the next step reports
            log.warning("progress report failed", workflow_id=workflow_id, exc_info=True)


async def _utcnow() -> datetime:
    return datetime.now(UTC)


#: The longest the SDK holds back a poll loop's heartbeat (the poll worker's setting): a beat
#: that says the loop is storing, or that progress moved, shows within it even just after
#: another. The loop itself decides how seldom it beats (`_Heartbeat`).
THROTTLE = timedelta(seconds=1)
#: The share of a poll loop's heartbeat timeout between two of its beats (`_Heartbeat`).
BEAT_SHARE_OF_TIMEOUT = 2 / 3


class _Heartbeat:
    """Heartbeats the loop's position every two thirds of the loop's heartbeat timeout, and
    keeps heartbeating it through a long sleep, so a long interval never looks like a lost
    worker; and at once when its progress moved by `PROGRESS_SHOWN_STEP` since the progress
    last shown (`shown_progress`: the request's, as the job's memo has it). The first beat
    goes out one interval after the loop starts unless progress moves: a task that ends
    sooner costs Temporal no heartbeat (a write of the activity's state), and a retried
    attempt that finds no position starts from the request's.

    The poll worker lets the SDK send a heartbeat at most `THROTTLE` after the last (so the
    `STORING` beat and a progress step show within a second); the loop itself beats as
    seldom as its timeout allows (`Settings.poll_heartbeat_timeout_seconds`, copied into each
    job): every beat is a write in Temporal, and at 10,000 loops beats every 40 s were 250 a
    second. The timeout sets how soon the jobs of a worker lost without shutting down are
    resumed elsewhere.
    """

    #: Between beats of a loop scheduled without a heartbeat timeout.
    DEFAULT_EVERY_SECONDS = 40.0

    def __init__(self, timeout: timedelta | None, *, shown_progress: float) -> None:
        self.every_seconds = (
            timeout.total_seconds() * BEAT_SHARE_OF_TIMEOUT
            if timeout
            else self.DEFAULT_EVERY_SECONDS
        )
        self._details: dict[str, Any] = {}
        self._shown_progress = shown_progress
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + self.every_seconds

    def __call__(self, details: dict[str, Any]) -> None:
        self._details = details
        self._beat_if_due()

    def _beat_if_due(self) -> None:
        now = self._loop.time()
        progress = float(self._details.get("progress", 0.0))
        if now >= self._due or progress >= self._shown_progress + PROGRESS_SHOWN_STEP:
            activity.heartbeat(self._details)
            self._due = now + self.every_seconds
            self._shown_progress = max(self._shown_progress, progress)

    async def sleep(self, seconds: float) -> None:
        end = self._loop.time() + seconds
        while (left := end - self._loop.time()) > 0:
            await asyncio.sleep(min(left, self.every_seconds))
            self._beat_if_due()
