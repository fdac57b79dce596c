"""`bench/stack.py`'s helpers: the benchmarks find the stack's processes by the command lines
`reelay.devstack` builds, read their /proc figures, and their tenants are what the tenant
directory reads. No server is started; nothing here is timed (pacing is checked as a lower
bound only)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.stack import (
    BENCH_KEY,
    METERED_CONCURRENT_JOBS,
    METERED_KEY,
    Batch,
    HostCpu,
    StackProcess,
    _role,
    stack_processes,
    tenants_file,
    timed_many,
)
from reelay.devstack import apps, s3, temporal
from reelay.devstack.ephemeral import ephemeral_settings
from reelay.tenants import TenantDirectory
from tests.conftest import isolated_settings


def test_each_process_the_devstack_builds_gets_its_role(tmp_path: Path) -> None:
    settings = isolated_settings()
    log = tmp_path / "x.log"
    built = {
        "emulator": apps.emulator_process(settings, log_path=log),
        "worker": apps.worker_process(settings, log_path=log),
        "api": apps.api_process(settings, log_path=log),
        "temporal": temporal.temporal_process(port=7233, log_path=log),
        "s3": s3.seaweed_process(
            data_dir=tmp_path,
            port=8333,
            access_key="a",
            secret_key="b",
            bucket="c",
            log_path=log,
        ),
    }
    assert {role: _role(proc.args) for role, proc in built.items()} == {r: r for r in built}
    assert _role([sys.executable, "-m", "pytest"]) is None


def test_a_child_is_found_and_measured() -> None:
    # `python -c CODE -m api` looks like the API to /proc; it says when it is up, then sleeps.
    code = "import time; print('up', flush=True); time.sleep(60)"
    child = subprocess.Popen(
        [sys.executable, "-c", code, "-m", "api"],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "up\n"
        found = stack_processes().get("api", [])
        assert [p.pid for p in found] == [child.pid]
        process = found[0]
        own_rss = next(
            int(line.split()[1]) * 1024
            for line in Path(f"/proc/{child.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        assert process.rss_bytes() == pytest.approx(own_rss, rel=0.05)
        assert process.cpu_seconds() >= 0.0
    finally:
        child.kill()
        child.wait()


def test_a_dead_process_measures_zero() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    child.wait()
    assert StackProcess("api", child.pid).rss_bytes() == 0
    assert StackProcess("api", child.pid).cpu_seconds() == 0.0


def test_the_tenants_are_what_the_directory_reads(tmp_path: Path) -> None:
    directory = TenantDirectory(isolated_settings(tenants_file=tenants_file(tmp_path)))
    hot, metered = directory.authenticate(BENCH_KEY), directory.authenticate(METERED_KEY)
    assert hot is not None and metered is not None and hot.id != metered.id
    assert metered.limits.concurrent_jobs == METERED_CONCURRENT_JOBS
    assert metered.opening_balance_usd >= 1_000_000


def test_failures_are_counted_by_kind() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/")
    refused = httpx.Response(503, request=request)
    results: list[object] = [
        "job_1",
        httpx.HTTPStatusError("503", request=request, response=refused),
        httpx.HTTPStatusError("503", request=request, response=refused),
        httpx.ReadTimeout("slow"),
    ]
    batch = Batch([0.1] * len(results), results, 1.0, 0)
    assert batch.ok() == [0.1]
    assert batch.failures() == "3 failed: HTTP 503 x2, ReadTimeout"
    assert Batch([0.1], ["job_1"], 1.0, 0).failures() == ""


def test_an_ephemeral_stack_keeps_every_store_under_its_own_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the checkout's `.data`: a benchmark's stack must not start the jobs an earlier one
    left in its ledger's outbox (its sweep would), nor find their accounts."""
    monkeypatch.chdir(tmp_path / "..")
    settings = ephemeral_settings(tmp_path / "stack")
    stores = [settings.ledger_database_url, str(settings.data_dir), str(settings.emulator_data_dir)]
    assert all(str((tmp_path / "stack").resolve()) in store for store in stores), stores


def test_the_host_cpu_counts_busy_time_and_steal_as_a_share_of_all_time() -> None:
    before = HostCpu.now()
    burnt = time.process_time() + 0.05
    while time.process_time() < burnt:  # this process's CPU is the machine's busy time too
        pass
    after = HostCpu.now()
    assert after.busy > before.busy and after.idle >= before.idle and after.steal >= before.steal
    assert 0.0 <= after.steal_share_since(before) < 1.0
    # 5 ticks to other guests out of 5 + 10 busy + 5 idle.
    assert HostCpu(busy=110, idle=25, steal=5).steal_share_since(
        HostCpu(busy=100, idle=20, steal=0)
    ) == pytest.approx(0.25)
    assert before.steal_share_since(before) == 0.0


async def test_paced_calls_begin_no_sooner_than_their_turn() -> None:
    began: list[float] = []

    async def call(n: int) -> int:
        began.append(time.perf_counter())
        await asyncio.sleep(0)
        return n

    start = time.perf_counter()
    paced = await timed_many(call, 4, 1, every=0.05)
    assert paced.results == [0, 1, 2, 3]
    offsets = [t - start for t in began]
    assert all(offset >= n * 0.05 for n, offset in enumerate(offsets)), offsets
