"""One clip: submit it (failing over between routes), poll it, store it.

`ClipMaker` is the procedure, run by the job workflow for a one-clip job and by
`ClipWorkflow` for each segment of a chain. Shared helpers every job workflow uses live here
too (`run_activity`, `set_status`, `JobFailed`).

Submissions, at most once per route: the submit activity heartbeats and has short attempt
timeouts, so a lost worker is noticed in seconds and its attempt is retried on the same
route; only the provider's own answer (a connection error, 5xx or 429: `ProviderUnavailable`)
counts against the route's failover budget, and that budget is kept here, in workflow time
(Temporal's own schedule-to-close stops a backing-off retry early, at the last retry that
still fits). A route is left only after it stayed unavailable for the whole budget.

Since `local-submits`, a route marked `submit_locally` (no submit pacing and no lookup:
Runway, Veo, fal) is submitted by a local activity in the job's own workflow task: no
activity task, and that task goes straight on to the poll loop. Where the worker has no turn
free for the provider, the attempt goes through the queue instead (a local activity would
hold the workflow task open while it waited). A lost worker is then noticed by the workflow
task's timeout, and the window below stays as it was on those providers (a retry cannot
find the lost attempt's task either way).

The remaining double-submit window: a worker that dies after its request reached the provider
but before the activity completed leaves a task upstream the retried attempt does not know
of, so the provider gets the job twice on that route (never on two routes: no failover
without the provider's answer). The window is the provider's create call plus the
completion's trip to Temporal (well under a second); the heartbeat details say whether an
attempt got as far as sending. Per provider:

- Runway: no idempotency key and no task listing: a second task, left to run unpolled.
- Gemini (Veo): long-running operations cannot be listed per model: as Runway.
- fal: queue requests cannot be found by a client reference: as Runway.
- Luma and Replicate: recent generations / predictions can be listed, and each carries the
  job's callback URL (it names the job id), so the lost task could be found and adopted once
  the adapters offer a lookup (`find_submitted`, see `JobActivities.submit_to_provider`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from activities.errors import (
        RETRYABLE_TYPE,
        STORAGE_TYPE,
        TURNS_TAKEN_TYPE,
        UNAVAILABLE_TYPE,
    )
    from activities.inputs import PollRequest, ProviderTaskRef, StoreRequest, SubmitRequest
    from activities.jobs import JobActivities
    from activities.polling import (
        PROGRESS_SIGNAL,
        TERMINAL,
        PollingActivities,
        PollOutcome,
        PollProgress,
        advanced,
        estimate_remaining,
        next_poll_delay,
    )
    from providers.base import FailureKind, ProviderTaskStatus, TaskState
    from reelay.jobs import JobError, JobSpec, JobStatus, JobView, Resume, StoredVideo
    from reelay.jobs import settled_cost_micro_usd as settled_cost
    from reelay.storage import segment_key
    from workflows import console, search_attributes
    from workflows.contracts import ChainHandlers, SegmentProgress

MEMO_VIEW = "view"
#: Set in the memo of a job that keeps `MEMO_VIEW` current (see `MemoKeeper`).
MEMO_CURRENT = "current"
CALLBACK_MEMORY = 64
A = TypeVar("A")
R = TypeVar("R")

#: Marks runs whose submits keep the failover budget in the workflow (see the module doc).
#: Runs without it (started before) keep Temporal's schedule-to-close budget until they end.
BUDGETED_SUBMITS = "budgeted-submits"

# A lost attempt (worker gone: no heartbeat) is retried by Temporal on the same route; a
# provider's refusal to take the job comes back to the workflow, which keeps the budget.
SUBMIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=[RETRYABLE_TYPE, UNAVAILABLE_TYPE],
)
SUBMIT_ATTEMPT_TIMEOUT = timedelta(seconds=60)
SUBMIT_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# Back-off between submits to an unavailable route (a provider's Retry-After wins if longer).
SUBMIT_FIRST_DELAY_SECONDS = 1.0
SUBMIT_MAX_DELAY_SECONDS = 30.0
LEGACY_SUBMIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
#: Marks runs that take the path of every patch before it (`BUDGETED_SUBMITS`, `LEAN_JOBS`,
#: and the job workflow's `CLIP_WORKFLOW_SEGMENTS`, `LEDGER_STORE_SETTLE`, `LOCAL_SETTLE`)
#: on this one marker: each patch writes a marker and a `TemporalChangeVersion` upsert (a
#: visibility write) into the run's history, 8 events a job for those four. Ask for any of
#: them with `patched`. Later patches can be folded in the same way, by a `jobs-v6`.
JOBS_V5 = "jobs-v5"
#: Marks runs that take every patch's path on one marker (`JOBS_V5`'s and those since it:
#: `CURRENT_MEMO` and `END_JOB`).
JOBS_V6 = "jobs-v6"
#: Marks runs that take every patch's path on one marker (`JOBS_V6`'s and `STORE_IN_POLL`).
JOBS_V7 = "jobs-v7"
#: Marks runs that take every patch's path on one marker (`JOBS_V7`'s and `START_MEMO_KEPT`).
JOBS_V8 = "jobs-v8"
#: Marks runs that take every patch's path on one marker (`JOBS_V8`'s and `LOCAL_SUBMITS`).
JOBS_V9 = "jobs-v9"
#: Marks jobs whose memo follows their view (`MemoKeeper`): the API reads them from the memo.
CURRENT_MEMO = "current-memo"
#: Marks jobs that end with one local activity (`AccountActivities.end_job`): it settles
#: (if admitted through the ledger store) and counts the job by model, provider and state.
END_JOB = "end-job"
#: Marks runs whose poll loop stores the video of the task it saw succeed (no store step of
#: their own unless the loop hands it back: `activities.polling`).
STORE_IN_POLL = "store-in-poll"
#: Marks jobs that keep the memo they started with when it is their view, marked current
#: (by the API since then): their first workflow task writes no memo (`MemoKeeper.keep`).
START_MEMO_KEPT = "start-memo-kept"
#: Marks jobs that submit on a route with `submit_locally` by a local activity: the submit
#: needs no activity task, and the workflow task that ran it goes on to the poll loop (one
#: workflow task fewer). Runs without it submit through the provider's queue until they end.
LOCAL_SUBMITS = "local-submits"
#: The patches since `JOBS_V8` (a run on `JOBS_V8` took none of them).
SINCE_JOBS_V8 = frozenset({LOCAL_SUBMITS})
#: The patches since `JOBS_V7` (a run on `JOBS_V7` took none of them).
SINCE_JOBS_V7 = frozenset({START_MEMO_KEPT}) | SINCE_JOBS_V8
#: The patches since `JOBS_V6` (a run on `JOBS_V6` took none of them).
SINCE_JOBS_V6 = frozenset({STORE_IN_POLL}) | SINCE_JOBS_V7
#: The patches since `JOBS_V5` (a run on `JOBS_V5` took none of them).
SINCE_JOBS_V5 = frozenset({CURRENT_MEMO, END_JOB}) | SINCE_JOBS_V6
#: Marks runs that poll in one heartbeating activity (`activities.polling`) and check the job
#: at its first submit instead of in an activity of its own. Runs without it keep the timer
#: loop (`_poll_by_timers`) and `validate_job` until they end.
LEAN_JOBS = "lean-jobs"
#: How far progress moves between the poll loop's reports to the workflow (`PollRequest.
#: report_step`, each a signal and a workflow task), by what the workflow does with them: a
#: chain's segment tells its chain each `SEGMENT_PROGRESS_STEP`; a job with progress webhooks
#: sends one each `PROGRESS_EVENT_STEP`; any other job only keeps its memo (what lists and
#: the Temporal UI show) within `MEMO_PROGRESS_STEP`. A read of the job shows the loop's own
#: heartbeat, within `activities.polling.PROGRESS_SHOWN_STEP`, whatever the step.
SEGMENT_PROGRESS_STEP = 0.05
PROGRESS_EVENT_STEP = 0.1
MEMO_PROGRESS_STEP = 0.25
# Past the deadline the loop returns by itself; this is the backstop if no worker runs it.
POLL_DEADLINE_GRACE = timedelta(seconds=60)
POLL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=15)
)
# Storing waits out S3 for as long as the job's deadline allows (at least this long).
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=60)
)
STORE_AT_LEAST = timedelta(minutes=30)
STORE_HEARTBEAT_TIMEOUT = timedelta(seconds=15)
# A provider task that ends in an internal error is submitted once more before the job fails.
MAX_SUBMISSIONS = 2
# How long the last (or only) route may stay unavailable before the job fails.
SUBMIT_BUDGET_SECONDS = 600

_FAILURE_CODES = {
    FailureKind.CONTENT_REFUSED: "content_policy_violation",
    FailureKind.INVALID_REQUEST: "invalid_request",
    FailureKind.INTERNAL: "provider_error",
}
STORAGE_UNAVAILABLE_MESSAGE = "the video could not be stored: storage is unavailable"


def submit_queue(task_queue: str, provider: str) -> str:
    """The task queue of `provider`'s submits (rate-limited per provider by the workers)."""
    return f"{task_queue}.submit.{provider}"


