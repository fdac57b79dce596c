"""Temporal alone under the poll loops' heartbeats: what `--runs` jobs in flight cost the
server when each sits in its poll loop, with Temporal's own dynamic config (the baseline)
and with the stack's (`reelay.devstack.temporal.DYNAMIC_CONFIG`), one after the other, in
`--rounds` rounds whose order turns (baseline first, then the stack's first, ...).

`python -m bench.heartbeats [--runs 10000] [--window 60] [--rounds 2]`

Each variant is a process of its own, with a fresh in-memory dev server (as the benchmarks'
stack runs it) and `--runs` workflows, each in one activity that heartbeats as a job's poll
loop does: every two thirds of `Settings.poll_heartbeat_timeout_seconds` (the product
default), at a random phase; the worker runs in that process. Once every activity has
started and a beat interval has passed (so no start backlog is measured), it describes a
random run 4 times a second for `--window` seconds, as a status read does, and prints:
describe p50/p90, Temporal's CPU-s/s and RSS, heartbeats/s, and history-cache misses/s (a
miss loads the run's state from persistence), from the server's Prometheus metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from temporalio import activity, workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.polling import BEAT_SHARE_OF_TIMEOUT
from bench.stack import StackProcess, mib, quantile_ms, table
from reelay import devstack
from reelay.devstack.temporal import DYNAMIC_CONFIG, temporal_process, wait_temporal_ready
from reelay.settings import Settings

TASK_QUEUE = "bench-heartbeats"
START_CONCURRENCY = 32
DESCRIBES_PER_SECOND = 4
HEARTBEAT_TIMEOUT = timedelta(
    seconds=float(Settings.model_fields["poll_heartbeat_timeout_seconds"].default)
)
#: As a poll loop beats (`activities.polling._Heartbeat`).
BEAT_EVERY_SECONDS = HEARTBEAT_TIMEOUT.total_seconds() * BEAT_SHARE_OF_TIMEOUT
BASELINE = "Temporal's defaults (baseline)"
#: What each variant runs the server with.
VARIANTS: dict[str, Mapping[str, str]] = {BASELINE: {}, "the stack's": DYNAMIC_CONFIG}
#: The history service's lookup of a run's state (a heartbeat's, a timer task's, a describe's).
CACHE_LOOKUP = "HistoryCacheGetOrCreate"


class Beats:
    """The poll loops' stand-in: sleeps, beating as a loop does; `all_started` is set once
    `runs` loops have begun."""

    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.started = 0
        self.all_started = asyncio.Event()

    @activity.defn(name="poll_until_done")
    async def loop(self) -> None:
        self.started += 1
        if self.started >= self.runs:
            self.all_started.set()
        await asyncio.sleep(random.uniform(0, BEAT_EVERY_SECONDS))
        while True:
            activity.heartbeat({"polls": 1, "progress": 0.5})
            await asyncio.sleep(BEAT_EVERY_SECONDS)


@workflow.defn
class InPollLoop:
    """A job in its poll loop, and nothing else."""

    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            "poll_until_done",
            start_to_close_timeout=timedelta(days=1),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
        )


@dataclass
class Variant:
    name: str
    runs: int
    start_seconds: float
    describes: list[float]
    cpu_per_second: float
    rss_bytes: int
    heartbeats_per_second: float
    misses_per_second: float


def _counters(metrics_port: int) -> dict[str, float]:
    """The server's heartbeats and history-cache misses so far."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    totals = {"heartbeats": 0.0, "misses": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name.removesuffix("_total")
            if name == "activity_heartbeat_count":
                totals["heartbeats"] += sample.value
            elif name == "cache_miss" and sample.labels.get("operation") == CACHE_LOOKUP:
                totals["misses"] += sample.value
    return totals


