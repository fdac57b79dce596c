"""`BatchWorkflow`'s window on Temporal's time-skipping test server, its activities mocked
by name (as in temporalio/samples-python): never more than `concurrency` lines at once,
every line exactly once across continue-as-new, the window carried over it (never drained),
a refused line pauses the batch and is retried until admitted, cancel stops new lines."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from reelay.batches import (
    BatchInput,
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
)
from reelay.webhooks import WebhookAttempt, WebhookDelivery
from tests.integration.conftest import time_skipping_env
from tests.support import wait_until
from workflows import batch as batch_module
from workflows.batch import (
    LINE_DONE_SIGNAL,
    BatchLineWorkflow,
    BatchWorkflow,
    line_workflow_id,
    lines_queue,
)
from workflows.webhook_delivery import WebhookDeliveryWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class FakeBatch:
    """A file of `lines` lines (the numbers in `invalid` invalid) and its activities."""

    lines: int
    invalid: set[int] = field(default_factory=set)
    refusals: Counter[int] = field(default_factory=Counter)
    hold: asyncio.Event | None = None
    busy: asyncio.Event = field(default_factory=asyncio.Event)  # set once `hold` holds any
    validating: asyncio.Event | None = None  # validation waits for it
    validation_began: asyncio.Event = field(default_factory=asyncio.Event)
    started: Counter[int] = field(default_factory=Counter)
    running: int = 0
    most_running: int = 0
    providers: dict[int, str] = field(default_factory=dict)  # by line; held: `hold_provider`
    hold_provider: str | None = None
    finished: list[int] = field(default_factory=list)
    webhooks: list[WebhookDelivery] = field(default_factory=list)
    line_workflows: set[str] = field(default_factory=set)

    def _page(self, request: PageRequest) -> range:
        # a line's "offset" is its number: the page starts at line `offset + 1`
        first = request.offset + 1
        return range(first, min(first + request.max_lines, self.lines + 1))

    @activity.defn(name="batch_validate_page")
    async def validate_page(self, request: PageRequest) -> ValidatedPage:
        self.validation_began.set()
        if self.validating is not None:
            await self.validating.wait()
        page = self._page(request)
        bad = [number for number in page if number in self.invalid]
        return ValidatedPage(
            lines=len(page),
            invalid=len(bad),
            estimated_micro_usd=100 * (len(page) - len(bad)),
            next_offset=request.offset + len(page),
            eof=request.offset + len(page) >= self.lines,
        )

    @activity.defn(name="batch_plan_page")
    async def plan_page(self, request: PageRequest) -> PlannedPage:
        page = self._page(request)
        return PlannedPage(
            lines=[
                LineRef(line=n, offset=n - 1, length=1, provider=self.providers.get(n))
                for n in page
                if n not in self.invalid
            ],
            next_offset=request.offset + len(page),
            next_line=request.first_line + len(page),
            eof=request.offset + len(page) >= self.lines,
        )

    @activity.defn(name="batch_check_funds")
    async def check_funds(self, check: FundsCheck) -> str:
        return ""

    @activity.defn(name="batch_run_line")
    async def run_line(self, run: RunLine) -> LineOutcome:
        """The line as `BatchActivities.run_line` runs it: reported by itself when asked."""
        outcome = await self._run_line(run)
        if run.report:
            batch = activity.client().get_workflow_handle(run.batch_id)
            await batch.signal(LINE_DONE_SIGNAL, LineDone(ref=run.ref, outcome=outcome))
        return outcome

    async def _run_line(self, run: RunLine) -> LineOutcome:
        line = run.ref.line
        self.started[line] += 1
        self.line_workflows.add(line_workflow_id(run.batch_id, run.ref))
        if self.refusals[line] > 0:
            self.refusals[line] -= 1
            return LineOutcome(line=line, status="refused", error_message="out of credits")
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            held = self.hold_provider is None or self.providers.get(line) == self.hold_provider
            if self.hold is not None and held:
                self.busy.set()
                await self.hold.wait()
            await asyncio.sleep(0.001)
        finally:
            self.running -= 1
        self.finished.append(line)
        return LineOutcome(line=line, status="completed", cost_micro_usd=100)

    @activity.defn(name="deliver_webhook")
    async def deliver_webhook(self, delivery: WebhookDelivery) -> WebhookAttempt:
        self.webhooks.append(delivery)
        return WebhookAttempt(status_code=204)


@asynccontextmanager
async def _worker(env: WorkflowEnvironment, fake: FakeBatch, queue: str) -> AsyncIterator[None]:
    """The batch workflow and its page activities on `queue`, its lines on theirs."""
    main = Worker(
        env.client,
        task_queue=queue,
        workflows=[BatchWorkflow, BatchLineWorkflow, WebhookDeliveryWorkflow],
        activities=[fake.validate_page, fake.plan_page, fake.check_funds, fake.deliver_webhook],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    lines = Worker(
        env.client,
        task_queue=lines_queue(queue),
        workflows=[BatchLineWorkflow],
        activities=[fake.run_line],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with main, lines:
        yield

        # A line's workflow ends just after its report: one left open would hold the test
        # server's clock (it skips time only when no task is outstanding) for the next tests.
        async def lines_closed() -> bool:
            return await _all_closed(env, fake.line_workflows)

        await wait_until(lines_closed, within=20, interval=0.01)


async def _all_closed(env: WorkflowEnvironment, workflow_ids: set[str]) -> bool:
    for workflow_id in workflow_ids:
        described = await env.client.get_workflow_handle(workflow_id).describe()
        if described.status is WorkflowExecutionStatus.RUNNING:
            return False
    return True


def _batch_id() -> str:
    return f"batch_{uuid.uuid4().hex}"


@pytest_asyncio.fixture(loop_scope="session")
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server for one test: after a batch that continued as new with lines in flight
    (line workflows outliving the runs that started them) a test server skips time no more,
    and the refusal timers of the tests after it would run in real time (why is not known)."""
    async with time_skipping_env() as environment:
        yield environment