def poll_queue(task_queue: str) -> str:
    """The task queue of the poll loops: one long-lived, mostly sleeping activity per job in
    flight, so its workers offer many more slots than the main queue."""
    return f"{task_queue}.poll"


class JobFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = JobError(code=code, message=message)


class ProviderUnavailable(JobFailed):
    """The provider answered that it cannot take or serve the request now (retryable)."""

    def __init__(self, message: str, retry_after: timedelta | None) -> None:
        super().__init__("provider_unavailable", message)
        self.retry_after = retry_after


async def run_activity(
    fn: Callable[[Any, A], Awaitable[R]],
    arg: A,
    start_to_close: timedelta,
    *,
    retry: RetryPolicy | None = None,
    schedule_to_close: timedelta | None = None,
    heartbeat: timedelta | None = None,
    task_queue: str | None = None,
    summary: str | None = None,
) -> R:
    """Run an activity; a failure it cannot recover from becomes `JobFailed`. `summary` is
    what the Temporal UI shows for it (`workflows.console`)."""
    try:
        return await workflow.execute_activity_method(
            fn,
            arg,
            summary=summary,
            start_to_close_timeout=start_to_close,
            schedule_to_close_timeout=schedule_to_close,
            heartbeat_timeout=heartbeat,
            retry_policy=retry,
            task_queue=task_queue,
        )
    except ActivityError as err:
        raise job_failure(err) from err


