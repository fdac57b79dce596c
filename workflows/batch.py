"""`BatchWorkflow`: one JSONL file of submit requests run as ordinary jobs (workflow id =
batch id).

It validates every line first (a page an activity call; invalid lines go to the errors file
in S3), checks the estimated total against `max_cost_usd` and the balance, then keeps a
sliding window of at most `concurrency` lines running, as Temporal's `batch_sliding_window`
sample does. A line runs as one `batch_run_line` activity that admits the line's job
through the API's own admission path, waits for it to end and writes the line's output
record; the job id comes from the batch id and line number, so a retried activity, a
crashed worker or a restarted batch find the line's job instead of making a second one.
After `lines_per_run` lines the workflow continues as new, so its history stays bounded
whatever the file's size; the file itself never enters history.

Since `CARRIED_WINDOW` the window is carried over continue-as-new, as in the sample: each line
runs that activity in a `BatchLineWorkflow` child of its own, abandoned when the run ends,
which reports the line's end by the `line_done` signal to whichever run of the batch is
current; the lines in flight and those planned are handed to the next run, so the window
never drains at a run's end. Before it, the window drained before the batch continued.
Since `LINES_REPORT_THEMSELVES` a line's workflow runs on the lines queue and its activity
sends that signal itself (two workflow tasks a line instead of three).

The activities are API-level (`api.batches.BatchActivities`, wired by `worker.py`); this
module names them by string so that workflows need not import `api`.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    CancelledError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ActivityCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from reelay import idempotency
    from reelay.batches import (
        LOOKAHEAD_LINES,
        MAX_LINES,
        PAGE_LINES,
        BatchCounts,
        BatchInput,
        BatchNotice,
        BatchState,
        BatchStatus,
        BatchView,
        CancelRequest,
        FundsCheck,
        LineDone,
        LineOutcome,
        LineRef,
        PageRequest,
        PlannedPage,
        RunLine,
        ValidatedPage,
        line_idempotency_key,
        render,
    )
    from reelay.jobs import micro_usd_to_usd
    from reelay.webhooks import BatchEvent, new_delivery
    from workflows import console, search_attributes
    from workflows.webhook_delivery import start_webhook_delivery

PAGE_TIMEOUT = timedelta(minutes=2)
# The whole file validated in one call (`UNIQUE_IDS_WEBHOOKS_PROVIDER_WINDOWS`): 50,000 lines
# take well under this; a heartbeat a page tells a dead worker.
FILE_TIMEOUT = timedelta(minutes=30)
FILE_HEARTBEAT = timedelta(minutes=1)
#: The patch behind which a batch validates its whole file in one call (so duplicate
#: `custom_id`s are found), sends its own events through `WebhookDeliveryWorkflow`, and
#: keeps a window per provider. Runs started before it keep the old paths.
UNIQUE_IDS_WEBHOOKS_PROVIDER_WINDOWS = "batch-unique-ids-webhooks-provider-windows"
#: The patch behind which a line runs as a `BatchLineWorkflow` reporting its end by signal,
#: and the window (lines in flight and planned) is carried over continue-as-new instead of
#: draining first. Runs started before it keep their activity per line.
CARRIED_WINDOW = "batch-carried-window"
#: The patch behind which a line's `BatchLineWorkflow` runs on the lines queue (its activity
#: there too, so Temporal hands the activity to the worker with the workflow task, with no
#: trip through matching) and its activity reports the line's end to the batch itself: the
#: line workflow ends with no workflow task of its own to signal. Lines started before it
#: keep reporting from their workflow.
LINES_REPORT_THEMSELVES = "batch-lines-report-themselves"
#: The batch's signal that one of its lines ended (`BatchWorkflow.line_done`).
LINE_DONE_SIGNAL = "line_done"
#: The statuses a batch's webhook is told of, as `batch.<event>`.
EVENTS: dict[BatchStatus, BatchEvent] = {
    BatchStatus.IN_PROGRESS: "in_progress",
    BatchStatus.PAUSED: "paused",
    BatchStatus.COMPLETED: "completed",
    BatchStatus.FAILED: "failed",
    BatchStatus.CANCELLED: "cancelled",
}
# A line's activity lives as long as its job; heartbeats tell a dead worker within this.
LINE_HEARTBEAT = timedelta(seconds=20)
LINE_TIMEOUT = timedelta(hours=6)
# While paused because a line was refused (credits ran out), the line is retried this often
# (a top-up resumes the batch without a `/resume`).
REFUSAL_RETRY = timedelta(seconds=30)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


def lines_queue(task_queue: str) -> str:
    """The task queue of `batch_run_line`: a line's activity waits as long as its job, so
    lines get slots of their own and never starve the jobs' own activities."""
    return f"{task_queue}-batch-lines"


