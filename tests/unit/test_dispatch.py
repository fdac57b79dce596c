"""The dispatcher's bounds: how many starts one process has at Temporal at once, how long
one may take, and how many may wait. A stand-in client that only counts its calls."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio.client import Client

from api import dispatch
from reelay.jobs import JobSpec
from reelay.settings import Settings
from reelay.store import JobState, LedgerStore
from tests.conftest import isolated_settings
from tests.support import job_spec

SETTINGS = isolated_settings()
SPEC = job_spec(SETTINGS, "a prompt", duration_seconds=2)


class CountingTemporal:
    """`start_workflow` that counts the calls in flight; each lasts `seconds`, or (None)
    until `finish` is set. `called` is set at the `MAX_STARTS_IN_FLIGHT`th call."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds
        self.finish = asyncio.Event()
        self.called = asyncio.Event()
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def start_workflow(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.calls == dispatch.MAX_STARTS_IN_FLIGHT:
            self.called.set()
        try:
            if self.seconds is None:
                await self.finish.wait()
            else:
                await asyncio.sleep(self.seconds)
        finally:
            self.in_flight -= 1
        return kwargs["id"]


async def test_at_most_max_starts_in_flight_reach_temporal_at_once() -> None:
    temporal = CountingTemporal()
    client = cast(Client, temporal)
    starts = [
        asyncio.create_task(dispatch.start_workflow(client, SETTINGS, SPEC))
        for _ in range(dispatch.MAX_STARTS_IN_FLIGHT * 2 + 3)
    ]
    await temporal.called.wait()
    for _ in range(100):  # the others keep waiting for a turn
        await asyncio.sleep(0)
    assert temporal.calls == temporal.in_flight == dispatch.MAX_STARTS_IN_FLIGHT
    temporal.finish.set()
    assert await asyncio.gather(*starts) == [SPEC.job_id] * len(starts)
    assert temporal.most_in_flight == dispatch.MAX_STARTS_IN_FLIGHT


async def test_the_start_timeout_counts_from_the_call_not_from_the_wait_for_a_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatch, "START_TIMEOUT", timedelta(seconds=1.0))
    temporal = CountingTemporal(seconds=0.4)
    rounds = 3  # 1.2 s in all: each start waits longer than START_TIMEOUT, none times out
    starts = [
        dispatch.start_workflow(cast(Client, temporal), SETTINGS, SPEC)
        for _ in range(dispatch.MAX_STARTS_IN_FLIGHT * rounds)
    ]
    assert len(await asyncio.gather(*starts)) == dispatch.MAX_STARTS_IN_FLIGHT * rounds


async def test_beyond_max_starts_waiting_a_start_is_left_to_the_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatch, "MAX_STARTS_WAITING", 3)
    blocked = asyncio.Event()

    async def waits(*args: Any) -> bool:
        await blocked.wait()
        return True

    monkeypatch.setattr(dispatch, "start_admitted", waits)
    client = cast(Client, CountingTemporal())
    for n in range(5):
        spec = job_spec(SETTINGS, f"prompt {n}", duration_seconds=2)
        dispatch.start_soon(client, SETTINGS, spec, JobState.RUNNING)
    assert len(dispatch._starting) == 3
    blocked.set()
    await dispatch.drain()
    assert not dispatch._starting


async def test_a_sweep_leaves_alone_the_jobs_this_process_is_still_starting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = await LedgerStore.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}")
    waiting, left = SPEC, job_spec(SETTINGS, "another prompt", duration_seconds=2)
    for spec in (waiting, left):
        assert await store.enqueue(spec, None, datetime.now(UTC))
    turn = asyncio.Event()
    started: list[str] = []

    async def in_turn(client: Client, settings: Settings, spec: JobSpec, *state: Any) -> bool:
        started.append(spec.job_id)
        if spec is waiting:
            await turn.wait()  # until the sweep has started the other one
        else:
            turn.set()
        return True

    monkeypatch.setattr(dispatch, "start_admitted", in_turn)
    client = cast(Client, CountingTemporal())
    dispatch.start_soon(client, SETTINGS, waiting, JobState.UNMETERED)
    assert await dispatch.sweep(client, SETTINGS, store, timedelta(0)) == 1
    await dispatch.drain()
    assert sorted(started) == sorted([waiting.job_id, left.job_id])  # each started once
    await store.close()


async def test_a_start_a_client_waits_on_takes_no_turn() -> None:
    temporal = CountingTemporal()
    client = cast(Client, temporal)
    queued = [
        asyncio.create_task(dispatch.start_workflow(client, SETTINGS, SPEC))
        for _ in range(dispatch.MAX_STARTS_IN_FLIGHT + 1)
    ]
    await temporal.called.wait()  # every turn taken, one start waiting for a turn
    direct = asyncio.create_task(dispatch.start_workflow(client, SETTINGS, SPEC, in_turn=False))
    for _ in range(100):
        await asyncio.sleep(0)
    assert temporal.calls == dispatch.MAX_STARTS_IN_FLIGHT + 1  # the direct one, not the queued
    temporal.finish.set()
    await asyncio.gather(direct, *queued)


async def test_the_jobs_being_started_are_known_until_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = asyncio.Event()

    async def waits(*args: Any) -> bool:
        await started.wait()
        return True

    monkeypatch.setattr(dispatch, "start_admitted", waits)
    dispatch.start_soon(cast(Client, CountingTemporal()), SETTINGS, SPEC, JobState.RUNNING)
    assert dispatch.is_starting(SPEC.job_id)
    started.set()
    await dispatch.drain()
    assert not dispatch.is_starting(SPEC.job_id)