async def _submit_attempt(request: SubmitRequest, schedule_to_close: timedelta) -> str:
    """The provider's task id for one submit (Temporal retrying lost attempts): by a local
    activity where the route says so (since `LOCAL_SUBMITS`) and the worker has a turn free
    for its provider, else through the provider's submit queue."""
    route = request.route
    summary = console.submit_summary(route)
    if route.submit_locally and patched(LOCAL_SUBMITS):
        try:
            return await workflow.execute_local_activity_method(
                JobActivities.submit_to_provider,
                request,
                summary=summary,
                start_to_close_timeout=SUBMIT_ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=schedule_to_close,
                retry_policy=SUBMIT_RETRY,
            )
        except FailureError as err:
            if _failure_type(err) != TURNS_TAKEN_TYPE:
                raise job_failure(err) from err
    return await run_activity(
        JobActivities.submit_to_provider,
        request,
        SUBMIT_ATTEMPT_TIMEOUT,
        summary=summary,
        retry=SUBMIT_RETRY,
        schedule_to_close=schedule_to_close,
        heartbeat=SUBMIT_HEARTBEAT_TIMEOUT,
        task_queue=submit_queue(workflow.info().task_queue, route.adapter),
    )


def _cause(err: FailureError) -> BaseException | None:
    """What an activity failed with: `err` is an `ActivityError` around it, or (from a local
    activity) the failure itself."""
    return err.cause if isinstance(err, ActivityError) else err


def _failure_type(err: FailureError) -> str | None:
    """The application error type of an activity's failure."""
    cause = _cause(err)
    return cause.type if isinstance(cause, ApplicationError) else None


