"""Admission through the ledger store with Temporal keeping the jobs: a submit needs neither
a worker nor Temporal (the job waits in the store's outbox and is started by a sweep), jobs
settle once through an activity that admits the queued ones, and the reaper releases
reservations from before the outbox whose job never started."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.accounts import AccountActivities, SettleJob
from api import accounts, dispatch, jobs
from providers.catalog import resolve_request
from reelay import devstack
from reelay.accounts import AccountSnapshot, Settlement, SubmitJob
from reelay.jobs import JobSpec, JobStatus
from reelay.settings import Settings
from reelay.store import JobState, LedgerStore
from reelay.temporal import connect
from reelay.tenants import DEFAULT_TIERS, Limits, Tenant
from tests.conftest import DEV_API_KEY, clean_env
from tests.support import MakeStack, running_worker, wait_until
from workflows.video_generation import VideoGenerationWorkflow

TENANT = Tenant(id="admission", tier="free", limits=DEFAULT_TIERS["free"], opening_balance_usd=5)


def _spec(settings: Settings, prompt: str) -> JobSpec:
    resolved = resolve_request(prompt=f"{prompt} {uuid.uuid4().hex[:6]}", duration_seconds=2)
    return jobs.build_spec(
        resolved, TENANT, settings, job_id=jobs.new_job_id(), request_id=jobs.new_request_id()
    )


async def _reserve(
    store: LedgerStore, spec: JobSpec, at: datetime, limits: Limits, *, outbox: bool = False
) -> None:
    request = SubmitJob(spec=spec, limits=limits, queue_cap=10)
    pending = spec.model_dump_json() if outbox else None
    await store.reserve(TENANT.id, TENANT.opening_balance_micro_usd, request, at, pending)


async def _park(client: Client, spec: JobSpec) -> None:
    """Start the job's workflow on a task queue no worker polls: it exists and stays open."""
    await client.start_workflow(
        VideoGenerationWorkflow.run, spec, id=spec.job_id, task_queue=f"idle-{uuid.uuid4().hex}"
    )


async def _account(settings: Settings) -> AccountSnapshot:
    return await (await accounts.ledger(settings)).snapshot(TENANT.id, 0)


async def _client_of_a_stopped_temporal(settings: Settings, tmp_path: Path) -> Client:
    """A client connected to a Temporal server that has gone since (a client connects only
    to a server that answers)."""
    port = devstack.free_port()
    server = await asyncio.to_thread(
        devstack.start_temporal, port=port, log_path=tmp_path / "temporal.log", env=clean_env()
    )
    try:
        return await connect(settings.model_copy(update={"temporal_address": f"127.0.0.1:{port}"}))
    finally:
        await asyncio.to_thread(server.stop)


async def _workflow_starts(client: Client, job_id: str) -> int:
    return len([e async for e in client.list_workflows(f"WorkflowId = '{job_id}'")])


async def test_with_no_worker_a_submit_answers_202_at_once_and_runs_when_one_starts(
    make_stack: MakeStack,
) -> None:
    stack = make_stack()
    stack.kill_worker()
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    url = stack.settings.public_url
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        assert (await http.get("/v1/account")).status_code == 200  # the API has served before
        started = time.monotonic()
        response = await http.post(
            "/v1/video/generations", json={"prompt": "[emu gen=1] nobody home yet"}
        )
        assert time.monotonic() - started < 1.0
        assert response.status_code == 202
        job_id, estimate = response.json()["id"], response.json()["estimated_cost_usd"]
        account = (await http.get("/v1/account")).json()
        assert (account["running_jobs"], account["reserved_usd"]) == (1, estimate)
        stack.start_worker()

        async def complete() -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get(f"/v1/video/generations/{job_id}")).json()
            return body if body["status"] == "complete" else None

        job = await wait_until(complete, within=120, interval=0.5)

        async def settled() -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get("/v1/account")).json()
            return body if body["reserved_usd"] == 0 else None

        account = await wait_until(settled)
    assert account["spent_usd"] == pytest.approx(job["perf"]["cost_usd"])
    assert account["running_jobs"] == 0


async def test_with_temporal_unreachable_a_submit_is_admitted_and_a_sweep_starts_it_once(
    settings: Settings, tmp_path: Path
) -> None:
    down = await _client_of_a_stopped_temporal(settings, tmp_path)
    spec = _spec(settings, "[emu gen=1] while Temporal is away")
    started = time.monotonic()
    admission = await jobs.start_job(down, settings, spec, TENANT)
    assert time.monotonic() - started < 1.0
    assert admission.view.job_id == spec.job_id and admission.queue_position is None
    await dispatch.drain()  # the start off the request fails: the job stays in the outbox
    store = await accounts.ledger(settings)
    assert await store.pending_start(spec.job_id) is not None
    shown, _ = await jobs.read_job(down, settings, spec.job_id, TENANT)
    assert (shown.job_id, shown.prompt) == (spec.job_id, spec.prompt)
    account = await _account(settings)
    assert (account.reserved_micro_usd, account.running) == (spec.estimated_cost_micro_usd, 1)
    client = await connect(settings)
    sweeps = [dispatch.sweep(client, settings, store, older_than=timedelta(0)) for _ in range(3)]
    await asyncio.gather(*sweeps)
    assert await store.pending_start(spec.job_id) is None
    await wait_until(lambda: _workflow_starts(client, spec.job_id))
    assert await _workflow_starts(client, spec.job_id) == 1
    assert await dispatch.sweep(client, settings, store, older_than=timedelta(0)) == 0


