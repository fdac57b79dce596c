"""The ledger store's transactions: exact under concurrency from several processes, and a
refusal changes nothing. A SQLite file (the local default), no server."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from reelay.accounts import AccountSnapshot, Ledger, Refusal, Settlement, SubmitJob, TopUp
from reelay.store import (
    DELETIONS_ROLLOUT,
    JobState,
    LedgerStore,
    StoreUnavailable,
    _GroupCommit,
)
from reelay.tenants import Limits
from tests.conftest import isolated_settings
from tests.support import job_spec
from tests.unit import ledger_clients

SETTINGS = isolated_settings()
ESTIMATE = job_spec(SETTINGS, "a prompt", duration_seconds=2).estimated_cost_micro_usd
PROCESSES = 4
SUBMITS_PER_PROCESS = 40


def _request(n: int, limits: Limits, cap: int) -> SubmitJob:
    spec = job_spec(SETTINGS, f"a prompt {n}", duration_seconds=2)
    return SubmitJob(spec=spec, limits=limits, queue_cap=cap)


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def _from_processes(
    pool: ProcessPoolExecutor, url: str, limits: Limits, cap: int, opening: int
) -> list[str]:
    """`PROCESSES` processes, each submitting `SUBMITS_PER_PROCESS` jobs at once, on a store
    created beforehand (as a deployment's is): what is measured is their transactions, not
    several processes creating one file at the same instant."""
    asyncio.run(_create(url))
    runs = []
    for index in range(PROCESSES):
        numbers = range(index * SUBMITS_PER_PROCESS, (index + 1) * SUBMITS_PER_PROCESS)
        requests = [_request(n, limits, cap).model_dump_json() for n in numbers]
        runs.append(pool.submit(ledger_clients.submit_all, url, requests, opening))
    return [kind for run in runs for kind in run.result()]


async def _create(url: str) -> None:
    """The store's file, schema and journal mode."""
    await (await LedgerStore.open(url)).close()


async def _account(url: str) -> AccountSnapshot:
    store = await LedgerStore.open(url)
    try:
        return await store.snapshot("hot", 0)
    finally:
        await store.close()


def test_credits_hold_exactly_under_concurrent_submits_from_several_processes(
    pool: ProcessPoolExecutor, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}"
    affordable = 37
    limits = Limits(concurrent_jobs=1000, jobs_per_day=1000)
    outcomes = _from_processes(pool, url, limits, cap=0, opening=affordable * ESTIMATE)
    assert outcomes.count("running") == affordable
    assert outcomes.count("insufficient_credits") == PROCESSES * SUBMITS_PER_PROCESS - affordable
    account = asyncio.run(_account(url))
    assert account.available_micro_usd == 0
    assert account.reserved_micro_usd == affordable * ESTIMATE
    assert account.running == account.today.jobs == affordable


def test_slots_queue_and_daily_limits_hold_exactly_from_several_processes(
    pool: ProcessPoolExecutor, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}"
    limits = Limits(concurrent_jobs=3, jobs_per_day=1000)
    outcomes = _from_processes(pool, url, limits, cap=5, opening=10**12)
    assert (outcomes.count("running"), outcomes.count("queued")) == (3, 5)
    assert outcomes.count("queue_full") == PROCESSES * SUBMITS_PER_PROCESS - 8
    daily = Limits(concurrent_jobs=1000, jobs_per_day=11)
    other = f"sqlite+aiosqlite:///{tmp_path / 'other.sqlite3'}"
    outcomes = _from_processes(pool, other, daily, cap=0, opening=10**12)
    assert outcomes.count("running") == 11
    assert asyncio.run(_account(other)).today.jobs == 11


async def test_a_refusal_changes_nothing_and_a_replayed_settle_charges_once(
    tmp_path: Path,
) -> None:
    store = await LedgerStore.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}")
    limits = Limits(concurrent_jobs=1, jobs_per_day=10)
    first, second = _request(1, limits, cap=0), _request(2, limits, cap=0)
    now = datetime.now(UTC)
    try:
        await store.reserve("hot", 10 * ESTIMATE, first, now)
        before = await store.snapshot("hot", 0)
        with pytest.raises(Refusal):
            await store.reserve("hot", 0, second, now)
        assert await store.snapshot("hot", 0) == before
        assert await store.job_state(second.spec.job_id) is None
        settlement = Settlement(job_id=first.spec.job_id, cost_micro_usd=ESTIMATE // 2)
        for _ in range(2):
            await store.settle("hot", settlement, now)
        after = await store.snapshot("hot", 0)
        assert after.spent_micro_usd == ESTIMATE // 2
        assert (after.reserved_micro_usd, after.running) == (0, 0)
        assert await store.settle("nobody", settlement, now) is None
        assert (await store.snapshot("nobody", 7)).available_micro_usd == 7  # a new account
    finally:
        await store.close()


async def test_the_queue_is_first_come_first_served_and_a_resubmit_is_the_same_job(
    tmp_path: Path,
) -> None:
    store = await LedgerStore.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}")
    two_slots = Limits(concurrent_jobs=2, jobs_per_day=100)
    requests = [_request(n, two_slots, cap=10) for n in range(6)]
    now = datetime.now(UTC)
    try:
        outcomes = [await store.reserve("hot", 100 * ESTIMATE, r, now) for r in requests]
        assert [o.queue_position for o in outcomes] == [None, None, 1, 2, 3, 4]
        again = await store.reserve("hot", 0, requests[4], now)
        assert (again.duplicate, again.queue_position) == (True, 3)
        ids = [r.spec.job_id for r in requests]
        admitted = await store.settle("hot", Settlement(job_id=ids[1], cost_micro_usd=0), now)
        assert admitted == [ids[2]]
        assert [await store.position(i) for i in ids] == [None, None, None, 1, 2, 3]
        released = await store.forget("hot", ids[0])
        assert released == [ids[3]]
        account = await store.snapshot("hot", 0)
        assert (account.running, account.queued, account.today.jobs) == (2, 2, 5)
        assert account.reserved_micro_usd == 4 * ESTIMATE
    finally:
        await store.close()