def job_failure(err: FailureError) -> BaseException:
    """What an activity's failure means for the job: cancelled, or `JobFailed` with why."""
    cause = _cause(err)
    if isinstance(cause, CancelledError):  # the job was cancelled mid-activity
        return asyncio.CancelledError()
    # Out of time or attempts: the last attempt's failure says why.
    last = cause.cause if isinstance(cause, ActivityTimeoutError) and cause.cause else cause
    if isinstance(last, ApplicationError):
        if last.type == STORAGE_TYPE:
            return JobFailed(STORAGE_TYPE, STORAGE_UNAVAILABLE_MESSAGE)
        if last.type in (RETRYABLE_TYPE, UNAVAILABLE_TYPE):
            return ProviderUnavailable(last.message, last.next_retry_delay)
        if last.non_retryable:
            return JobFailed(last.type or "provider_error", last.message)
    if isinstance(cause, ActivityTimeoutError):
        return JobFailed("provider_unavailable", "the provider did not answer in time")
    return JobFailed("provider_unavailable", str(cause or err))


def patched(patch_id: str) -> bool:
    """`workflow.patched(patch_id)` for a patch a fold marker stands for: true, without a
    marker of its own, in runs since `JOBS_V9` (every patch), `JOBS_V8`, `JOBS_V7`, `JOBS_V6`
    or `JOBS_V5` (those before each). The run's first call settles each fold for the whole
    run (the SDK keeps the answer): where a run has asked nothing yet, every earlier patch
    would have said true as well; a run that replays without a fold's marker asks each patch
    as it always did."""
    if workflow.patched(JOBS_V9):
        return True
    if patch_id in SINCE_JOBS_V8:
        return workflow.patched(patch_id)
    if workflow.patched(JOBS_V8):
        return True
    if patch_id in SINCE_JOBS_V7:
        return workflow.patched(patch_id)
    if workflow.patched(JOBS_V7):
        return True
    if patch_id in SINCE_JOBS_V6:
        return workflow.patched(patch_id)
    if workflow.patched(JOBS_V6):
        return True
    if patch_id not in SINCE_JOBS_V5 and workflow.patched(JOBS_V5):
        return True
    return workflow.patched(patch_id)


def set_status(view: JobView, status: JobStatus) -> None:
    view.status = status
    workflow.upsert_search_attributes([search_attributes.STATUS.value_set(status.value)])
    show(view)


def show(view: JobView, *, next_poll_at: datetime | None = None) -> None:
    """The job's line in the Temporal UI (current details: no command, nothing in history)."""
    workflow.set_current_details(console.job_current_details(view, next_poll_at=next_poll_at))


class MemoKeeper:
    """The job's memo: its view as of the start, then (`keep`, since `CURRENT_MEMO`) as of
    every workflow task that changed it, with `MEMO_CURRENT` set. One memo upsert per such
    task, so the API reads a running job with one `describe`: no query waits for a worker
    and none replays a history. Without `keep` (runs before the patch), the memo is written
    only at the end."""

    def __init__(self, view: JobView) -> None:
        self._view = view
        self._kept: JobView | None = None
        self._current = False
        self._keeper: asyncio.Task[None] | None = None

    def keep(self, *, from_start: bool) -> None:
        """Keep the memo current from here. `from_start` (since `START_MEMO_KEPT`): the memo
        the API started the job with, marked current, stands for the view until it changes
        in more than the `started_at` a job's first task sets (that shows with the next
        change, its status going to processing), so the first task writes no memo. Runs
        before it rewrite the memo in their first task."""
        self._current = True
        if from_start and workflow.memo_value(MEMO_CURRENT, default=False):
            start = workflow.memo_value(MEMO_VIEW, type_hint=JobView)
            self._kept = start.model_copy(update={"started_at": workflow.now()})
        self._keeper = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._view != self._kept)
            self.publish()

    def publish(self) -> None:
        memo: dict[str, Any] = {MEMO_VIEW: self._view}
        if self._current:
            memo[MEMO_CURRENT] = True
            self._kept = self._view.model_copy(deep=True)
        workflow.upsert_memo(memo)


