"""Starting admitted jobs' workflows from the ledger store's outbox.

A submit with credits and limits on commits the job's reservation and its spec in one
transaction (with them off, only its spec: `LedgerStore.enqueue`) and answers 202 at once;
the job's workflow is started right after, off the request (`start_soon`), so a POST waits
for neither Temporal nor a worker. A start that could not happen then (Temporal unreachable,
the process gone) is made by `sweep`, which every API process and every worker runs: a job
admitted is never lost, only started late. Starting is idempotent by workflow id
(`REJECT_DUPLICATE`: a job id runs at most once, even after it has finished), so several
sweepers at once are safe.

A process has at most `MAX_STARTS_IN_FLIGHT` starts at Temporal at once; the others wait
their turn, in order. Unbounded, a burst of submits sends Temporal more starts than it can
take at once, each answered later than the one before: in `bench.admission` (2,000 submits
at concurrency 32, then 128) 2,838 of 4,000 starts ran out of `START_TIMEOUT` and had to be
made again by a sweep.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import accounts
from reelay.jobs import JobSpec, JobView
from reelay.settings import Settings
from reelay.store import JobState, LedgerStore, StoreUnavailable
from workflows import console, search_attributes
from workflows.video_generation import MEMO_CURRENT, MEMO_VIEW, VideoGenerationWorkflow

log = structlog.get_logger()

# A start Temporal has not accepted by then is given up (and retried by a sweep).
START_TIMEOUT = timedelta(seconds=3)
#: A pending start this old is the sweep's (younger ones are still being started by the
#: process that admitted them).
SWEEP_AFTER = timedelta(seconds=10)
SWEEP_EVERY_SECONDS = 5.0
#: Starts one process has at Temporal at once (its own submits' and its sweep's).
MAX_STARTS_IN_FLIGHT = 16
#: Starts a process keeps waiting for a turn; a submit beyond leaves its start to a sweep
#: (the job is in the outbox), so an outage of Temporal does not pile them up in memory.
MAX_STARTS_WAITING = 2_000
T = TypeVar("T")
#: This process's starts of its own submits, by job id, until each is done.
_starting: dict[str, asyncio.Task[bool]] = {}
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _turn() -> asyncio.Semaphore:
    """This event loop's `MAX_STARTS_IN_FLIGHT` slots."""
    loop = asyncio.get_running_loop()
    if (turns := _turns.get(loop)) is None:
        turns = _turns[loop] = asyncio.Semaphore(MAX_STARTS_IN_FLIGHT)
    return turns


async def start_workflow(
    client: Client, settings: Settings, spec: JobSpec, *, in_turn: bool = True
) -> WorkflowHandle[Any, JobView]:
    """Start the job's workflow: its search attributes, its memo'd view, its console lines.
    Raises `WorkflowAlreadyStartedError` when the job id has run (or runs) already. With
    `in_turn`, waits for a turn (`MAX_STARTS_IN_FLIGHT`); without it (a client is waiting on
    this very start), starts at once. `START_TIMEOUT` counts from the call to Temporal."""
    if not in_turn:
        return await _start(client, settings, spec)
    async with _turn():
        return await _start(client, settings, spec)


async def _start(client: Client, settings: Settings, spec: JobSpec) -> WorkflowHandle[Any, JobView]:
    return await bounded(
        client.start_workflow(
            VideoGenerationWorkflow.run,
            spec,
            id=spec.job_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes.for_new_job(spec),
            # current: the workflow keeps it until its view changes (`MemoKeeper.keep`)
            memo={MEMO_VIEW: JobView.from_spec(spec), MEMO_CURRENT: True},
            static_summary=console.job_summary(spec),
            static_details=console.job_details(spec),
        )
    )


def start_soon(client: Client, settings: Settings, spec: JobSpec, state: JobState) -> None:
    """Start a job just admitted in `state` in the background (the task is kept until it is
    done); with `MAX_STARTS_WAITING` starts waiting already, leave it to a sweep."""
    if is_starting(spec.job_id):
        return
    if len(_starting) >= MAX_STARTS_WAITING:
        log.warning("job start left to the sweep: too many starts waiting", job_id=spec.job_id)
        return
    task = asyncio.create_task(start_admitted(client, settings, spec, state))
    _starting[spec.job_id] = task
    task.add_done_callback(lambda _: _starting.pop(spec.job_id, None))