async def test_the_window_holds_concurrency_and_runs_every_line_once_across_runs(
    own_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = own_env
    monkeypatch.setattr(batch_module, "PAGE_LINES", 15)
    fake = FakeBatch(lines=130, invalid={7, 64})
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    batch_id = _batch_id()
    async with _worker(env, fake, queue):
        handle = await env.client.start_workflow(
            BatchWorkflow.run,
            BatchInput(
                tenant_id="t",
                input_key="k",
                concurrency=5,
                on_invalid_line="skip",
                lines_per_run=40,
            ),
            id=batch_id,
            task_queue=queue,
        )
        view: BatchView = await handle.result()
    assert view.status is BatchStatus.COMPLETED
    assert view.request_counts.completed == 128
    assert view.request_counts.invalid == 2
    assert view.cost_micro_usd == 128 * 100
    assert set(fake.started) == set(range(1, 131)) - {7, 64}
    assert set(fake.started.values()) == {1}
    assert fake.most_running <= 5
    first_run = env.client.get_workflow_handle(batch_id, run_id=handle.result_run_id)
    events = [event.event_type async for event in first_run.fetch_history_events()]
    assert events[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW


async def test_the_window_is_carried_over_continue_as_new_instead_of_draining(
    own_env: WorkflowEnvironment,
) -> None:
    """Line 1 is held while runs of 4 lines each come and go: had a run drained its window
    before continuing as new, no line past the first run's would start until line 1 ends."""
    env = own_env
    providers = {n: "slow" if n == 1 else "fast" for n in range(1, 21)}
    fake = FakeBatch(lines=20, hold=asyncio.Event(), providers=providers, hold_provider="slow")
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    batch_id = _batch_id()
    async with _worker(env, fake, queue):
        handle = await env.client.start_workflow(
            BatchWorkflow.run,
            BatchInput(tenant_id="t", input_key="k", concurrency=2, lines_per_run=4),
            id=batch_id,
            task_queue=queue,
        )

        async def the_others_reported() -> bool:
            others = fake.line_workflows - {
                line_workflow_id(batch_id, LineRef(line=1, offset=0, length=1))
            }
            return len(others) == 19 and await _all_closed(env, others)

        await wait_until(the_others_reported, within=30, interval=0.05)
        assert sorted(fake.finished) == list(range(2, 21))
        assert fake.running == 1  # line 1, started by the first run
        assert fake.hold is not None
        fake.hold.set()
        view = await handle.result()
    assert view.status is BatchStatus.COMPLETED
    assert view.request_counts.completed == 20
    assert set(fake.started) == set(range(1, 21))
    assert set(fake.started.values()) == {1}
    # line 1 reported its end to the last run (the fifth at least), not to the first
    last = (await env.client.get_workflow_handle(batch_id).fetch_history()).events
    reported = []
    for event in last:
        signaled = event.workflow_execution_signaled_event_attributes
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            assert signaled.signal_name == LINE_DONE_SIGNAL
            decoded = await env.client.data_converter.decode(signaled.input.payloads, [LineDone])
            reported.append(decoded[0].ref.line)
    assert 1 in reported
    assert last[0].workflow_execution_started_event_attributes.continued_execution_run_id
    assert view.request_counts.running == 0


async def test_a_refused_line_pauses_the_batch_and_is_retried_until_admitted(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBatch(lines=6, refusals=Counter({3: 2}))
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    async with _worker(env, fake, queue):
        view: BatchView = await env.client.execute_workflow(
            BatchWorkflow.run,
            BatchInput(tenant_id="t", input_key="k", concurrency=1),
            id=_batch_id(),
            task_queue=queue,
        )
    assert view.status is BatchStatus.COMPLETED
    assert view.request_counts.completed == 6
    assert fake.started[3] == 3
    assert view.pause_reason is None


async def test_a_slow_providers_lines_leave_the_other_providers_window_free(
    env: WorkflowEnvironment,
) -> None:
    """Lines 1-4 on a provider that holds them, 5-12 on another: with a window of 2 per
    provider, every line of the second finishes while the first's are held."""
    providers = {n: "slow" if n <= 4 else "fast" for n in range(1, 13)}
    fake = FakeBatch(lines=12, hold=asyncio.Event(), providers=providers, hold_provider="slow")
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    async with _worker(env, fake, queue):
        handle = await env.client.start_workflow(
            BatchWorkflow.run,
            BatchInput(tenant_id="t", input_key="k", concurrency=2),
            id=_batch_id(),
            task_queue=queue,
        )

        async def fast_done() -> bool:
            return len(fake.finished) >= 8

        await wait_until(fast_done, within=20, interval=0.01)
        assert sorted(fake.finished) == list(range(5, 13))
        assert fake.started.keys() == set(range(1, 3)) | set(range(5, 13))  # 2 slow at once
        assert fake.hold is not None
        fake.hold.set()
        view: BatchView = await handle.result()
    assert view.request_counts.completed == 12


async def test_the_batch_webhook_hears_each_status_change(env: WorkflowEnvironment) -> None:
    fake = FakeBatch(lines=3, refusals=Counter({2: 1}))
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    batch_id = _batch_id()
    async with _worker(env, fake, queue):
        view: BatchView = await env.client.execute_workflow(
            BatchWorkflow.run,
            BatchInput(
                tenant_id="t", input_key="k", concurrency=1, webhook_url="https://h.example/"
            ),
            id=batch_id,
            task_queue=queue,
        )

        async def all_sent() -> bool:
            return len(fake.webhooks) >= 4

        await wait_until(all_sent, within=20, interval=0.01)
    assert view.status is BatchStatus.COMPLETED
    # in progress, paused by the refusal, in progress again once the line is admitted, done
    assert [d.payload["type"] for d in fake.webhooks] == [
        "batch.in_progress",
        "batch.paused",
        "batch.in_progress",
        "batch.completed",
    ]
    assert {d.subject for d in fake.webhooks} == {"batch"}
    assert len({d.message_id for d in fake.webhooks}) == 4
    assert fake.webhooks[1].payload["data"]["pause_reason"] == "out of credits"
    assert fake.webhooks[-1].payload["data"]["request_counts"]["completed"] == 3


async def test_an_invalid_line_fails_the_batch_before_any_job(env: WorkflowEnvironment) -> None:
    fake = FakeBatch(lines=10, invalid={4})
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    async with _worker(env, fake, queue):
        view: BatchView = await env.client.execute_workflow(
            BatchWorkflow.run,
            BatchInput(tenant_id="t", input_key="k"),
            id=_batch_id(),
            task_queue=queue,
        )
    assert view.status is BatchStatus.FAILED
    assert view.error is not None and "1 of 10 lines are invalid" in view.error
    assert not fake.started


async def test_cancel_stops_new_lines_and_lets_running_ones_finish(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBatch(lines=20, hold=asyncio.Event())
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    async with _worker(env, fake, queue):
        handle = await env.client.start_workflow(
            BatchWorkflow.run,
            BatchInput(tenant_id="t", input_key="k", concurrency=3),
            id=_batch_id(),
            task_queue=queue,
        )
        await fake.busy.wait()
        await asyncio.wait_for(_until_running(handle, 3), 10)
        await handle.signal(BatchWorkflow.cancel, CancelRequest(cancel_running=False))
        assert fake.hold is not None
        fake.hold.set()
        view: BatchView = await handle.result()
    assert view.status is BatchStatus.CANCELLED
    assert view.request_counts.completed == 3
    assert view.request_counts.cancelled == 17
    assert sum(fake.started.values()) == 3


async def _until_running(handle: WorkflowHandle[BatchWorkflow, BatchView], count: int) -> None:
    """Until the window shows `count` lines running (the activities are held)."""
    while True:
        view = await handle.query(BatchWorkflow.view)
        if view.request_counts.running >= count:
            return
        await asyncio.sleep(0.01)


async def test_a_pause_during_validation_holds_until_resumed(env: WorkflowEnvironment) -> None:
    fake = FakeBatch(lines=4, validating=asyncio.Event())
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    async with _worker(env, fake, queue):
        handle = await env.client.start_workflow(
            BatchWorkflow.run,
            BatchInput(tenant_id="t", input_key="k"),
            id=_batch_id(),
            task_queue=queue,
        )
        await fake.validation_began.wait()
        await handle.signal(BatchWorkflow.pause, "hold on")
        assert fake.validating is not None
        fake.validating.set()
        await _until_validated(handle)
        view = await handle.query(BatchWorkflow.view)
        assert view.status is BatchStatus.PAUSED
        assert view.pause_reason == "hold on"
        assert not fake.started
        await handle.signal(BatchWorkflow.resume)
        view = await handle.result()
    assert view.status is BatchStatus.COMPLETED
    assert view.request_counts.completed == 4


async def _until_validated(handle: WorkflowHandle[BatchWorkflow, BatchView]) -> None:
    while True:
        view = await handle.query(BatchWorkflow.view)
        if view.started_at is not None:
            return
        await asyncio.sleep(0.01)
