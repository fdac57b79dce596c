"""`VideoGenerationWorkflow`: one job, from validation to a stored, settled video."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
)

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities.errors import RETRYABLE_TYPE
    from activities.inputs import ProviderTaskRef, StitchRequest, StoreRequest, SubmitRequest
    from activities.jobs import JobActivities
    from providers.base import FailureKind, ProviderTaskStatus, TaskState
    from reelay.accounts import Settlement
    from reelay.jobs import (
        Continuation,
        ImageRef,
        JobError,
        JobSpec,
        JobStatus,
        JobView,
        Resume,
        Route,
        SegmentRole,
        StoredVideo,
        settled_cost_micro_usd,
    )
    from reelay.storage import segment_key
    from reelay.webhooks import WebhookEvent, new_delivery
    from workflows import search_attributes
    from workflows.polling import estimate_remaining, next_poll_delay
    from workflows.webhook_delivery import start_webhook_delivery

MEMO_VIEW = "view"
CALLBACK_MEMORY = 64
A = TypeVar("A")
R = TypeVar("R")

SUBMIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
POLL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=15)
)
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=8,
)
# A provider task that ends in an internal error is submitted once more before the job fails.
MAX_SUBMISSIONS = 2
# How long the last (or only) route may stay unavailable before the job fails.
SUBMIT_BUDGET_SECONDS = 600

_EVENTS: dict[JobStatus, WebhookEvent] = {
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}
_FAILURE_CODES = {
    FailureKind.CONTENT_REFUSED: "content_policy_violation",
    FailureKind.INVALID_REQUEST: "invalid_request",
    FailureKind.INTERNAL: "provider_error",
}


def submit_queue(task_queue: str, provider: str) -> str:
    """The task queue of `provider`'s submits (rate-limited per provider by the workers)."""
    return f"{task_queue}.submit.{provider}"


class SegmentProgress(BaseModel):
    index: int
    progress: float


class JobFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = JobError(code=code, message=message)


