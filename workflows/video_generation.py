"""`VideoGenerationWorkflow`: one job, from validation to a stored, settled video.

Every job the API starts is one of these (id = job id, query `view`), in one of two roles
fixed by its spec: a one-clip job makes its clip itself (`ClipMaker`); a chained job
(`job.segments`) runs each segment as a `ClipWorkflow` child and stitches them. Either way it
waits for its account's `admit` when queued, settles with the account once, and sends the
job's webhooks.

Settling: a job the API admitted through the ledger store (`account_id` `ledger:<tenant>`)
settles with the `settle_job` activity, behind `LEDGER_STORE_SETTLE` (a local activity since
`LOCAL_SETTLE`; since `END_JOB`, the local activity `end_job`, run by every job, which also
counts it); jobs started by the former `AccountWorkflow` (and their recorded histories) keep
signalling it.

Versioning: chains started before `CLIP_WORKFLOW_SEGMENTS` ran their segments as
`VideoGenerationWorkflow` children too (a spec with `segment` set); `workflow.patched` keeps
those runs, and the segments they started, on the old path (`_legacy_chain`, and a `segment`
spec made here as a clip) until they end. Remove both, and `JobSpec.segment` handling here,
once no run older than the patch is open. A patch rather than a new entry type, because the
API starts, lists (`WorkflowType = 'VideoGenerationWorkflow'`) and reads jobs by this type.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, CancelledError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.accounts import AccountActivities, JobEnd, SettleJob
    from activities.inputs import StitchRequest
    from activities.jobs import JobActivities
    from activities.polling import PROGRESS_SIGNAL, PollProgress
    from reelay.accounts import Settlement, is_ledger_account
    from reelay.jobs import (
        Continuation,
        ImageRef,
        JobSpec,
        JobStatus,
        JobView,
        Route,
        SegmentRole,
        settled_cost_micro_usd,
    )
    from reelay.webhooks import WebhookEvent, new_delivery
    from workflows import console
    from workflows.clip import (
        CURRENT_MEMO,
        END_JOB,
        LEAN_JOBS,
        PROGRESS_EVENT_STEP,
        START_MEMO_KEPT,
        STORE_AT_LEAST,
        STORE_RETRY,
        ClipMaker,
        ClipWorkflow,
        JobFailed,
        MemoKeeper,
        patched,
        run_activity,
        set_status,
    )
    from workflows.clip import MEMO_CURRENT as MEMO_CURRENT  # where the API reads them
    from workflows.clip import MEMO_VIEW as MEMO_VIEW
    from workflows.contracts import AccountHandlers, ChainHandlers, SegmentProgress
    from workflows.webhook_delivery import start_webhook_delivery

#: Marks jobs that settle in the ledger store (an activity) instead of with `AccountWorkflow`.
LEDGER_STORE_SETTLE = "ledger-store-settle"
#: Marks chains whose segments are `ClipWorkflow`s that may fail over between routes.
CLIP_WORKFLOW_SEGMENTS = "clip-workflow-segments"
#: Marks jobs that settle in a local activity (runs before it keep the activity task).
LOCAL_SETTLE = "local-settle"

# A settlement must land: retried until the store takes it (idempotent by job id).
SETTLE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)

_EVENTS: dict[JobStatus, WebhookEvent] = {
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}


@workflow.defn
class VideoGenerationWorkflow(ChainHandlers):
    @workflow.init
    def __init__(self, job: JobSpec) -> None:
        self._job = job
        self._view = JobView.from_spec(job)
        self._clip = ClipMaker(job, self._view, on_progress=self._progress_made)
        self._memo = MemoKeeper(self._view)
        self._current_segment = 0
        self._made_seconds = 0.0
        self._progress_events = 0
        self._notified_progress = 0.0
        self._notified_at = workflow.now()
        self._admitted = not job.queued or job.resume is not None

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

    @workflow.signal
    def admit(self) -> None:
        """The tenant's account has a free slot for this queued job."""
        self._admitted = True

    @workflow.signal
    def segment_progress(self, report: SegmentProgress) -> None:
        """A segment's own progress, so the chain's progress counts the one in flight."""
        count = self._view.segments_total or 1
        if report.index == self._current_segment:
            overall = (report.index + report.progress) / count
            self._view.progress = min(0.99, max(self._view.progress, overall))

    @workflow.run
    async def run(self, job: JobSpec) -> JobView:
        if patched(CURRENT_MEMO):
            self._memo.keep(from_start=patched(START_MEMO_KEPT))
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
            if patched(CLIP_WORKFLOW_SEGMENTS):
                await self._chain(job)
            else:
                await self._legacy_chain(job)
            return
        if job.resume is None and job.segment is None:  # a legacy segment: checked by its chain
            if patched(LEAN_JOBS):
                self._clip.check_at_submit = True
            else:
                await run_activity(JobActivities.validate_job, job, timedelta(seconds=30))
        await self._clip.make()

    async def _cancel_upstream(self, job: JobSpec) -> None:
        if not job.segments:  # a chain's segments cancel their own tasks
            await self._clip.cancel_upstream()

    async def _chain(self, job: JobSpec) -> None:
        """Make the video as segments, each a `ClipWorkflow` that continues the one before
        (durable on its own: a crash resumes at the segment in flight, and segments made are
        never made again), then stitch them into one video of the requested length.

        Each segment fails over between the routes that can continue the video so far (see
        `continuing_routes`); `perf.provider` / `model_used` name the last segment's route.
        """
        count = len(job.segments)
        self._view.started_at = self._view.started_at or workflow.now()
        set_status(self._view, JobStatus.PROCESSING)
        made: list[JobView] = []
        makers: list[Route] = []
        for index, clip in enumerate(job.segments):
            candidates = continuing_routes(job.routes, makers[-1] if makers else None)
            part = segment_spec(job, candidates, index, clip, made[-1] if made else None)
            self._current_segment = index
            view = await self._segment(part)
            maker = candidates[_route_of(part, view)]
            made.append(view)
            makers.append(maker)
            self._made_seconds += view.video.duration_seconds if view.video else 0.0
            self._view.segments_done = index + 1
            self._view.progress = min(0.99, (index + 1) / count)
            self._view.provider_task_id = view.provider_task_id
            self._view.provider = view.provider
            self._view.model_used = view.model_used
        await self._stitch(
            job, made, drop_seam_frame=makers[0].continuation is Continuation.LAST_FRAME
        )

    async def _segment(self, part: JobSpec) -> JobView:
        try:
            count = len(self._job.segments)
            view: JobView = await workflow.execute_child_workflow(
                ClipWorkflow.run,
                part,
                id=part.job_id,
                static_summary=console.job_summary(part, segments_total=count),
                static_details=console.job_details(part, segments_total=count),
            )
        except ChildWorkflowError as err:
            _raise_chain_failure(err)
        return view

    async def _legacy_chain(self, job: JobSpec) -> None:
        """Chains started before `CLIP_WORKFLOW_SEGMENTS`: every segment on the first route,
        as a `VideoGenerationWorkflow` child. Remove once no such run is open."""
        route = job.routes[0]
        count = len(job.segments)
        self._view.started_at = self._view.started_at or workflow.now()
        set_status(self._view, JobStatus.PROCESSING)
        made: list[JobView] = []
        for index, clip in enumerate(job.segments):
            part = segment_spec(job, [route], index, clip, made[-1] if made else None)
            self._current_segment = index
            try:
                made.append(
                    await workflow.execute_child_workflow(
                        VideoGenerationWorkflow.run, part, id=part.job_id
                    )
                )
            except ChildWorkflowError as err:
                _raise_chain_failure(err)
            self._made_seconds += made[-1].video.duration_seconds if made[-1].video else 0.0
            self._view.segments_done = index + 1
            self._view.progress = min(0.99, (index + 1) / count)
            self._view.provider_task_id = made[-1].provider_task_id
        await self._stitch(job, made, drop_seam_frame=route.continuation is Continuation.LAST_FRAME)

    async def _stitch(self, job: JobSpec, made: list[JobView], *, drop_seam_frame: bool) -> None:
        set_status(self._view, JobStatus.STORING)
        video = await run_activity(
            JobActivities.stitch_segments,
            StitchRequest(
                job_id=job.job_id,
                segment_keys=[view.video.key for view in made if view.video is not None],
                seconds=job.duration_seconds,
                drop_seam_frame=drop_seam_frame,
            ),
            timedelta(minutes=60),
            retry=STORE_RETRY,
            # Like a clip's store: S3 outages are waited out, for one model deadline at least.
            schedule_to_close=max(timedelta(seconds=job.deadline_seconds), STORE_AT_LEAST),
            heartbeat=timedelta(seconds=30),
            summary=console.stitch_summary(job),
        )
        self._view.video = video
        self._view.cost_micro_usd = settled_cost_micro_usd(job, video.duration_seconds)
        self._view.progress = 1.0
        self._view.eta_seconds = 0.0

    async def _progress_made(self) -> None:
        """Progress events: at most one per `PROGRESS_EVENT_STEP` of progress and per 5 s."""
        now = workflow.now()
        if (
            self._view.progress >= self._notified_progress + PROGRESS_EVENT_STEP
            and (now - self._notified_at).total_seconds() >= 5
        ):
            self._notified_progress, self._notified_at = self._view.progress, now
            await self._notify("progress")

    async def _notify(self, event: WebhookEvent) -> None:
        """Start the delivery of `event` to the job's webhook, if it asked for it. Delivery
        is a workflow of its own: a failing endpoint never blocks or fails the job."""
        job = self._job
        if job.webhook is None or not job.notifies(event):
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

    async def _finish(self, job: JobSpec, status: JobStatus) -> None:
        """Record the outcome, settle with the account once, and leave the final view in the
        memo (so listings and reads without a worker see it)."""
        self._view.completed_at = workflow.now()
        if status is JobStatus.CANCELLED and self._made_seconds:
            # A cancelled chain pays for the segments it made; the rest is refunded.
            self._view.cost_micro_usd = settled_cost_micro_usd(job, self._made_seconds)
        set_status(self._view, status)
        await self._notify(_EVENTS[status])
        self._memo.publish()
        settlement = self._settlement(job)
        in_ledger = job.account_id is not None and is_ledger_account(job.account_id)
        if patched(END_JOB):
            # One transaction and a count in the worker that ran the job: a marker in history.
            await workflow.execute_local_activity_method(
                AccountActivities.end_job,
                JobEnd(
                    tenant_id=job.tenant_id,
                    model=job.model,
                    provider=self._view.provider,
                    state=status,
                    settlement=settlement if in_ledger else None,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=SETTLE_RETRY,
            )
            if in_ledger:
                return
        elif in_ledger and settlement is not None and patched(LEDGER_STORE_SETTLE):
            await self._settle_in_ledger(SettleJob(tenant_id=job.tenant_id, settlement=settlement))
            return
        if job.account_id is not None and settlement is not None:
            await workflow.get_external_workflow_handle(job.account_id).signal(
                AccountHandlers.settle, settlement
            )

    def _settlement(self, job: JobSpec) -> Settlement | None:
        if job.account_id is None:
            return None
        seconds = self._view.video.duration_seconds if self._view.video else 0.0
        return Settlement(
            job_id=job.job_id, cost_micro_usd=self._view.cost_micro_usd or 0, seconds=seconds
        )

    async def _settle_in_ledger(self, settle: SettleJob) -> None:
        """Settling of runs before `END_JOB`: a local activity since `LOCAL_SETTLE`, an
        activity task (and another workflow task) before it."""
        if patched(LOCAL_SETTLE):
            await workflow.execute_local_activity_method(
                AccountActivities.settle_job,
                settle,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=SETTLE_RETRY,
            )
            return
        await workflow.execute_activity_method(
            AccountActivities.settle_job,
            settle,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=SETTLE_RETRY,
        )


def continuing_routes(routes: list[Route], previous: Route | None) -> list[Route]:
    """The routes that can make a chain's next segment, in failover order.

    The first segment may go to any of the chain's routes. After that, a route that extends
    its own output (Veo extension, Luma keyframes) is the only one that can go on; a video
    continued from its last frame can be carried on by any route that starts from an image,
    the one that made the previous segment first.
    """
    if previous is None:
        return list(routes)
    if previous.continuation is not Continuation.LAST_FRAME:
        return [previous]
    others = [r for r in routes if r != previous and r.continuation is Continuation.LAST_FRAME]
    return [previous, *others]


def segment_spec(
    job: JobSpec, routes: list[Route], index: int, clip: int, previous: JobView | None
) -> JobSpec:
    """Segment `index` of a chain: one clip on `routes` (the previous segment's route first)
    that continues `previous` by that route's means."""
    last = index == len(job.segments) - 1
    mechanism = routes[0].continuation
    image = job.image
    continue_from = None
    if previous is not None:
        image = None
        if mechanism is Continuation.LAST_FRAME:
            assert previous.video is not None and previous.video.last_frame_key is not None
            image = ImageRef(key=previous.video.last_frame_key, content_type="image/png")
        else:
            continue_from = previous.provider_task_id
    return job.model_copy(
        update={
            "job_id": f"{job.job_id}:segment:{index}",
            "routes": [_segment_route(route, first=previous is None) for route in routes],
            "duration_seconds": clip,
            "segments": [],
            "segment": SegmentRole(
                parent_id=job.job_id,
                index=index,
                keep_last_frame=not last
                and any(r.continuation is Continuation.LAST_FRAME for r in routes),
            ),
            "image": image,
            "continue_from": continue_from,
            "account_id": None,
            "queued": False,
            "webhook": None,
            "resume": None,
        }
    )


def _segment_route(route: Route, *, first: bool) -> Route:
    model = route.upstream_model if first else route.continue_model
    return route.model_copy(update={"upstream_model": model or route.upstream_model})


def _route_of(part: JobSpec, view: JobView) -> int:
    """Which of the segment's routes made it."""
    for index, route in enumerate(part.routes):
        if (route.adapter, route.upstream_model) == (view.provider, view.model_used):
            return index
    return 0


def _raise_chain_failure(err: ChildWorkflowError) -> NoReturn:
    cause = err.cause
    if isinstance(cause, CancelledError):  # the chain's cancel reached the segment
        raise asyncio.CancelledError from err
    if isinstance(cause, ApplicationError):
        raise JobFailed(cause.type or "provider_error", cause.message) from err
    raise err
