"""The benchmarks' stack (`devstack.ephemeral_stack` with tenants whose limits never get in
the way), a second API with other settings, the stack's processes as /proc sees them, and
how the benchmarks measure and print latencies."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reelay import devstack
from reelay.settings import Settings
from reelay.tenants import hash_key

#: The hot tenant: limits and balance so large that they never refuse.
BENCH_KEY = "rl_bench_key"
#: The metered tenant: real limits (checked on every submit, as for every tenant) and a big
#: balance; the limits are above what a benchmark holds in flight, so nothing is refused.
METERED_KEY = "rl_bench_metered_key"
METERED_CONCURRENT_JOBS = 20_000

#: The job every Reelay benchmark submits: Runway Gen-4.5, 5 s at 720p, served by the
#: emulator's Runway protocol (what the floor and LiteLLM use too).
MODEL = "runway-gen4.5"
SECONDS = 5
RUNWAY_MODEL = "gen4.5"
RUNWAY_RATIO = "1280:720"
RUNWAY_VERSION = "2024-11-06"


def tenants_file(root: Path) -> Path:
    """A tenants file with the hot tenant (`BENCH_KEY`) and the metered one (`METERED_KEY`)."""
    path = root / "tenants.toml"
    path.write_text(
        "[[tenants]]\n"
        'id = "hot"\n'
        'tier = "enterprise"\n'
        "concurrent_jobs = 100000\n"
        "jobs_per_day = 10000000\n"
        "opening_balance_usd = 1000000.0\n"
        f'key_hashes = ["{hash_key(BENCH_KEY)}"]\n'
        "\n[[tenants]]\n"
        'id = "metered"\n'
        'tier = "enterprise"\n'
        f"concurrent_jobs = {METERED_CONCURRENT_JOBS}\n"
        "jobs_per_day = 1000000\n"
        "opening_balance_usd = 1000000.0\n"
        f'key_hashes = ["{hash_key(METERED_KEY)}"]\n'
    )
    return path


#: Jobs that stay in flight (the emulator takes an hour) and are polled rarely, so that a
#: benchmark of submits measures submits; `bench.capacity` measures them under polling load.
QUIET_IN_FLIGHT: dict[str, Any] = {
    "emulator_generation_seconds": 3600.0,
    "poll_min_seconds": 600.0,
    "poll_max_seconds": 600.0,
}


@contextmanager
def own_stack(root: Path, **overrides: Any) -> Iterator[Settings]:
    """The whole stack, with the hot and the metered tenant."""
    values: dict[str, Any] = {
        "dev_api_key": "",
        "tenants_file": tenants_file(root),
        "tenant_queue_cap": 100_000,
        "poll_min_seconds": 0.5,
        "poll_max_seconds": 2.0,
        **overrides,
    }
    with devstack.ephemeral_stack(root, **values) as settings:
        yield settings


@contextmanager
def second_api(settings: Settings, root: Path, **overrides: Any) -> Iterator[str]:
    """Another API process on the same stack with `overrides` (e.g. `limits_enabled=False`,
    which today only the API reads); yields its base URL."""
    port = devstack.free_port()
    other = settings.model_copy(
        update={"api_port": port, "public_url": f"http://127.0.0.1:{port}", **overrides}
    )
    name = "-".join(f"{k}={v}" for k, v in overrides.items()) or "copy"
    proc = devstack.start_api(other, log_path=root / "logs" / f"api-{name}.log")
    try:
        yield devstack.api_base_url(other)
    finally:
        proc.stop()


# --- the stack's processes, as /proc sees them ------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (field 3 onwards)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")


def _role(argv: list[str]) -> str | None:
    """Which part of the stack a command line is."""
    head = Path(argv[0]).name if argv else ""
    if head == "temporal" and "server" in argv:
        return "temporal"
    if head == "weed":
        return "s3"
    joined = " ".join(argv)
    if f"-m {devstack.EMULATOR_MODULE}" in joined:
        return "emulator"
    if "-m api" in joined:
        return "api"
    if any(arg.endswith("worker.py") for arg in argv) or "-m worker" in joined:
        return "worker"
    return None


@dataclass(frozen=True)
class StackProcess:
    """One child of this process (a process group of its own, as `ManagedProcess` starts
    them); its figures sum over the whole group."""

    role: str
    pid: int

    def _group(self) -> list[int]:
        members = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if int(_stat_fields(int(entry.name))[2]) == self.pid:  # pgrp
                        members.append(int(entry.name))
                except (OSError, ValueError, IndexError):
                    continue
        return members or [self.pid]

    def rss_bytes(self) -> int:
        """VmRSS of the group, from /proc/<pid>/status."""
        total = 0
        for pid in self._group():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def cpu_seconds(self) -> float:
        """utime + stime of the group so far, from /proc/<pid>/stat."""
        ticks = 0
        for pid in self._group():
            try:
                fields = _stat_fields(pid)
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / CLOCK_TICKS


def stack_processes() -> dict[str, list[StackProcess]]:
    """This process's children by role (temporal, s3, emulator, worker, api), oldest first."""
    me = os.getpid()
    found: dict[str, list[StackProcess]] = {}
    for entry in sorted(Path("/proc").iterdir(), key=lambda p: p.name):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if int(_stat_fields(pid)[1]) != me:  # ppid
                continue
            role = _role(_cmdline(pid))
        except (OSError, ValueError, IndexError):
            continue
        if role is not None:
            found.setdefault(role, []).append(StackProcess(role, pid))
    for processes in found.values():
        processes.sort(key=lambda p: int(_stat_fields(p.pid)[19]))  # starttime
    return found