async def test_an_unmetered_job_is_only_an_outbox_entry_until_its_workflow_starts(
    tmp_path: Path,
) -> None:
    store = await LedgerStore.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}")
    spec = job_spec(SETTINGS, "a prompt", duration_seconds=2)
    now = datetime.now(UTC)
    try:
        assert await store.enqueue(spec, "hash-1", now)
        assert await store.job_state(spec.job_id) is JobState.UNMETERED
        assert await store.pending_start(spec.job_id) == spec.model_dump_json()
        swept = await store.unconfirmed(now + timedelta(seconds=1))
        assert [(j.job_id, j.pending_start is not None) for j in swept] == [(spec.job_id, True)]
        account = await store.snapshot(spec.tenant_id, 0)  # it reserves and counts nothing
        assert (account.reserved_micro_usd, account.running, account.today.jobs) == (0, 0, 0)
        assert not await store.enqueue(spec, "hash-1", now)  # the same request again
        with pytest.raises(Refusal) as refused:
            await store.enqueue(spec, "hash-2", now)
        assert refused.value.kind == "idempotency_conflict"
        await store.mark_started(spec.job_id)
        assert await store.job_state(spec.job_id) is None
        assert await store.unconfirmed(now + timedelta(seconds=1)) == []
    finally:
        await store.close()