def line_job_id(batch_id: str, tenant_id: str, line: int) -> str:
    """The job a batch's line runs as (what admission derives from the line's key)."""
    key = line_idempotency_key(batch_id, line)
    return "job_vid_" + idempotency.job_digest(tenant_id, key)


def line_workflow_id(batch_id: str, ref: LineRef) -> str:
    """`<batch id>:line:<n>`, and `:<attempt>` for a line started again after a refusal."""
    return f"{batch_id}:line:{ref.line}" + (f":{ref.attempt}" if ref.attempt else "")


def for_new_batch(batch_id: str, tenant_id: str) -> TypedSearchAttributes:
    """What a batch starts with (the API's start; an operator's start gets them on run)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(search_attributes.TENANT, tenant_id),
            SearchAttributePair(search_attributes.BATCH, batch_id),
            SearchAttributePair(search_attributes.BATCH_STATUS, BatchStatus.VALIDATING.value),
        ]
    )


@workflow.defn
class BatchWorkflow:
    @workflow.init
    def __init__(self, batch: BatchInput) -> None:
        self._input = batch
        self._state = batch.state or BatchState()
        # the lines planned and not started (carried over continue-as-new since the patch)
        self._pending: list[LineRef] = self._state.pending
        self._state.pending = []
        # before `CARRIED_WINDOW`: each running line's activity, in this run
        self._running: dict[int, asyncio.Task[None]] = {}
        # since it: each running line, whichever run started its `BatchLineWorkflow`
        self._in_flight: dict[int, LineRef] = {ref.line: ref for ref in self._state.in_flight}
        self._state.in_flight = []
        self._running_by_provider: dict[str | None, int] = {}
        for ref in self._in_flight.values():
            self._count_running(ref, 1)
        self._starting = 0  # line workflows whose start is not yet confirmed
        self._line_starts: set[asyncio.Task[None]] = set()
        self._started_this_run = 0
        self._v4 = False
        self._carried = False
        self._reporting = False
        self._outbox: list[BatchEvent] = []

    @workflow.run
    async def run(self, batch: BatchInput) -> BatchView:
        state = self._state
        self._v4 = workflow.patched(UNIQUE_IDS_WEBHOOKS_PROVIDER_WINDOWS)
        self._carried = workflow.patched(CARRIED_WINDOW)
        self._reporting = self._carried and workflow.patched(LINES_REPORT_THEMSELVES)
        if self._v4 and batch.webhook_url:
            self._sender = asyncio.create_task(self._send_events())
        if state.created_at is None:
            state.created_at = workflow.now()
        workflow.upsert_search_attributes(
            [
                search_attributes.TENANT.value_set(batch.tenant_id),
                search_attributes.BATCH.value_set(self._batch_id),
            ]
        )
        self._set_status(state.status)
        if not state.validated and not await self._validate():
            return await self._notify()
        if not state.cancel_requested:
            await self._window()
        if state.cancel_requested:
            await self._drain(cancel=state.cancel_running)
            started = state.completed + state.failed + state.cancelled
            state.cancelled += max(state.lines - state.invalid - started, 0)
            self._finish(BatchStatus.CANCELLED)
            return await self._notify()
        if not state.eof or self._pending:
            state.runs += 1
            if self._carried:
                await workflow.wait_condition(lambda: not self._starting)
            await self._sent()
            # the window as it is now, handed on (nothing awaited from here to the end)
            state.pending = list(self._pending)
            state.in_flight = list(self._in_flight.values())
            workflow.continue_as_new(batch.model_copy(update={"state": state}))
        self._set_status(BatchStatus.FINALIZING)
        self._finish(BatchStatus.COMPLETED)
        return await self._notify()

    async def _notify(self) -> BatchView:
        """The batch's end to its `webhook_url` (retried for a day), then its view."""
        view = self.view()
        if self._v4:
            await self._sent()
        elif self._input.webhook_url:
            await workflow.execute_activity(
                "batch_notify",
                BatchNotice(url=self._input.webhook_url, view=view),
                result_type=str,
                summary=console.batch_notify_summary(self._input.webhook_url, view),
                start_to_close_timeout=PAGE_TIMEOUT,
                schedule_to_close_timeout=timedelta(days=1),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(hours=1)
                ),
            )
        return view

    def _announce(self) -> None:
        """Queue the batch's status for its webhook when it is an event not yet sent."""
        state = self._state
        if not (self._v4 and self._input.webhook_url) or state.status not in EVENTS:
            return
        if state.announced is state.status:
            return
        state.announced = state.status
        self._outbox.append(EVENTS[state.status])

    async def _send_events(self) -> None:
        """Each queued event as a `WebhookDeliveryWorkflow` of its own (a failing endpoint
        never holds the batch); `in_progress` and `paused` can repeat, so they are numbered."""
        state = self._state
        while True:
            await workflow.wait_condition(lambda: bool(self._outbox))
            event = self._outbox[0]
            state.events_sent += 1
            terminal = event in ("completed", "failed", "cancelled")
            delivery = new_delivery(
                job_id=self._batch_id,
                tenant_id=self._input.tenant_id,
                url=self._input.webhook_url or "",
                event=event,
                data=render(self.view(), workflow.now()).model_dump(mode="json"),
                at=workflow.now(),
                sequence=None if terminal else state.events_sent,
                subject="batch",
            )
            await start_webhook_delivery(delivery)
            self._outbox.pop(0)

    async def _sent(self) -> None:
        """Until every queued event's delivery has started (before the run ends)."""
        await workflow.wait_condition(lambda: not self._outbox)

    @property
    def _batch_id(self) -> str:
        return workflow.info().workflow_id

    async def _validate(self) -> bool:
        """Every line through its dialect's parser, the estimate against the limits; False
        when the batch ended here."""
        state, batch = self._state, self._input
        offset, line = 0, 1
        # Since the patch, one call validates the whole file, so that each custom_id is
        # checked against every earlier line's; before it, a call a page.
        whole = self._v4
        while True:
            page: ValidatedPage = await workflow.execute_activity(
                "batch_validate_page",
                PageRequest(
                    batch_id=self._batch_id,
                    tenant_id=batch.tenant_id,
                    input_key=batch.input_key,
                    offset=offset,
                    first_line=line,
                    max_lines=MAX_LINES + 1 if whole else PAGE_LINES,
                ),
                result_type=ValidatedPage,
                summary=console.batch_page_summary("validate", line, None if whole else PAGE_LINES),
                start_to_close_timeout=FILE_TIMEOUT if whole else PAGE_TIMEOUT,
                heartbeat_timeout=FILE_HEARTBEAT if whole else None,
                retry_policy=RETRY,
            )
            state.lines += page.lines
            state.invalid += page.invalid
            state.estimated_micro_usd += page.estimated_micro_usd
            self._show()
            offset, line = page.next_offset, line + page.lines
            if page.error is not None:
                return self._fail(page.error)
            if page.eof:
                break
        if state.invalid and batch.on_invalid_line == "fail":
            return self._fail(
                f"{state.invalid} of {state.lines} lines are invalid (see the errors file); "
                "send on_invalid_line=skip to run the valid ones"
            )
        estimate_usd = micro_usd_to_usd(state.estimated_micro_usd)
        if batch.max_cost_usd is not None and estimate_usd > batch.max_cost_usd:
            return self._fail(
                f"estimated cost ${estimate_usd:.2f} exceeds max_cost_usd ${batch.max_cost_usd:.2f}"
            )
        shortfall: str = await workflow.execute_activity(
            "batch_check_funds",
            FundsCheck(tenant_id=batch.tenant_id, estimated_micro_usd=state.estimated_micro_usd),
            result_type=str,
            summary=console.batch_funds_summary(state.estimated_micro_usd),
            start_to_close_timeout=PAGE_TIMEOUT,
            retry_policy=RETRY,
        )
        if shortfall:
            return self._fail(shortfall)
        state.validated = True
        state.started_at = workflow.now()
        if state.status is not BatchStatus.PAUSED:  # a pause during validation holds
            self._set_status(BatchStatus.IN_PROGRESS)
        return True

    async def _window(self) -> None:
        if self._v4:
            await self._provider_windows()
        else:
            await self._fifo_window()

    async def _provider_windows(self) -> None:
        """A window of `concurrency` lines per provider: the next line to start is the first
        planned one whose provider has room, so a slow provider's lines never hold the
        others'. Pages are planned ahead (up to `LOOKAHEAD_LINES`) to find such lines. Since
        `CARRIED_WINDOW`, the run ends (to continue as new) as soon as it has started its
        share of lines, its window still full."""
        state = self._state
        while not state.cancel_requested:
            if self._paused():
                await self._while_paused()
                continue
            if self._run_is_done():
                return
            if self._can_plan():
                await self._plan_page()
                continue
            index = self._startable()
            if index is None:
                if not self._busy() and not self._pending:
                    return
                await workflow.wait_condition(
                    lambda: (
                        state.cancel_requested
                        or self._paused()
                        or self._startable() is not None
                        or self._can_plan()
                        or self._run_is_done()
                        or not (self._busy() or self._pending)
                    )
                )
                continue
            self._start(self._pending.pop(index))

    def _busy(self) -> bool:
        return bool(self._running or self._in_flight)

    def _run_is_done(self) -> bool:
        """Since `CARRIED_WINDOW`: this run started its share (or Temporal suggests a new
        run) while lines remain to start, so the batch continues as new now."""
        if not self._carried or (self._state.eof and not self._pending):
            return False
        return (
            self._started_this_run >= self._input.lines_per_run
            or workflow.info().is_continue_as_new_suggested()
        )

    def _can_plan(self) -> bool:
        planned = self._started_this_run + len(self._pending)
        return (
            not self._state.eof
            and planned < self._input.lines_per_run
            and len(self._pending) + PAGE_LINES <= LOOKAHEAD_LINES
        )

    def _startable(self) -> int | None:
        """The first planned line whose provider's window has room."""
        full = {
            provider
            for provider, running in self._running_by_provider.items()
            if running >= self._input.concurrency
        }
        for index, ref in enumerate(self._pending):
            if ref.provider not in full:
                return index
        return None

    def _start(self, ref: LineRef) -> None:
        if self._carried:
            self._in_flight[ref.line] = ref
            self._starting += 1
            start = asyncio.create_task(self._start_line(ref))
            self._line_starts.add(start)
            start.add_done_callback(self._line_starts.discard)
        else:
            self._running[ref.line] = asyncio.create_task(self._run_line(ref))
        self._count_running(ref, 1)
        self._started_this_run += 1

    def _count_running(self, ref: LineRef, change: int) -> None:
        running = self._running_by_provider
        running[ref.provider] = running.get(ref.provider, 0) + change

    async def _start_line(self, ref: LineRef) -> None:
        """The line's `BatchLineWorkflow`, left running when this run ends (it reports to the
        run current then)."""
        batch_id, tenant_id = self._batch_id, self._input.tenant_id
        reporting = self._reporting
        try:
            await workflow.start_child_workflow(
                BatchLineWorkflow.run,
                RunLine(
                    batch_id=batch_id,
                    tenant_id=tenant_id,
                    input_key=self._input.input_key,
                    ref=ref,
                    report=reporting,
                ),
                id=line_workflow_id(batch_id, ref),
                task_queue=lines_queue(workflow.info().task_queue) if reporting else None,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(search_attributes.TENANT, tenant_id),
                        SearchAttributePair(search_attributes.BATCH, batch_id),
                    ]
                ),
                static_summary=console.batch_line_summary(ref.line, self._job_id(ref)),
            )
        except WorkflowAlreadyStartedError:
            pass  # a reset batch: the line's workflow runs, and reports to this run all the same
        finally:
            self._starting -= 1

    async def _while_paused(self) -> None:
        state = self._state
        try:
            await workflow.wait_condition(
                lambda: state.status is not BatchStatus.PAUSED or state.cancel_requested,
                timeout=REFUSAL_RETRY if state.paused_by_refusal else None,
            )
        except TimeoutError:
            # credits may have been topped up: the line is tried again, and the webhook
            # hears of it only if it is admitted
            self._resume(announce=False)

    async def _fifo_window(self) -> None:
        """Before `UNIQUE_IDS_WEBHOOKS_PROVIDER_WINDOWS`: one window, lines in file order."""
        state = self._state
        while not state.cancel_requested:
            if not self._pending:
                if not state.eof and self._started_this_run < self._input.lines_per_run:
                    await self._plan_page()
                    continue
                await workflow.wait_condition(
                    lambda: not self._running or bool(self._pending) or state.cancel_requested
                )
                if not self._running and not self._pending:
                    return
                continue
            if state.status is BatchStatus.PAUSED:
                await self._while_paused()
                continue
            await workflow.wait_condition(
                lambda: (
                    state.cancel_requested
                    or state.status is BatchStatus.PAUSED
                    or len(self._running) < self._input.concurrency
                )
            )
            if state.cancel_requested:
                return
            if self._paused():  # a signal may have paused it while the window was full
                continue
            self._start(self._pending.pop(0))
            self._show()

    def _paused(self) -> bool:
        return self._state.status is BatchStatus.PAUSED

    async def _plan_page(self) -> None:
        state = self._state
        page: PlannedPage = await workflow.execute_activity(
            "batch_plan_page",
            PageRequest(
                batch_id=self._batch_id,
                tenant_id=self._input.tenant_id,
                input_key=self._input.input_key,
                offset=state.offset,
                first_line=state.next_line,
                max_lines=PAGE_LINES,
            ),
            result_type=PlannedPage,
            summary=console.batch_page_summary("plan", state.next_line, PAGE_LINES),
            start_to_close_timeout=PAGE_TIMEOUT,
            retry_policy=RETRY,
        )
        self._pending.extend(page.lines)
        state.offset, state.next_line, state.eof = page.next_offset, page.next_line, page.eof

    async def _run_line(self, ref: LineRef) -> None:
        """Before `CARRIED_WINDOW`: the line's activity, in this run."""
        try:
            outcome: LineOutcome = await workflow.execute_activity(
                "batch_run_line",
                RunLine(
                    batch_id=self._batch_id,
                    tenant_id=self._input.tenant_id,
                    input_key=self._input.input_key,
                    ref=ref,
                ),
                result_type=LineOutcome,
                summary=console.batch_line_summary(ref.line, self._job_id(ref)),
                task_queue=lines_queue(workflow.info().task_queue),
                start_to_close_timeout=LINE_TIMEOUT,
                heartbeat_timeout=LINE_HEARTBEAT,
                retry_policy=RETRY,
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except (ActivityError, CancelledError):
            outcome = LineOutcome(line=ref.line, status="cancelled", job_id=self._job_id(ref))
        finally:
            self._running.pop(ref.line, None)
            self._running_by_provider[ref.provider] -= 1
        self._ended(ref, outcome)

    @workflow.signal(name=LINE_DONE_SIGNAL)
    def line_done(self, done: LineDone) -> None:
        """A line's workflow reports its end (once: a report of a line not in flight, or of
        an earlier attempt, is ignored)."""
        ref = self._in_flight.get(done.ref.line)
        if ref is None or ref.attempt != done.ref.attempt:
            return
        del self._in_flight[ref.line]
        self._count_running(ref, -1)
        self._ended(ref, done.outcome)

    def _ended(self, ref: LineRef, outcome: LineOutcome) -> None:
        """Count a line's end; a refused line goes back to the front of the plan (as its
        next attempt since `CARRIED_WINDOW`) and pauses the batch."""
        state = self._state
        if outcome.status == "refused":
            if self._carried:
                ref = ref.model_copy(update={"attempt": ref.attempt + 1})
            self._pending.insert(0, ref)
            if state.status is not BatchStatus.PAUSED:
                state.pause_reason = outcome.error_message
                state.paused_by_refusal = True
                self._set_status(BatchStatus.PAUSED)
            return
        if outcome.status == "completed":
            state.completed += 1
        elif outcome.status == "failed":
            state.failed += 1
        else:
            state.cancelled += 1
        state.cost_micro_usd += outcome.cost_micro_usd
        self._show()
        self._announce()  # a line admitted after a refusal: in progress again

    def _job_id(self, ref: LineRef) -> str:
        return line_job_id(self._batch_id, self._input.tenant_id, ref.line)

    async def _drain(self, *, cancel: bool) -> None:
        """Until no line runs (each cancelled first when `cancel`)."""
        if self._carried:
            await workflow.wait_condition(lambda: not self._starting)
        if cancel:
            for task in self._running.values():
                task.cancel()
            await asyncio.gather(
                *(self._cancel_line(ref) for ref in list(self._in_flight.values()))
            )
        await workflow.wait_condition(lambda: not self._busy())
        self._pending.clear()

    async def _cancel_line(self, ref: LineRef) -> None:
        """Cancel a line's workflow (it reports the line cancelled); one that ended since has
        reported already."""
        line = workflow.get_external_workflow_handle(line_workflow_id(self._batch_id, ref))
        with contextlib.suppress(FailureError):
            await line.cancel()

    def _fail(self, error: str) -> bool:
        self._state.error = error
        self._finish(BatchStatus.FAILED)
        return False

    def _finish(self, status: BatchStatus) -> None:
        self._state.completed_at = workflow.now()
        self._set_status(status)

    def _set_status(self, status: BatchStatus, *, announce: bool = True) -> None:
        self._state.status = status
        workflow.upsert_search_attributes([search_attributes.BATCH_STATUS.value_set(status.value)])
        self._show()
        if announce:
            self._announce()

    def _show(self) -> None:
        """Status and counts as the Temporal UI's current details (no command: not history)."""
        workflow.set_current_details(console.batch_current_details(self.view()))

    @workflow.signal
    def pause(self, reason: str | None = None) -> None:
        if self._state.status in (BatchStatus.IN_PROGRESS, BatchStatus.VALIDATING):
            self._state.pause_reason = reason or "paused by request"
            self._set_status(BatchStatus.PAUSED)

    @workflow.signal
    def resume(self) -> None:
        self._resume(announce=True)

    def _resume(self, *, announce: bool) -> None:
        if self._state.status is BatchStatus.PAUSED:
            self._state.pause_reason = None
            self._state.paused_by_refusal = False
            self._set_status(
                BatchStatus.IN_PROGRESS if self._state.validated else BatchStatus.VALIDATING,
                announce=announce,
            )

    @workflow.signal
    def cancel(self, request: CancelRequest) -> None:
        if not self._state.status.is_terminal:
            self._state.cancel_requested = True
            self._state.cancel_running = request.cancel_running

    @workflow.query
    def view(self) -> BatchView:
        state, batch = self._state, self._input
        running = len(self._running) + len(self._in_flight)
        valid = state.lines - state.invalid if state.validated else 0
        done = state.completed + state.failed + state.cancelled
        queued = 0 if state.status.is_terminal else max(valid - done - running, 0)
        return BatchView(
            batch_id=self._batch_id,
            tenant_id=batch.tenant_id,
            input_key=batch.input_key,
            status=state.status,
            request_counts=BatchCounts(
                total=state.lines,
                queued=queued,
                running=running,
                completed=state.completed,
                failed=state.failed,
                cancelled=state.cancelled,
                invalid=state.invalid,
            ),
            concurrency=batch.concurrency,
            max_cost_usd=batch.max_cost_usd,
            on_invalid_line=batch.on_invalid_line,
            cost_micro_usd=state.cost_micro_usd,
            estimated_micro_usd=state.estimated_micro_usd,
            created_at=state.created_at,
            started_at=state.started_at,
            completed_at=state.completed_at,
            pause_reason=state.pause_reason,
            error=state.error,
            idempotency_hash=batch.idempotency_hash,
        )


@workflow.defn
class BatchLineWorkflow:
    """One line of a batch since `CARRIED_WINDOW` (workflow id `line_workflow_id`): the
    line's `batch_run_line` activity, then its end reported to the batch by `line_done`,
    which reaches whichever run of the batch is current. Since `LINES_REPORT_THEMSELVES`
    (`run.report`) it runs on the lines queue, its activity on the same queue, and the
    activity reports a line it saw end; this workflow reports only a line whose activity
    failed or was cancelled."""

    @workflow.run
    async def run(self, run: RunLine) -> LineOutcome:
        ref = run.ref
        job_id = line_job_id(run.batch_id, run.tenant_id, ref.line)
        queue = workflow.info().task_queue
        try:
            outcome: LineOutcome = await workflow.execute_activity(
                "batch_run_line",
                run,
                result_type=LineOutcome,
                summary=console.batch_line_summary(ref.line, job_id),
                task_queue=queue if run.report else lines_queue(queue),
                start_to_close_timeout=LINE_TIMEOUT,
                heartbeat_timeout=LINE_HEARTBEAT,
                retry_policy=RETRY,
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except (ActivityError, CancelledError):
            outcome = LineOutcome(line=ref.line, status="cancelled", job_id=job_id)
        else:
            if run.report:
                return outcome
        done = LineDone(ref=ref, outcome=outcome)
        batch = workflow.get_external_workflow_handle(run.batch_id)
        try:
            await batch.signal(LINE_DONE_SIGNAL, done)
        except CancelledError:
            # a cancel landed before the report went out: it goes out all the same
            await batch.signal(LINE_DONE_SIGNAL, done)
        return outcome
