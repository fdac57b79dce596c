"""`VideoGenerationWorkflow`: one job, from validation to a stored, settled video."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.errors import RETRYABLE_TYPE
    from activities.inputs import ProviderTaskRef, StoreRequest, SubmitRequest
    from activities.jobs import JobActivities
    from providers.base import FailureKind, ProviderTaskStatus, TaskState
    from reelay.jobs import (
        JobError,
        JobSpec,
        JobStatus,
        JobView,
        Resume,
        settled_cost_micro_usd,
    )
    from workflows import search_attributes
    from workflows.polling import estimate_remaining, next_poll_delay

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

_FAILURE_CODES = {
    FailureKind.CONTENT_REFUSED: "content_policy_violation",
    FailureKind.INVALID_REQUEST: "invalid_request",
    FailureKind.INTERNAL: "provider_error",
}


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

    @workflow.run
    async def run(self, job: JobSpec) -> JobView:
        try:
            await self._generate(job)
        except asyncio.CancelledError:
            await self._cancel_upstream(job)
            self._finish(JobStatus.CANCELLED)
            raise
        except JobFailed as failed:
            if failed.error.code == "deadline_exceeded":
                await self._cancel_upstream(job)
            self._view.error = failed.error
            self._finish(JobStatus.FAILED)
            raise ApplicationError(
                failed.error.message, self._view, type=failed.error.code, non_retryable=True
            ) from None
        return self._view

    async def _generate(self, job: JobSpec) -> None:
        if job.resume is None:
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
        video = await self._activity(
            JobActivities.store_video,
            StoreRequest(job_id=job.job_id, task=self._task, trim_to_seconds=trim),
            timedelta(minutes=30),
            retry=STORE_RETRY,
            heartbeat=timedelta(seconds=15),
        )
        self._view.video = video
        self._view.cost_micro_usd = settled_cost_micro_usd(job, video.duration_seconds)
        self._view.progress = 1.0
        self._view.eta_seconds = 0.0
        self._finish(JobStatus.COMPLETED)

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
                )
            except JobFailed as failed:
                if failed.error.code == "provider_unavailable" and index < last:
                    workflow.logger.warning(
                        "route %s/%s unavailable, failing over", route.adapter, route.upstream_model
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
        if self._view.provider_task_id is None:
            return
        try:
            await self._activity(
                JobActivities.cancel_at_provider,
                self._task,
                timedelta(seconds=30),
                retry=RetryPolicy(maximum_attempts=5),
            )
        except JobFailed:
            workflow.logger.warning(
                "could not cancel provider task %s", self._view.provider_task_id
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
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                raise JobFailed(cause.type or "provider_error", cause.message) from err
            if isinstance(cause, ApplicationError) and cause.type == RETRYABLE_TYPE:
                raise JobFailed("provider_unavailable", cause.message) from err
            raise JobFailed("provider_unavailable", str(cause or err)) from err

    def _set_status(self, status: JobStatus) -> None:
        self._view.status = status
        workflow.upsert_search_attributes([search_attributes.STATUS.value_set(status.value)])

    def _finish(self, status: JobStatus) -> None:
        self._view.completed_at = workflow.now()
        self._set_status(status)


def _failure_message(status: ProviderTaskStatus) -> str:
    reason = status.failure or "the provider failed the task"
    if status.failure_kind is FailureKind.CONTENT_REFUSED:
        return f"Content policy violation: {reason}"
    if status.state is TaskState.CANCELLED:
        return "the provider cancelled the task"
    return reason