async def test_a_version_1_store_is_converted_into_rows_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}"
    limits = Limits(concurrent_jobs=1, jobs_per_day=100)
    settled, running, waiting = (_request(n, limits, cap=5) for n in range(3))
    now = datetime.now(UTC)
    ledger = Ledger.open("hot", 100 * ESTIMATE, now)
    for request in (settled, running, waiting):
        ledger.reserve(request, now)
    ledger.settle(Settlement(job_id=settled.spec.job_id, cost_micro_usd=ESTIMATE), now)
    ledger.top_up(TopUp(reference="invoice-1", amount_micro_usd=ESTIMATE), now)
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "CREATE TABLE reelay_accounts (tenant_id TEXT PRIMARY KEY, state TEXT, updated_at TEXT)"
        )
        await conn.exec_driver_sql(
            "INSERT INTO reelay_accounts VALUES ('hot', ?, '')", (ledger.state.model_dump_json(),)
        )
    await engine.dispose()
    for _ in range(2):  # the second open converts nothing again
        store = await LedgerStore.open(url)
        try:
            account = await store.snapshot("hot", 0)
            assert account == ledger.snapshot()
            assert await store.job_state(settled.spec.job_id) is JobState.SETTLED
            assert await store.position(waiting.spec.job_id) == 1
            duplicate = await store.reserve("hot", 0, settled, now)
            assert duplicate.duplicate
            top_up = TopUp(reference="invoice-1", amount_micro_usd=ESTIMATE)
            assert (await store.top_up("hot", 0, top_up, now)) == account
        finally:
            await store.close()


async def test_deletions_are_all_in_a_new_store_and_an_upgraded_one_after_its_rollout(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}"
    before = datetime.now(UTC)
    store = await LedgerStore.open(url)
    new_since = store.deletions_since
    await store.close()
    assert before <= new_since <= datetime.now(UTC)  # a new store: no API ever left tombstones
    reopened = await LedgerStore.open(url)
    assert reopened.deletions_since == new_since  # kept, not moved on by every open
    await reopened.close()
    # A store from before deletions were kept in it: APIs of that version may still be
    # running, and leaving tombstones in S3, for the rollout.
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE reelay_deletions_since")
    await engine.dispose()
    upgraded = await LedgerStore.open(url)
    try:
        assert upgraded.deletions_since - datetime.now(UTC) > DELETIONS_ROLLOUT - timedelta(
            minutes=1
        )
        await upgraded.mark_deleted("job_vid_a", "hot")
        await upgraded.mark_deleted("job_vid_a", "hot")
        assert await upgraded.deleted_among(["job_vid_a", "job_vid_b"]) == {"job_vid_a"}
    finally:
        await upgraded.close()


async def test_an_unreachable_store_is_unavailable_within_its_timeout() -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(StoreUnavailable):
        await LedgerStore.open("postgresql+asyncpg://reelay:x@127.0.0.1:9/reelay", 1.0)
    assert asyncio.get_running_loop().time() - started < 3


async def test_marks_started_together_are_written_in_one_transaction_and_a_failure_reaches_each(
    tmp_path: Path,
) -> None:
    store = await LedgerStore.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}")
    specs = [job_spec(SETTINGS, f"a prompt {n}", duration_seconds=2) for n in range(20)]
    now = datetime.now(UTC)
    written: list[list[str]] = []
    write = store._mark_started_now

    async def counted(job_ids: list[str]) -> None:
        written.append(job_ids)
        await write(job_ids)

    store._started = _GroupCommit(counted)
    try:
        for spec in specs:
            await store.enqueue(spec, None, now)
        await asyncio.gather(*(store.mark_started(spec.job_id) for spec in specs))
        assert [sorted(batch) for batch in written] == [sorted(s.job_id for s in specs)]
        assert [await store.job_state(spec.job_id) for spec in specs] == [None] * len(specs)

        async def unavailable(job_ids: list[str]) -> None:
            raise StoreUnavailable("down")

        store._started = _GroupCommit(unavailable)
        outcomes = await asyncio.gather(
            store.mark_started("a"), store.mark_started("b"), return_exceptions=True
        )
        assert [type(outcome) for outcome in outcomes] == [StoreUnavailable] * 2
    finally:
        await store.close()