async def test_with_limits_off_a_submit_also_waits_in_the_outbox_and_reserves_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    unmetered = settings.model_copy(update={"limits_enabled": False})
    down = await _client_of_a_stopped_temporal(settings, tmp_path)
    spec = _spec(settings, "[emu gen=1] limits off, Temporal away")
    started = time.monotonic()
    admission = await jobs.start_job(down, unmetered, spec, TENANT)
    assert time.monotonic() - started < 1.0
    assert admission.view.job_id == spec.job_id and admission.view.account_id is None
    await dispatch.drain()
    store = await accounts.ledger(settings)
    assert await store.job_state(spec.job_id) is JobState.UNMETERED
    shown, _ = await jobs.read_job(down, unmetered, spec.job_id, TENANT)
    assert (shown.job_id, shown.prompt) == (spec.job_id, spec.prompt)
    account = await _account(settings)
    assert (account.reserved_micro_usd, account.running) == (0, 0)
    client = await connect(settings)
    sweeps = [dispatch.sweep(client, unmetered, store, older_than=timedelta(0)) for _ in range(3)]
    await asyncio.gather(*sweeps)
    assert await store.job_state(spec.job_id) is None  # started: its outbox row is gone
    await wait_until(lambda: _workflow_starts(client, spec.job_id))
    assert await _workflow_starts(client, spec.job_id) == 1
    async with running_worker(settings) as worker_client:
        handle = worker_client.get_workflow_handle_for(VideoGenerationWorkflow.run, spec.job_id)
        assert (await handle.result()).status is JobStatus.COMPLETED
    assert (await _account(settings)).spent_micro_usd == 0


async def test_a_queued_job_whose_slot_freed_before_it_started_starts_running(
    settings: Settings,
) -> None:
    client = await connect(settings)
    store = await accounts.ledger(settings)
    one_slot = Limits(concurrent_jobs=1, jobs_per_day=10)
    first, waiting = _spec(settings, "first"), _spec(settings, "waiting")
    await _reserve(store, first, datetime.now(UTC), one_slot)
    await _reserve(store, waiting, datetime.now(UTC), one_slot, outbox=True)
    assert await store.position(waiting.job_id) == 1
    settlement = Settlement(job_id=first.job_id, cost_micro_usd=0)
    assert await store.settle(TENANT.id, settlement, datetime.now(UTC)) == [waiting.job_id]
    idle = settings.model_copy(update={"task_queue": f"idle-{uuid.uuid4().hex}"})
    assert await dispatch.start_admitted(client, idle, waiting)
    handle = client.get_workflow_handle(waiting.job_id)
    started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
    assert json.loads(started.input.payloads[0].data)["queued"] is False  # no admit to wait for
    assert await store.pending_start(waiting.job_id) is None
    await handle.terminate("test over")


async def test_a_settle_replayed_charges_once_and_admits_the_next_in_line(
    settings: Settings,
) -> None:
    client = await connect(settings)
    store = await accounts.ledger(settings)
    one_slot = Limits(concurrent_jobs=1, jobs_per_day=10)
    first, waiting = _spec(settings, "first"), _spec(settings, "waiting")
    for spec in (first, waiting):
        await _reserve(store, spec, datetime.now(UTC), one_slot)
    await _park(client, waiting.model_copy(update={"queued": True}))
    settle = AccountActivities(client, store, timedelta(minutes=1)).settle_job
    settlement = Settlement(job_id=first.job_id, cost_micro_usd=first.estimated_cost_micro_usd // 2)
    for _ in range(2):
        await ActivityEnvironment().run(
            settle, SettleJob(tenant_id=TENANT.id, settlement=settlement)
        )
    account = await _account(settings)
    assert account.spent_micro_usd == first.estimated_cost_micro_usd // 2
    assert (account.running, account.queued) == (1, 0)
    assert await store.job_state(waiting.job_id) is JobState.RUNNING
    history = await client.get_workflow_handle(waiting.job_id).fetch_history()
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert signals == ["admit"]


async def test_the_reaper_releases_reservations_whose_job_never_started(
    settings: Settings,
) -> None:
    client = await connect(settings)
    store = await accounts.ledger(settings)
    roomy = Limits(concurrent_jobs=5, jobs_per_day=10)
    lost, running, ended, fresh = (_spec(settings, name) for name in ("lost", "run", "end", "new"))
    # Past the reaper's 1-minute grace, and (but in a day's first 2 minutes) on today's count.
    stale = datetime.now(UTC) - timedelta(minutes=2)
    for spec in (lost, running, ended):
        await _reserve(store, spec, stale, roomy)
    await _reserve(store, fresh, datetime.now(UTC), roomy)  # inside its grace period
    await _park(client, running)
    await _park(client, ended)
    await client.get_workflow_handle(ended.job_id).terminate("an operator ended it")
    reaper = AccountActivities(client, store, timedelta(minutes=1))
    assert await reaper.reap() == 2
    states = [await store.job_state(spec.job_id) for spec in (lost, running, ended, fresh)]
    assert states == [None, JobState.RUNNING, JobState.SETTLED, JobState.RUNNING]
    unconfirmed = await store.unconfirmed(datetime.now(UTC) + timedelta(minutes=1))
    assert {job.job_id for job in unconfirmed} == {fresh.job_id}  # the running one was seen
    account = await _account(settings)
    assert (account.spent_micro_usd, account.reserved_micro_usd) == (
        0,
        running.estimated_cost_micro_usd + fresh.estimated_cost_micro_usd,
    )
    assert account.today.jobs == 3  # the lost job is uncounted, the ended one was made
    assert await reaper.reap() == 0