async def drain(timeout_seconds: float = 5.0) -> None:
    """Let the starts in flight finish (at shutdown); what does not is left to a sweep."""
    if _starting:
        await asyncio.wait(set(_starting.values()), timeout=timeout_seconds)


def is_starting(job_id: str) -> bool:
    """Whether this process's dispatcher has the job's start in hand (or waiting its turn)."""
    return job_id in _starting


async def start_admitted(
    client: Client,
    settings: Settings,
    spec: JobSpec,
    state: JobState | None = None,
    *,
    in_turn: bool = True,
) -> bool:
    """Start a job the ledger admitted, take it out of the outbox, and admit it if a slot
    freed for it while it was starting. `state`: as the submit just left it (else read);
    `in_turn`: as `start_workflow`'s. False when it could not be started now."""
    store = await accounts.ledger(settings)
    try:
        if state is None:
            state = await store.job_state(spec.job_id)
        if state is None or state is JobState.SETTLED:
            return True  # released or finished: nothing to start
        queued = spec.model_copy(update={"queued": state is JobState.QUEUED})
        try:
            handle = await start_workflow(client, settings, queued, in_turn=in_turn)
        except WorkflowAlreadyStartedError:
            handle = client.get_workflow_handle_for(VideoGenerationWorkflow.run, spec.job_id)
        await store.mark_started(spec.job_id)
        if queued.queued and await store.job_state(spec.job_id) is JobState.RUNNING:
            # The settle that gave it a slot found no workflow to tell: tell it now.
            await bounded(handle.signal(VideoGenerationWorkflow.admit))
    except (RPCError, StoreUnavailable) as exc:
        log.warning("job start deferred to the sweep", job_id=spec.job_id, error=str(exc))
        return False
    return True


async def sweep(
    client: Client, settings: Settings, store: LedgerStore, older_than: timedelta = SWEEP_AFTER
) -> int:
    """Start every admitted job left in the outbox for longer than `older_than` (but those
    this process is still starting: waiting their turn after a burst); returns how many it
    started."""
    pending = await store.unconfirmed(datetime.now(UTC) - older_than)
    specs = [
        JobSpec.model_validate_json(job.pending_start)
        for job in pending
        # no spec: the reaper's (a reservation from before the outbox)
        if job.pending_start is not None and not is_starting(job.job_id)
    ]
    outcomes = await asyncio.gather(*(start_admitted(client, settings, s) for s in specs))
    started = sum(outcomes)
    if started:
        log.info("swept admitted jobs into Temporal", started=started)
    return started


async def sweep_forever(client: Client, settings: Settings) -> None:
    """`sweep` every `SWEEP_EVERY_SECONDS` until cancelled."""
    while True:
        try:
            await sweep(client, settings, await accounts.ledger(settings))
        except (RPCError, StoreUnavailable):
            log.warning("outbox sweep failed; trying again next time", exc_info=True)
        await asyncio.sleep(SWEEP_EVERY_SECONDS)


async def pending_spec(settings: Settings, job_id: str) -> JobSpec | None:
    """The spec of an admitted job whose workflow is not started yet (None for any other
    job, or when the store cannot tell)."""
    try:
        raw = await (await accounts.ledger(settings)).pending_start(job_id)
    except StoreUnavailable:
        return None
    return JobSpec.model_validate_json(raw) if raw is not None else None


async def bounded(call: Awaitable[T]) -> T:
    """`call` within `START_TIMEOUT` in all (the client's own retries of an unreachable server
    take far longer than an `rpc_timeout`); out of time is an `RPCError` like any other."""
    try:
        async with asyncio.timeout(START_TIMEOUT.total_seconds()):
            return await call
    except TimeoutError:
        message = "Temporal did not answer in time"
        raise RPCError(message, RPCStatusCode.DEADLINE_EXCEEDED, b"") from None