class ClipMaker:
    """Makes one clip of `job` into `view`: submit with failover, poll, store.

    `on_progress` runs whenever the provider reports progress (the job's progress webhooks);
    a chain's segment also reports its progress to the chain.
    """

    def __init__(
        self, job: JobSpec, view: JobView, on_progress: Callable[[], Awaitable[None]]
    ) -> None:
        self._job = job
        self._view = view
        self._on_progress = on_progress
        self._wake = False
        self._progressed = False
        self._reported_progress = 0.0
        self._polls = 0
        self._route_index = 0
        self._callbacks: list[str] = []
        #: The video the poll loop stored (since `STORE_IN_POLL`), if it did.
        self._stored_by_loop: StoredVideo | None = None
        #: The first submit re-checks the job against the catalog (set by the job workflow).
        self.check_at_submit = False
        if job.resume is not None:
            route = job.routes[job.resume.route_index]
            self._route_index = job.resume.route_index
            view.provider = route.adapter
            view.model_used = route.upstream_model
            view.status = JobStatus.PROCESSING
            view.provider_task_id = job.resume.task_id
            view.started_at = job.resume.started_at
            view.progress = job.resume.progress
            self._polls = job.resume.polls

    def wake(self) -> None:
        """Poll now instead of waiting for the timer."""
        self._wake = True

    def take_callback(self, event_id: str) -> None:
        self._callbacks.append(event_id)
        del self._callbacks[:-CALLBACK_MEMORY]
        self._wake = True

    def progressed(self, report: PollProgress) -> None:
        """The poll loop saw progress move by a step."""
        view = self._view
        if view.status is not JobStatus.PROCESSING:  # a loop left behind by a callback
            return
        view.progress = advanced(view.progress, report.progress)
        view.eta_seconds = report.eta_seconds
        self._polls = max(self._polls, report.polls)
        self._progressed = True
        job = self._job
        delay = next_poll_delay(
            polls=self._polls,
            remaining=report.eta_seconds,
            min_seconds=job.poll_min_seconds,
            max_seconds=job.poll_max_seconds,
        )
        show(view, next_poll_at=workflow.now() + timedelta(seconds=delay))

    def check_callback(self, event_id: str) -> None:
        if event_id in self._callbacks:
            raise ApplicationError(f"callback {event_id} was already received", type="replayed")

    @property
    def submitted(self) -> bool:
        return self._view.provider_task_id is not None

    async def make(self) -> None:
        job, view = self._job, self._view
        if job.resume is None:
            view.started_at = workflow.now()
            await self._submit(first_route=0)
        for submissions in range(1, MAX_SUBMISSIONS + 1):
            status = await self._poll_until_done()
            if status.state is TaskState.SUCCEEDED:
                break
            if status.failure_kind is FailureKind.INTERNAL and submissions < MAX_SUBMISSIONS:
                await self._submit(first_route=self._route_index)
                continue
            raise JobFailed(
                _FAILURE_CODES.get(status.failure_kind or FailureKind.INTERNAL, "provider_error"),
                _failure_message(status),
            )
        if self._stored_by_loop is not None:
            self._store_result(self._stored_by_loop)
            return
        set_status(view, JobStatus.STORING)
        route = job.routes[self._route_index]
        video = await run_activity(
            JobActivities.store_video,
            self._store_request(),
            timedelta(minutes=30),
            summary=console.store_summary(job, route),
            retry=STORE_RETRY,
            schedule_to_close=max(self._deadline() - workflow.now(), STORE_AT_LEAST),
            heartbeat=STORE_HEARTBEAT_TIMEOUT,
        )
        self._store_result(video)

    def _store_request(self) -> StoreRequest:
        """What storing the task's video takes (on the route that made it)."""
        job = self._job
        route = job.routes[self._route_index]
        trim = job.duration_seconds if (route.clip_seconds or 0) > job.duration_seconds else None
        segment = job.segment
        return StoreRequest(
            job_id=job.job_id,
            task=self.task,
            trim_to_seconds=trim,
            key=segment_key(segment.parent_id, segment.index) if segment else None,
            keep_last_frame=segment is not None and segment.keep_last_frame,
        )

    def _store_result(self, video: StoredVideo) -> None:
        view = self._view
        view.video = video
        view.cost_micro_usd = settled_cost(self._job, video.duration_seconds)
        view.progress = 1.0
        view.eta_seconds = 0.0
        if self._job.segment is not None:
            view.segments_done = 1

    @property
    def task(self) -> ProviderTaskRef:
        assert self._view.provider_task_id is not None
        route = self._job.routes[self._route_index]
        return ProviderTaskRef(route=route, task_id=self._view.provider_task_id)

    def _deadline(self) -> datetime:
        assert self._view.started_at is not None
        return self._view.started_at + timedelta(seconds=self._job.deadline_seconds)

    async def _submit(self, *, first_route: int) -> None:
        """Submit on the first route that takes the job, failing over while routes remain.

        Only an unavailable route fails over; a refusal or invalid request ends the job.
        One submission at a time.
        """
        job = self._job
        if not patched(BUDGETED_SUBMITS):
            return await self._submit_by_schedule_to_close(first_route=first_route)
        last = len(job.routes) - 1
        for index in range(first_route, last + 1):
            route = job.routes[index]
            budget = job.failover_after_seconds if index < last else SUBMIT_BUDGET_SECONDS
            task_id = await self._submit_to(index, budget)
            if task_id is None and index < last:
                workflow.logger.warning(
                    "route %s/%s unavailable, failing over", route.adapter, route.upstream_model
                )
                continue
            if task_id is None:
                raise JobFailed(
                    "provider_unavailable",
                    f"{job.model} is unavailable: its provider did not take the job "
                    f"for {budget:.0f} s",
                )
            self._accepted(index, task_id)
            return

    async def _submit_to(self, index: int, budget_seconds: float) -> str | None:
        """The task id from route `index`, or None once it stayed unavailable for its budget.

        The budget runs from the first attempt the provider refused, in workflow time; lost
        attempts (no answer from the provider) are retried by Temporal and never count.
        """
        job = self._job
        route = job.routes[index]
        unavailable_since: datetime | None = None
        delay = SUBMIT_FIRST_DELAY_SECONDS
        while True:
            attempt_at = workflow.now()
            to_deadline = self._deadline() - attempt_at
            request = SubmitRequest(job=job, route=route, check=self.check_at_submit)
            try:
                task_id = await _submit_attempt(request, max(to_deadline, SUBMIT_ATTEMPT_TIMEOUT))
                self.check_at_submit = False
                return task_id
            except ProviderUnavailable as unavailable:
                unavailable_since = unavailable_since or attempt_at
                retry_after = unavailable.retry_after
                now = workflow.now()
                budget_left = budget_seconds - (now - unavailable_since).total_seconds()
                deadline_left = (self._deadline() - now).total_seconds()
            if deadline_left <= 0:
                raise self._deadline_exceeded()
            if budget_left <= 0:
                return None
            wait = max(delay, retry_after.total_seconds() if retry_after else 0.0)
            await workflow.sleep(min(wait, budget_left, deadline_left))
            delay = min(delay * 2, SUBMIT_MAX_DELAY_SECONDS)

    async def _submit_by_schedule_to_close(self, *, first_route: int) -> None:
        """Submits of runs started before `BUDGETED_SUBMITS`: the budget is the activity's
        schedule-to-close. Remove once no such run is open."""
        job = self._job
        last = len(job.routes) - 1
        for index in range(first_route, last + 1):
            route = job.routes[index]
            budget = job.failover_after_seconds if index < last else SUBMIT_BUDGET_SECONDS
            try:
                task_id = await run_activity(
                    JobActivities.submit_to_provider,
                    SubmitRequest(job=job, route=route),
                    timedelta(seconds=60),
                    retry=LEGACY_SUBMIT_RETRY,
                    schedule_to_close=timedelta(seconds=budget),
                    task_queue=submit_queue(workflow.info().task_queue, route.adapter),
                )
            except JobFailed as failed:
                if failed.error.code == "provider_unavailable" and index < last:
                    continue
                raise
            self._accepted(index, task_id)
            return

    def _accepted(self, index: int, task_id: str) -> None:
        route = self._job.routes[index]
        self._route_index = index
        self._view.provider = route.adapter
        self._view.model_used = route.upstream_model
        self._view.provider_task_id = task_id
        self._view.progress = 0.0
        set_status(self._view, JobStatus.PROCESSING)

    async def _poll_until_done(self) -> ProviderTaskStatus:
        if not patched(LEAN_JOBS):
            return await self._poll_by_timers()
        while True:
            status = await self._poll_in_activity()
            if status is not None:
                return status
            # Continued as new mid-poll (a long run's history): the loop starts again there.
            # The next run starts with the view as its memo, for reads before its first task.
            workflow.continue_as_new(
                self._job.model_copy(update={"resume": self._resume()}),
                memo={MEMO_VIEW: self._view},
            )

    async def _poll_in_activity(self) -> ProviderTaskStatus | None:
        """Run the poll loop activity until the task ends. Meanwhile, progress reports update
        the view (and the job's progress webhooks), and a provider callback is checked at
        once with a poll of the workflow's own. None: continue as new (the loop is left)."""
        job, view = self._job, self._view
        assert view.started_at is not None
        deadline = self._deadline()
        request = PollRequest(
            workflow_id=workflow.info().workflow_id,
            task=self.task,
            started_at=view.started_at,
            deadline=deadline,
            polls=self._polls,
            progress=view.progress,
            poll_min_seconds=job.poll_min_seconds,
            poll_max_seconds=job.poll_max_seconds,
            report_step=self._report_step(),
            store=self._store_request() if patched(STORE_IN_POLL) else None,
        )
        backstop = max(deadline - workflow.now(), timedelta(0)) + POLL_DEADLINE_GRACE
        loop = workflow.start_activity_method(
            PollingActivities.poll_until_done,
            request,
            summary=console.poll_summary(request.task.route, request.task.task_id),
            task_queue=poll_queue(workflow.info().task_queue),
            start_to_close_timeout=backstop,
            schedule_to_close_timeout=backstop,
            # Silent this long, the loop's worker is presumed lost: the attempt is retried (from
            # the heartbeat's position) on another worker.
            heartbeat_timeout=timedelta(seconds=job.poll_heartbeat_timeout_seconds),
            retry_policy=POLL_RETRY,
            # A loop left behind (the task ended on a callback) need not confirm it stopped.
            cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
        )
        try:
            while True:
                self._wake = self._progressed = False
                await workflow.wait_condition(lambda: loop.done() or self._wake or self._progressed)
                if loop.done():
                    return self._loop_ended(await self._outcome(loop))
                if self._progressed:
                    await self._report_segment_progress()
                    await self._on_progress()
                if self._wake:
                    status = await run_activity(
                        JobActivities.poll_provider,
                        self.task,
                        timedelta(seconds=30),
                        retry=POLL_RETRY,
                        summary=console.poll_summary(self.task.route, self.task.task_id),
                    )
                    self._polls += 1
                    if status.state in TERMINAL:
                        return status
                    view.progress = advanced(view.progress, status.progress)
                    show(view)
                if workflow.info().is_continue_as_new_suggested():
                    return None
        finally:
            if not loop.done():
                loop.cancel()

    async def _outcome(self, loop: workflow.ActivityHandle[PollOutcome]) -> PollOutcome:
        try:
            return await loop
        except ActivityError as err:
            failure = job_failure(err)
            # The loop's backstop timeout fires only past the deadline: no worker ran it.
            if isinstance(failure, JobFailed) and workflow.now() >= self._deadline():
                raise self._deadline_exceeded() from err
            raise failure from err

    def _loop_ended(self, outcome: PollOutcome) -> ProviderTaskStatus:
        self._polls = outcome.polls
        self._stored_by_loop = outcome.video
        self._view.progress = max(self._view.progress, outcome.progress)
        if outcome.deadline_passed:
            raise self._deadline_exceeded()
        return outcome.status

    def _deadline_exceeded(self) -> JobFailed:
        job = self._job
        return JobFailed(
            "deadline_exceeded", f"{job.model} did not finish within {job.deadline_seconds} s"
        )

    async def _poll_by_timers(self) -> ProviderTaskStatus:
        """Polls of runs started before `LEAN_JOBS`: a timer and an activity per poll.
        Remove once no such run is open."""
        job, view = self._job, self._view
        assert view.started_at is not None
        deadline = self._deadline()
        while True:
            left = (deadline - workflow.now()).total_seconds()
            if left <= 0:
                raise self._deadline_exceeded()
            status = await run_activity(
                JobActivities.poll_provider,
                self.task,
                timedelta(seconds=30),
                retry=POLL_RETRY,
                schedule_to_close=timedelta(seconds=max(left, 30)),
            )
            self._polls += 1
            if status.state in TERMINAL:
                return status
            if status.progress is not None:
                view.progress = advanced(view.progress, status.progress)
                await self._report_segment_progress()
                await self._on_progress()
            elapsed = (workflow.now() - view.started_at).total_seconds()
            remaining = estimate_remaining(elapsed, status.progress)
            view.eta_seconds = remaining
            delay = next_poll_delay(
                polls=self._polls,
                remaining=remaining,
                min_seconds=job.poll_min_seconds,
                max_seconds=job.poll_max_seconds,
            )
            self._wake = False
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(lambda: self._wake, timeout=min(delay, left))
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(job.model_copy(update={"resume": self._resume()}))

    def _report_step(self) -> float:
        """The poll loop's progress reports this workflow acts on (see `MEMO_PROGRESS_STEP`).
        Only the activity's argument: a run replays whatever step its loop was started with."""
        if self._job.segment is not None:
            return SEGMENT_PROGRESS_STEP
        if self._job.notifies("progress"):
            return PROGRESS_EVENT_STEP
        return MEMO_PROGRESS_STEP

    async def _report_segment_progress(self) -> None:
        """A segment tells its chain how far it is (in steps of `SEGMENT_PROGRESS_STEP`)."""
        segment = self._job.segment
        if segment is None or self._view.progress < self._reported_progress + SEGMENT_PROGRESS_STEP:
            return
        self._reported_progress = self._view.progress
        await workflow.get_external_workflow_handle(segment.parent_id).signal(
            ChainHandlers.segment_progress,
            SegmentProgress(index=segment.index, progress=self._view.progress),
        )

    def _resume(self) -> Resume:
        assert self._view.started_at is not None
        return Resume(
            task_id=self.task.task_id,
            route_index=self._route_index,
            started_at=self._view.started_at,
            progress=self._view.progress,
            polls=self._polls,
        )

    async def cancel_upstream(self) -> None:
        if not self.submitted:
            return
        try:
            await run_activity(
                JobActivities.cancel_at_provider,
                self.task,
                timedelta(seconds=30),
                summary=console.cancel_summary(self.task.route, self.task.task_id),
                retry=RetryPolicy(maximum_attempts=5),
            )
        except JobFailed:
            workflow.logger.warning(
                "could not cancel provider task %s", self._view.provider_task_id
            )