@workflow.defn
class VideoGenerationWorkflow:
    @workflow.init
    def __init__(self, job: JobSpec) -> None:
        self._view = JobView.from_spec(job)
        self._wake = False
        self._callbacks: list[str] = []
        self._current_segment = 0
        self._made_seconds = 0.0
        self._reported_progress = 0.0
        self._progress_events = 0
        self._notified_progress = 0.0
        self._notified_at = workflow.now()
        self._admitted = not job.queued or job.resume is not None
        self._polls = 0
        self._job_routes = job.routes
        self._route_index = 0
        if job.resume is not None:
            route = job.routes[job.resume.route_index]
            self._route_index = job.resume.route_index
            self._view.provider = route.adapter
            self._view.model_used = route.upstream_model
            self._view.status = JobStatus.PROCESSING
            self._view.provider_task_id = job.resume.task_id
            self._view.started_at = job.resume.started_at
            self._view.progress = job.resume.progress
            self._polls = job.resume.polls

    @workflow.query
    def view(self) -> JobView:
        return self._view

    @workflow.signal
    def provider_event(self) -> None:
        """A provider callback arrived: poll now instead of waiting for the timer."""
        self._wake = True

    @workflow.update
    def provider_callback(self, event_id: str) -> None:
        """A verified provider callback: poll now. Each event is taken once."""
        self._callbacks.append(event_id)
        del self._callbacks[:-CALLBACK_MEMORY]
        self._wake = True

    @provider_callback.validator
    def _new_callback_only(self, event_id: str) -> None:
        if event_id in self._callbacks:
            raise ApplicationError(f"callback {event_id} was already received", type="replayed")

    @workflow.signal
    def admit(self) -> None:
        """The tenant's account has a free slot for this queued job."""
        self._admitted = True

    @workflow.run
    async def run(self, job: JobSpec) -> JobView:
        try:
            if not self._admitted:
                await workflow.wait_condition(lambda: self._admitted)
            await self._generate(job)
        except asyncio.CancelledError:
            await self._cancel_upstream(job)
            await self._finish(job, JobStatus.CANCELLED)
            raise
        except JobFailed as failed:
            if failed.error.code == "deadline_exceeded":
                await self._cancel_upstream(job)
            self._view.error = failed.error
            await self._finish(job, JobStatus.FAILED)
            raise ApplicationError(
                failed.error.message, self._view, type=failed.error.code, non_retryable=True
            ) from None
        await self._finish(job, JobStatus.COMPLETED)
        return self._view

    async def _generate(self, job: JobSpec) -> None:
        if job.segments:
            await self._generate_chain(job)
            return
        if job.resume is None:
            if job.segment is None:  # a chain's segment was validated with its chain
                await self._activity(JobActivities.validate_job, job, timedelta(seconds=30))
            self._view.started_at = workflow.now()
            await self._submit(job, first_route=0)
        for submissions in range(1, MAX_SUBMISSIONS + 1):
            status = await self._poll_until_done(job, self._task)
            if status.state is TaskState.SUCCEEDED:
                break
            if status.failure_kind is FailureKind.INTERNAL and submissions < MAX_SUBMISSIONS:
                await self._submit(job, first_route=self._route_index)
                continue
            raise JobFailed(
                _FAILURE_CODES.get(status.failure_kind or FailureKind.INTERNAL, "provider_error"),
                _failure_message(status),
            )
        self._set_status(JobStatus.STORING)
        route = job.routes[self._route_index]
        trim = job.duration_seconds if (route.clip_seconds or 0) > job.duration_seconds else None
        segment = job.segment
        video = await self._activity(
            JobActivities.store_video,
            StoreRequest(
                job_id=job.job_id,
                task=self._task,
                trim_to_seconds=trim,
                key=segment_key(segment.parent_id, segment.index) if segment else None,
                keep_last_frame=segment is not None and segment.keep_last_frame,
            ),
            timedelta(minutes=30),
            retry=STORE_RETRY,
            heartbeat=timedelta(seconds=15),
        )
        self._store_result(job, video)

    async def _generate_chain(self, job: JobSpec) -> None:
        """Make the video as segments, each a child workflow that continues the one before
        (durable on its own: a crash resumes at the segment in flight, and segments made
        are never made again), then stitch them into one video of the requested length."""
        route = job.routes[0]
        count = len(job.segments)
        self._view.started_at = self._view.started_at or workflow.now()
        self._set_status(JobStatus.PROCESSING)
        made: list[JobView] = []
        for index, clip in enumerate(job.segments):
            previous = made[-1] if made else None
            part = _segment_spec(job, route, index, clip, previous)
            self._current_segment = index
            try:
                made.append(
                    await workflow.execute_child_workflow(
                        VideoGenerationWorkflow.run, part, id=part.job_id
                    )
                )
            except ChildWorkflowError as err:
                cause = err.cause
                if isinstance(cause, CancelledError):  # the chain's cancel reached the segment
                    raise asyncio.CancelledError from err
                if isinstance(cause, ApplicationError):
                    raise JobFailed(cause.type or "provider_error", cause.message) from err
                raise
            self._made_seconds += made[-1].video.duration_seconds if made[-1].video else 0.0
            self._view.segments_done = index + 1
            self._view.progress = min(0.99, (index + 1) / count)
            self._view.provider_task_id = made[-1].provider_task_id
        self._set_status(JobStatus.STORING)
        video = await self._activity(
            JobActivities.stitch_segments,
            StitchRequest(
                job_id=job.job_id,
                segment_keys=[view.video.key for view in made if view.video is not None],
                seconds=job.duration_seconds,
                drop_seam_frame=route.continuation is Continuation.LAST_FRAME,
            ),
            timedelta(minutes=60),
            retry=STORE_RETRY,
            heartbeat=timedelta(seconds=30),
        )
        self._store_result(job, video)

    @workflow.signal
    def segment_progress(self, report: SegmentProgress) -> None:
        """A segment's own progress, so the chain's progress counts the one in flight."""
        count = self._view.segments_total or 1
        if report.index == self._current_segment:
            overall = (report.index + report.progress) / count
            self._view.progress = min(0.99, max(self._view.progress, overall))

    async def _report_segment_progress(self, job: JobSpec) -> None:
        """A segment tells its chain how far it is (in steps of 5 %)."""
        if job.segment is None or self._view.progress < self._reported_progress + 0.05:
            return
        self._reported_progress = self._view.progress
        await workflow.get_external_workflow_handle(job.segment.parent_id).signal(
            VideoGenerationWorkflow.segment_progress,
            SegmentProgress(index=job.segment.index, progress=self._view.progress),
        )

    def _store_result(self, job: JobSpec, video: StoredVideo) -> None:
        self._view.video = video
        self._view.cost_micro_usd = settled_cost_micro_usd(job, video.duration_seconds)
        self._view.progress = 1.0
        self._view.eta_seconds = 0.0
        if job.segment is not None:
            self._view.segments_done = 1

    @property
    def _task(self) -> ProviderTaskRef:
        assert self._view.provider_task_id is not None
        route = self._job_routes[self._route_index]
        return ProviderTaskRef(route=route, task_id=self._view.provider_task_id)

    async def _submit(self, job: JobSpec, *, first_route: int) -> None:
        """Submit on the first route that takes the job, failing over while routes remain.

        Only an unavailable route (connection errors, 5xx or 429 beyond its retry budget)
        fails over; a refusal or invalid request ends the job. One submission at a time.
        """
        last = len(job.routes) - 1
        for index in range(first_route, last + 1):
            route = job.routes[index]
            budget = job.failover_after_seconds if index < last else SUBMIT_BUDGET_SECONDS
            try:
                task_id = await self._activity(
                    JobActivities.submit_to_provider,
                    SubmitRequest(job=job, route=route),
                    timedelta(seconds=60),
                    retry=SUBMIT_RETRY,
                    schedule_to_close=timedelta(seconds=budget),
                    task_queue=submit_queue(workflow.info().task_queue, route.adapter),
                )
            except JobFailed as failed:
                if failed.error.code == "provider_unavailable" and index < last:
                    workflow.logger.warning(
                        "route %s/%s unavailable, failing over",
                        route.adapter,
                        route.upstream_model,
                        extra={"tenant": job.tenant_id, "provider": route.adapter},
                    )
                    continue
                raise
            self._route_index = index
            self._view.provider = route.adapter
            self._view.model_used = route.upstream_model
            self._view.provider_task_id = task_id
            self._view.progress = 0.0
            self._set_status(JobStatus.PROCESSING)
            return

    async def _poll_until_done(self, job: JobSpec, task: ProviderTaskRef) -> ProviderTaskStatus:
        assert self._view.started_at is not None
        deadline = self._view.started_at + timedelta(seconds=job.deadline_seconds)
        while True:
            left = (deadline - workflow.now()).total_seconds()
            if left <= 0:
                raise JobFailed(
                    "deadline_exceeded",
                    f"{job.model} did not finish within {job.deadline_seconds} s",
                )
            status = await self._activity(
                JobActivities.poll_provider,
                task,
                timedelta(seconds=30),
                retry=POLL_RETRY,
                schedule_to_close=timedelta(seconds=max(left, 30)),
            )
            self._polls += 1
            if status.state in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED):
                return status
            if status.progress is not None:
                self._view.progress = max(self._view.progress, min(status.progress, 0.99))
                await self._report_segment_progress(job)
                await self._maybe_notify_progress(job)
            elapsed = (workflow.now() - self._view.started_at).total_seconds()
            remaining = estimate_remaining(elapsed, status.progress)
            self._view.eta_seconds = remaining
            delay = next_poll_delay(
                polls=self._polls,
                remaining=remaining,
                min_seconds=job.poll_min_seconds,
                max_seconds=job.poll_max_seconds,
            )
            self._wake = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._wake, timeout=min(delay, left))
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(job.model_copy(update={"resume": self._resume()}))

    def _resume(self) -> Resume:
        assert self._view.started_at is not None
        return Resume(
            task_id=self._task.task_id,
            route_index=self._route_index,
            started_at=self._view.started_at,
            progress=self._view.progress,
            polls=self._polls,
        )

    async def _cancel_upstream(self, job: JobSpec) -> None:
        if self._view.provider_task_id is None or job.segments:
            return  # nothing submitted, or a chain (its segments cancel their own tasks)
        try:
            await self._activity(
                JobActivities.cancel_at_provider,
                self._task,
                timedelta(seconds=30),
                retry=RetryPolicy(maximum_attempts=5),
            )
        except JobFailed:
            workflow.logger.warning(
                "could not cancel provider task %s",
                self._view.provider_task_id,
                extra={"tenant": job.tenant_id, "provider": self._view.provider},
            )

    async def _activity(
        self,
        fn: Callable[[Any, A], Awaitable[R]],
        arg: A,
        start_to_close: timedelta,
        *,
        retry: RetryPolicy | None = None,
        schedule_to_close: timedelta | None = None,
        heartbeat: timedelta | None = None,
        task_queue: str | None = None,
    ) -> R:
        """Run an activity; a failure it cannot recover from becomes `JobFailed`."""
        try:
            return await workflow.execute_activity_method(
                fn,
                arg,
                start_to_close_timeout=start_to_close,
                schedule_to_close_timeout=schedule_to_close,
                heartbeat_timeout=heartbeat,
                retry_policy=retry,
                task_queue=task_queue,
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, CancelledError):  # the job was cancelled mid-activity
                raise asyncio.CancelledError from err
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                raise JobFailed(cause.type or "provider_error", cause.message) from err
            if isinstance(cause, ApplicationError) and cause.type == RETRYABLE_TYPE:
                raise JobFailed("provider_unavailable", cause.message) from err
            raise JobFailed("provider_unavailable", str(cause or err)) from err

    async def _notify(self, job: JobSpec, event: WebhookEvent) -> None:
        """Start the delivery of `event` to the job's webhook, if it asked for it. Delivery
        is a workflow of its own: a failing endpoint never blocks or fails the job."""
        if job.webhook is None or event not in job.webhook.events:
            return
        sequence = None
        if event == "progress":
            self._progress_events += 1
            sequence = self._progress_events
        delivery = new_delivery(
            job_id=job.job_id,
            tenant_id=job.tenant_id,
            url=job.webhook.url,
            event=event,
            data=self._view.model_dump(mode="json"),
            at=workflow.now(),
            sequence=sequence,
        )
        self._view.webhook_deliveries.append(delivery.workflow_id)
        await start_webhook_delivery(delivery)

    async def _maybe_notify_progress(self, job: JobSpec) -> None:
        """Progress events: at most one per 10 % of progress and per 5 s."""
        now = workflow.now()
        if (
            self._view.progress >= self._notified_progress + 0.1
            and (now - self._notified_at).total_seconds() >= 5
        ):
            self._notified_progress, self._notified_at = self._view.progress, now
            await self._notify(job, "progress")

    def _set_status(self, status: JobStatus) -> None:
        self._view.status = status
        workflow.upsert_search_attributes([search_attributes.STATUS.value_set(status.value)])

    async def _finish(self, job: JobSpec, status: JobStatus) -> None:
        """Record the outcome, settle with the account once, and leave the final view in the
        memo (so listings and reads without a worker see it)."""
        self._view.completed_at = workflow.now()
        if status is JobStatus.CANCELLED and self._made_seconds:
            # A cancelled chain pays for the segments it made; the rest is refunded.
            self._view.cost_micro_usd = settled_cost_micro_usd(job, self._made_seconds)
        self._set_status(status)
        await self._notify(job, _EVENTS[status])
        workflow.upsert_memo({MEMO_VIEW: self._view})
        if job.account_id is not None:
            seconds = self._view.video.duration_seconds if self._view.video else 0.0
            settlement = Settlement(
                job_id=job.job_id, cost_micro_usd=self._view.cost_micro_usd or 0, seconds=seconds
            )
            await workflow.get_external_workflow_handle(job.account_id).signal("settle", settlement)