async def _measure(
    name: str, dynamic_config: Mapping[str, str], runs: int, window: float, log_path: Path
) -> Variant:
    port, metrics_port = devstack.free_port(with_grpc=True), devstack.free_port()
    proc = temporal_process(
        port=port,
        log_path=log_path,
        dynamic_config=dynamic_config,
        metrics_port=metrics_port,
    )
    proc.start()
    try:
        await asyncio.to_thread(wait_temporal_ready, proc, port=port)
        assert proc.pid is not None
        server = StackProcess("temporal", proc.pid)
        client = await Client.connect(f"127.0.0.1:{port}")
        beats = Beats(runs)
        ids = [f"bench-hb-{uuid.uuid4().hex}" for _ in range(runs)]
        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[InPollLoop],
            activities=[beats.loop],
            workflow_runner=UnsandboxedWorkflowRunner(),
            max_concurrent_activities=runs + 10,
        ):
            began = time.monotonic()
            gate = asyncio.Semaphore(START_CONCURRENCY)

            async def start(workflow_id: str) -> None:
                async with gate:
                    await client.start_workflow(
                        "InPollLoop",  # by name: the method form trips mypy's overloads elsewhere
                        id=workflow_id,
                        task_queue=TASK_QUEUE,
                    )

            await asyncio.gather(*(start(i) for i in ids))
            await beats.all_started.wait()
            start_seconds = time.monotonic() - began
            await asyncio.sleep(BEAT_EVERY_SECONDS)  # every loop beating at its own phase
            cpu, counters, t0 = server.cpu_seconds(), _counters(metrics_port), time.monotonic()
            describes = []
            while time.monotonic() - t0 < window:
                request = DescribeWorkflowExecutionRequest(
                    namespace="default", execution=WorkflowExecution(workflow_id=random.choice(ids))
                )
                asked = time.perf_counter()
                await client.workflow_service.describe_workflow_execution(request)
                describes.append(time.perf_counter() - asked)
                await asyncio.sleep(1 / DESCRIBES_PER_SECOND)
            seconds = time.monotonic() - t0
            after = _counters(metrics_port)
            return Variant(
                name=name,
                runs=runs,
                start_seconds=start_seconds,
                describes=describes,
                cpu_per_second=(server.cpu_seconds() - cpu) / seconds,
                rss_bytes=server.rss_bytes(),
                heartbeats_per_second=(after["heartbeats"] - counters["heartbeats"]) / seconds,
                misses_per_second=(after["misses"] - counters["misses"]) / seconds,
            )
    finally:
        proc.stop()


def _measured(name: str, runs: int, window: float, log_path: Path) -> Variant:
    """One variant in a process of its own (the one before it left nothing behind here)."""
    return asyncio.run(_measure(name, VARIANTS[name], runs, window, log_path))


def report(rounds: list[dict[str, Variant]]) -> None:
    header = [
        "round",
        "Temporal's dynamic config",
        "runs in their poll loop",
        "start s",
        "describe p50 / p90 ms",
        "Temporal CPU s/s",
        "vs baseline",
        "Temporal RSS",
        "heartbeats/s",
        "history-cache misses/s",
    ]
    rows = []
    for n, measured in enumerate(rounds, 1):
        base = measured[BASELINE].cpu_per_second
        for name in VARIANTS:
            v = measured[name]
            rows.append(
                [
                    str(n),
                    v.name,
                    f"{v.runs:,}",
                    f"{v.start_seconds:.0f}",
                    f"{quantile_ms(v.describes, 0.5):.1f} / {quantile_ms(v.describes, 0.9):.1f}",
                    f"{v.cpu_per_second:.2f}",
                    f"{v.cpu_per_second / base:.2f}x" if base else "-",
                    mib(v.rss_bytes),
                    f"{v.heartbeats_per_second:.0f}",
                    f"{v.misses_per_second:.0f}",
                ]
            )
    print(
        f"\nHeartbeats: each run beats every {BEAT_EVERY_SECONDS:.0f} s (heartbeat timeout "
        f"{HEARTBEAT_TIMEOUT.total_seconds():.0f} s); describes at {DESCRIBES_PER_SECOND}/s; "
        "each variant in a process and on a server of its own, the order turned each round"
    )
    print(table(header, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="jobs in their poll loop")
    parser.add_argument("--window", type=float, default=60.0, help="seconds described")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of both variants (in turn: ABBA...)"
    )
    args = parser.parse_args()
    began = time.monotonic()
    rounds: list[dict[str, Variant]] = []
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp:
        for n in range(args.rounds):
            order = list(VARIANTS) if n % 2 == 0 else list(reversed(VARIANTS))
            measured: dict[str, Variant] = {}
            for name in order:
                print(f"round {n + 1}: {name} ...", flush=True)
                log = Path(tmp) / f"temporal-{n}-{len(measured)}.log"
                with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as one:
                    run = one.submit(_measured, name, args.runs, args.window, log)
                    measured[name] = run.result()
            rounds.append(measured)
    report(rounds)
    print("the stack's: " + ", ".join(f"{k}={v}" for k, v in DYNAMIC_CONFIG.items()))
    print(f"\ntook {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