def _failure_message(status: ProviderTaskStatus) -> str:
    reason = status.failure or "the provider failed the task"
    if status.failure_kind is FailureKind.CONTENT_REFUSED:
        return f"Content policy violation: {reason}"
    if status.state is TaskState.CANCELLED:
        return "the provider cancelled the task"
    return reason


@workflow.defn
class ClipWorkflow:
    """One segment of a chained job, started by the chain's `VideoGenerationWorkflow`
    (id `<job>:segment:<n>`): durable on its own, so a crash resumes at the segment in
    flight, and its stored clip is what the chain stitches."""

    @workflow.init
    def __init__(self, job: JobSpec) -> None:
        self._view = JobView.from_spec(job)
        self._clip = ClipMaker(job, self._view, on_progress=_nothing)

    @workflow.query
    def view(self) -> JobView:
        return self._view

    @workflow.signal
    def provider_event(self) -> None:
        """A provider callback arrived: poll now instead of waiting for the timer."""
        self._clip.wake()

    @workflow.update
    def provider_callback(self, event_id: str) -> None:
        """A verified provider callback: poll now. Each event is taken once."""
        self._clip.take_callback(event_id)

    @provider_callback.validator
    def _new_callback_only(self, event_id: str) -> None:
        self._clip.check_callback(event_id)

    @workflow.signal(name=PROGRESS_SIGNAL)
    def provider_progress(self, report: PollProgress) -> None:
        """The poll loop saw the provider's progress move by a step."""
        self._clip.progressed(report)

    @workflow.run
    async def run(self, job: JobSpec) -> JobView:
        try:
            await self._clip.make()
        except asyncio.CancelledError:
            await self._clip.cancel_upstream()
            self._end(JobStatus.CANCELLED)
            raise
        except JobFailed as failed:
            if failed.error.code == "deadline_exceeded":
                await self._clip.cancel_upstream()
            self._view.error = failed.error
            self._end(JobStatus.FAILED)
            raise ApplicationError(
                failed.error.message, self._view, type=failed.error.code, non_retryable=True
            ) from None
        self._end(JobStatus.COMPLETED)
        return self._view

    def _end(self, status: JobStatus) -> None:
        self._view.completed_at = workflow.now()
        set_status(self._view, status)
        workflow.upsert_memo({MEMO_VIEW: self._view})


async def _nothing() -> None:
    """A segment sends no webhooks of its own (its chain does)."""
