"""End to end: N jobs, `--concurrency` at a time (a closed loop), through the whole stack
with a zero-delay emulator; completed jobs per second, CPU seconds per job of each process,
and history events per job; beside the floor: the same jobs made at the emulator directly
(create, poll, download the MP4).

`python -m bench.e2e [--jobs 200] [--concurrency 32] [--generation-seconds 0] [--histories 5]`

It starts its own stack (Temporal, SeaweedFS, emulator, worker, API) on free ports of
127.0.0.1 in a temp dir, and stops it afterwards. A Reelay job is done when its workflow is
(the Temporal client waits on it, so no status polling loads the API); then one GET reads
its status. CPU seconds are utime+stime deltas from /proc of each process the stack started
and of this one (the clients); their sum per job bounds the jobs/s the machine's cores allow
(the CPU-bound ceiling), and the host's steal (/proc/stat) says how much of those cores a
shared VM gave to other guests during the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bench.stack import (
    BENCH_KEY,
    MODEL,
    RUNWAY_MODEL,
    RUNWAY_RATIO,
    RUNWAY_VERSION,
    SECONDS,
    Batch,
    HostCpu,
    own_stack,
    quantile_ms,
    stack_processes,
    table,
    timed_many,
)
from reelay import devstack
from reelay.settings import Settings
from reelay.temporal import connect

ROLES = ("emulator", "temporal", "worker", "api", "s3")
#: A floor client polls as often as Reelay's workflow does at least (`own_stack`).
FLOOR_POLL_SECONDS = 0.5
#: The cores this benchmark (and the stack it starts) may run on: its CPU affinity.
CORES = len(os.sched_getaffinity(0))
#: The longest a run may take; jobs not begun by then are skipped (and counted).
RUN_SECONDS = 900.0


@dataclass
class Run:
    name: str
    jobs: Batch
    completed: int
    posts: list[float]
    gets: list[float]
    cpu: dict[str, float]
    #: The CPU time of this process: the clients that submit, wait and read.
    client_cpu: float
    #: The share of the machine's time the hypervisor gave other guests meanwhile.
    steal: float
    events_per_job: list[int]


async def with_cpu(
    name: str, work: Callable[[], Awaitable[tuple[Batch, int, list[float], list[float]]]]
) -> Run:
    processes = {role: found[0] for role, found in stack_processes().items() if role in ROLES}
    before = {role: p.cpu_seconds() for role, p in processes.items()}
    host, client = HostCpu.now(), time.process_time()
    jobs, completed, posts, gets = await work()
    cpu = {role: p.cpu_seconds() - before[role] for role, p in processes.items()}
    steal = HostCpu.now().steal_share_since(host)
    return Run(name, jobs, completed, posts, gets, cpu, time.process_time() - client, steal, [])


async def floor(settings: Settings, jobs: int, concurrency: int) -> Run:
    """The emulator's Runway protocol alone: create, poll until done, download the video."""
    posts: list[float] = []
    done = 0
    async with httpx.AsyncClient(
        base_url=settings.emulator_url,
        headers={"Authorization": "Bearer emulator-key", "X-Runway-Version": RUNWAY_VERSION},
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency * 2),
    ) as http:

        async def one(n: int) -> None:
            nonlocal done
            body = {
                "model": RUNWAY_MODEL,
                "promptText": f"e2e bench {n}",
                "ratio": RUNWAY_RATIO,
                "duration": SECONDS,
            }
            began = time.perf_counter()
            created = await http.post("/runway/v1/text_to_video", json=body)
            posts.append(time.perf_counter() - began)
            task_id = created.raise_for_status().json()["id"]
            while True:
                await asyncio.sleep(FLOOR_POLL_SECONDS)
                task = (await http.get(f"/runway/v1/tasks/{task_id}")).raise_for_status().json()
                if task["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    break
            if task["status"] == "SUCCEEDED":
                video = await http.get(task["output"][0])
                done += video.status_code == 200 and len(video.content) > 0

        async def work() -> tuple[Batch, int, list[float], list[float]]:
            batch = await timed_many(one, jobs, concurrency, RUN_SECONDS)
            return batch, done, posts, []

        return await with_cpu("floor (emulator direct)", work)


async def finished(client: Client, job_id: str) -> None:
    """Until the job's workflow has ended (it is started just after the 202, off the request)."""
    while True:
        try:
            await client.get_workflow_handle(job_id).result()
            return
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.02)


