"""The ledger store's transactions: exact under concurrency from several processes, and a
refusal changes nothing. A SQLite file (the local default), no server."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reelay.accounts import Ledger, Refusal, Settlement, SubmitJob
from reelay.store import LedgerStore, StoreUnavailable
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
    """`PROCESSES` processes, each submitting `SUBMITS_PER_PROCESS` jobs at once."""
    runs = []
    for index in range(PROCESSES):
        numbers = range(index * SUBMITS_PER_PROCESS, (index + 1) * SUBMITS_PER_PROCESS)
        requests = [_request(n, limits, cap).model_dump_json() for n in numbers]
        runs.append(pool.submit(ledger_clients.submit_all, url, requests, opening))
    return [kind for run in runs for kind in run.result()]


async def _state(url: str) -> Ledger:
    store = await LedgerStore.open(url)
    try:
        return await store.read("hot", 0)
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
    state = asyncio.run(_state(url)).state
    assert state.available_micro_usd == 0
    assert state.reserved_micro_usd == affordable * ESTIMATE
    assert len(state.running) == state.today.jobs == affordable


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
    assert asyncio.run(_state(other)).state.today.jobs == 11


async def test_a_refusal_changes_nothing_and_a_replayed_settle_charges_once(
    tmp_path: Path,
) -> None:
    store = await LedgerStore.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}")
    limits = Limits(concurrent_jobs=1, jobs_per_day=10)
    first, second = _request(1, limits, cap=0), _request(2, limits, cap=0)
    now = datetime.now(UTC)
    try:
        await store.change("hot", 10 * ESTIMATE, lambda ledger: ledger.reserve(first, now))
        before = (await store.read("hot", 0)).state
        with pytest.raises(Refusal):
            await store.change("hot", 0, lambda ledger: ledger.reserve(second, now))
        assert (await store.read("hot", 0)).state == before
        settlement = Settlement(job_id=first.spec.job_id, cost_micro_usd=ESTIMATE // 2)
        for _ in range(2):
            await store.change_existing("hot", lambda ledger: ledger.settle(settlement, now))
        after = (await store.read("hot", 0)).state
        assert after.spent_micro_usd == ESTIMATE // 2
        assert after.reserved_micro_usd == 0
        assert await store.change_existing("nobody", lambda ledger: ledger.snapshot()) is None
    finally:
        await store.close()


async def test_an_unreachable_store_is_unavailable_within_its_timeout() -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(StoreUnavailable):
        await LedgerStore.open("postgresql+asyncpg://reelay:x@127.0.0.1:9/reelay", 1.0)
    assert asyncio.get_running_loop().time() - started < 3