def _segment_spec(
    job: JobSpec, route: Route, index: int, clip: int, previous: JobView | None
) -> JobSpec:
    """Segment `index` of a chain: one clip that continues `previous` by the route's means."""
    last = index == len(job.segments) - 1
    mechanism = route.continuation
    image = job.image
    continue_from = None
    if previous is not None:
        image = None
        if mechanism is Continuation.LAST_FRAME:
            assert previous.video is not None and previous.video.last_frame_key is not None
            image = ImageRef(key=previous.video.last_frame_key, content_type="image/png")
        else:
            continue_from = previous.provider_task_id
    model = route.upstream_model if previous is None else route.continue_model
    return job.model_copy(
        update={
            "job_id": f"{job.job_id}:segment:{index}",
            "routes": [route.model_copy(update={"upstream_model": model or route.upstream_model})],
            "duration_seconds": clip,
            "segments": [],
            "segment": SegmentRole(
                parent_id=job.job_id,
                index=index,
                keep_last_frame=mechanism is Continuation.LAST_FRAME and not last,
            ),
            "image": image,
            "continue_from": continue_from,
            "account_id": None,
            "queued": False,
            "webhook": None,
            "resume": None,
        }
    )


def _failure_message(status: ProviderTaskStatus) -> str:
    reason = status.failure or "the provider failed the task"
    if status.failure_kind is FailureKind.CONTENT_REFUSED:
        return f"Content policy violation: {reason}"
    if status.state is TaskState.CANCELLED:
        return "the provider cancelled the task"
    return reason