@dataclass(frozen=True)
class HostCpu:
    """The machine's CPU time so far, from the `cpu` line of /proc/stat (in clock ticks):
    what every process got, what sat idle, and what the hypervisor gave other guests (steal).
    On a shared VM, steal is why the same commit runs at different speeds."""

    busy: int
    idle: int
    steal: int

    @classmethod
    def now(cls) -> HostCpu:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
        return cls(busy=user + nice + system + irq + softirq, idle=idle + iowait, steal=steal)

    def steal_share_since(self, before: HostCpu) -> float:
        """The share of the machine's time since `before` that went to other guests."""
        steal = self.steal - before.steal
        total = steal + (self.busy - before.busy) + (self.idle - before.idle)
        return steal / total if total else 0.0


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"


# --- load and latency -------------------------------------------------------------------


@dataclass
class Batch:
    """What `timed_many` made: each call's seconds and result (or the exception it raised),
    in completion order, the wall time, and how many calls the time bound skipped."""

    latencies: list[float]
    results: list[Any]
    elapsed: float
    skipped: int

    def ok(
        self, check: Callable[[Any], bool] = lambda r: not isinstance(r, Exception)
    ) -> list[float]:
        """The latencies of the calls whose result passes `check` (by default: no exception)."""
        return [s for s, r in zip(self.latencies, self.results, strict=True) if check(r)]

    def failures(
        self, check: Callable[[Any], bool] = lambda r: not isinstance(r, Exception)
    ) -> str:
        """The results that fail `check`, counted by kind: '3 failed: HTTP 503 x2, ReadTimeout'."""
        kinds = Counter(_kind(r) for r in self.results if not check(r))
        if not kinds:
            return ""
        listed = ", ".join(k if n == 1 else f"{k} x{n}" for k, n in kinds.most_common())
        return f"{sum(kinds.values())} failed: {listed}"


def _kind(result: Any) -> str:
    if isinstance(result, httpx.HTTPStatusError):
        return f"HTTP {result.response.status_code}"
    if isinstance(result, httpx.Response):
        return f"HTTP {result.status_code}"
    return type(result).__name__


async def timed_many(
    call: Callable[[int], Awaitable[Any]],
    count: int,
    concurrency: int,
    seconds: float | None = None,
    every: float | None = None,
) -> Batch:
    """`call(0) .. call(count-1)`, `concurrency` at a time; calls not begun within `seconds`
    are skipped. With `every`, call `n` begins no sooner than `n * every` seconds in (paced
    samples spread over a stretch of time, rather than a burst at its start)."""
    gate = asyncio.Semaphore(concurrency)
    batch = Batch([], [], 0.0, 0)
    started = time.perf_counter()
    stop = None if seconds is None else started + seconds

    async def one(n: int) -> None:
        async with gate:
            if every is not None and (wait := started + n * every - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            if stop is not None and time.perf_counter() > stop:
                batch.skipped += 1
                return
            began = time.perf_counter()
            result: Any
            try:
                result = await call(n)
            except Exception as exc:  # a failed request is a result to count, not a crash
                result = exc
            batch.latencies.append(time.perf_counter() - began)
            batch.results.append(result)

    await asyncio.gather(*(one(n) for n in range(count)))
    batch.elapsed = time.perf_counter() - started
    return batch


def quantile_ms(samples: list[float], q: float) -> float:
    """The `q` quantile (nearest rank) of durations in seconds, in milliseconds."""
    ms = sorted(s * 1000 for s in samples)
    return ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, columns padded so it also reads as plain text."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