async def reelay(settings: Settings, jobs: int, concurrency: int, histories: int) -> Run:
    """Submit, wait for the job's workflow to end, then read its status once."""
    client = await connect(settings)
    posts: list[float] = []
    gets: list[float] = []
    completed: list[str] = []
    async with httpx.AsyncClient(
        base_url=devstack.api_base_url(settings),
        headers={"Authorization": f"Bearer {BENCH_KEY}"},
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency * 2),
    ) as http:

        async def one(n: int) -> None:
            body = {"prompt": f"e2e bench {n}", "model": MODEL, "duration_seconds": SECONDS}
            began = time.perf_counter()
            response = await http.post("/v1/video/generations", json=body)
            posts.append(time.perf_counter() - began)
            job_id = response.raise_for_status().json()["id"]
            await finished(client, job_id)
            began = time.perf_counter()
            status = (await http.get(f"/v1/video/generations/{job_id}")).json()["status"]
            gets.append(time.perf_counter() - began)
            if status == "complete":
                completed.append(job_id)

        async def work() -> tuple[Batch, int, list[float], list[float]]:
            batch = await timed_many(one, jobs, concurrency, RUN_SECONDS)
            return batch, len(completed), posts, gets

        run = await with_cpu("Reelay (native, credits+limits on)", work)
    for job_id in completed[:histories]:
        history = await client.get_workflow_handle(job_id).fetch_history()
        run.events_per_job.append(len(history.events))
    return run


def _ms(samples: list[float]) -> str:
    if not samples:
        return "-"
    return f"{quantile_ms(samples, 0.5):.0f} / {quantile_ms(samples, 0.99):.0f}"


def _cpu_figures(run: Run) -> list[str]:
    """The clients' CPU, the whole machine's CPU per completed job, and the jobs/s that CPU
    allows at most on this machine's cores (the run's figure cannot exceed it)."""
    if not run.completed:
        return ["-", "-", "-"]
    total = (sum(run.cpu.values()) + run.client_cpu) / run.completed
    ceiling = f"{CORES / total:.1f}" if total else "-"
    return [f"{run.client_cpu / run.completed:.3f}", f"{total:.3f}", ceiling]


def report(runs: list[Run], jobs: int, concurrency: int, generation: float) -> None:
    print(
        f"\nEnd to end: {jobs} jobs of {SECONDS} s, {concurrency} at a time, "
        f"emulator generation {generation:g} s"
    )
    header = [
        "",
        "completed",
        "failed",
        "wall s",
        "jobs/s",
        "vs floor",
        "POST p50/p99 ms",
        "GET p50/p99 ms",
        *(f"{role} CPU s/job" for role in ROLES),
        "client CPU s/job",
        "total CPU s/job",
        f"CPU-bound ceiling jobs/s ({CORES} cores)",
        "host steal %",
        "history events/job",
    ]
    base = runs[0].completed / runs[0].jobs.elapsed if runs[0].jobs.elapsed else 0.0
    rows = []
    for run in runs:
        rate = run.completed / run.jobs.elapsed if run.jobs.elapsed else 0.0
        events = run.events_per_job
        rows.append(
            [
                run.name,
                f"{run.completed}/{jobs}",
                (run.jobs.failures() or "0")
                + (f" ({run.jobs.skipped} skipped)" if run.jobs.skipped else ""),
                f"{run.jobs.elapsed:.1f}",
                f"{rate:.2f}",
                f"{rate / base:.2f}x" if base else "-",
                _ms(run.posts),
                _ms(run.gets),
                *(
                    f"{run.cpu[role] / run.completed:.3f}"
                    if run.completed and role in run.cpu
                    else "-"
                    for role in ROLES
                ),
                *_cpu_figures(run),
                f"{100 * run.steal:.0f}",
                (
                    f"{statistics.mean(events):.0f} ({min(events)}-{max(events)}, n={len(events)})"
                    if events
                    else "-"
                ),
            ]
        )
    print(table(header, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--generation-seconds", type=float, default=0.0, help="the emulator's")
    parser.add_argument("--histories", type=int, default=5, help="completed jobs' histories read")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp,
        own_stack(Path(tmp), emulator_generation_seconds=args.generation_seconds) as settings,
    ):
        runs = [
            asyncio.run(floor(settings, args.jobs, args.concurrency)),
            asyncio.run(reelay(settings, args.jobs, args.concurrency, args.histories)),
        ]
    report(runs, args.jobs, args.concurrency, args.generation_seconds)


if __name__ == "__main__":
    main()
