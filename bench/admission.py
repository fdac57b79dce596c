"""One hot tenant submitting as fast as it can at concurrency 32 and 128: admitted submits
per second and POST latency with credits and limits on (the way every tenant runs), beside
the same with limits off (a second API on the same stack with `limits_enabled=False`).

`python -m bench.admission [--jobs 2000] [--concurrency 32 128] [--clients 4]`

Jobs stay in flight and are polled rarely (`QUIET_IN_FLIGHT`), so admission is measured on
its own; each run stops after `--jobs` submits or `--seconds`, whichever comes first. The
default run lasts several seconds at these rates, long enough to average over the rate's
swings within a run (88 to 246 admitted a second in half-second steps, in one run here). The
load comes from `--clients` processes sharing the concurrency: one Python client process
tops out below the rate being measured (its own CPU, not the server, would set the figure).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import httpx

from bench.stack import (
    BENCH_KEY,
    MODEL,
    QUIET_IN_FLIGHT,
    SECONDS,
    Batch,
    own_stack,
    quantile_ms,
    second_api,
    table,
    timed_many,
)
from reelay import devstack


async def hammer(api: str, jobs: int, concurrency: int, seconds: float) -> Batch:
    async with httpx.AsyncClient(
        base_url=api,
        headers={"Authorization": f"Bearer {BENCH_KEY}"},
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency),
    ) as http:

        async def submit(n: int) -> httpx.Response:
            body = {"prompt": f"hot {n}", "model": MODEL, "duration_seconds": SECONDS}
            return await http.post("/v1/video/generations", json=body)

        return await timed_many(submit, jobs, concurrency, seconds)


class Failed(Exception):
    """A request that raised in a client process, by the kind of its exception."""


def _client(api: str, jobs: int, concurrency: int, seconds: float, start_at: float) -> Batch:
    """One client process's share, begun at `start_at` (wall clock) with the others; the
    results come back as status codes (responses do not cross processes)."""
    time.sleep(max(0.0, start_at - time.time()))
    batch = asyncio.run(hammer(api, jobs, concurrency, seconds))
    batch.results = [
        r.status_code if isinstance(r, httpx.Response) else type(r).__name__ for r in batch.results
    ]
    return batch


def hammer_from(
    pool: ProcessPoolExecutor, clients: int, api: str, jobs: int, concurrency: int, seconds: float
) -> Batch:
    """`hammer` split over `clients` processes started together; one merged `Batch`."""
    shares = [(jobs // clients) + (n < jobs % clients) for n in range(clients)]
    slots = [max(1, (concurrency // clients) + (n < concurrency % clients)) for n in range(clients)]
    start_at = time.time() + 2.0  # every process has imported and is waiting by then
    runs = [
        pool.submit(_client, api, share, slot, seconds, start_at)
        for share, slot in zip(shares, slots, strict=True)
    ]
    parts = [run.result() for run in runs]
    merged = Batch([], [], max(p.elapsed for p in parts), sum(p.skipped for p in parts))
    for part in parts:
        merged.latencies += part.latencies
        merged.results += [
            httpx.Response(r) if isinstance(r, int) else Failed(r) for r in part.results
        ]
    return merged


def _admitted(result: object) -> bool:
    return isinstance(result, httpx.Response) and result.status_code == 202


def _row(c: int, mode: str, batch: Batch, jobs: int, baseline: Batch | None) -> list[str]:
    """One run's figures; with `baseline` (limits off), the ratios to it."""
    admitted = batch.ok(_admitted)
    rate = len(admitted) / batch.elapsed if batch.elapsed else 0.0
    p50 = quantile_ms(admitted, 0.5) if admitted else None
    ratios = ""
    if baseline is not None and (base := baseline.ok(_admitted)) and p50 is not None:
        base_rate = len(base) / baseline.elapsed
        ratios = f"{rate / base_rate:.2f}x / {p50 / quantile_ms(base, 0.5):.1f}x"
    return [
        f"c={c}",
        mode,
        f"{len(admitted)}/{jobs}",
        (batch.failures(_admitted) or "0")
        + (f" ({batch.skipped} skipped)" if batch.skipped else ""),
        f"{batch.elapsed:.1f}",
        f"{rate:.1f}",
        "-" if p50 is None else f"{p50:.0f} / {quantile_ms(admitted, 0.99):.0f}",
        ratios,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="submits per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--seconds", type=float, default=300.0, help="time bound per run")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    args = parser.parse_args()
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp:
        root = Path(tmp)
        with (
            own_stack(root, **QUIET_IN_FLIGHT) as settings,
            second_api(settings, root, limits_enabled=False) as limits_off,
            ProcessPoolExecutor(args.clients, mp_context=get_context("spawn")) as pool,
        ):
            limits_on = devstack.api_base_url(settings)
            for c in args.concurrency:
                print(f"c={c}: limits on, then off ...", flush=True)
                on = hammer_from(pool, args.clients, limits_on, args.jobs, c, args.seconds)
                off = hammer_from(pool, args.clients, limits_off, args.jobs, c, args.seconds)
                rows.append(_row(c, "credits+limits on", on, args.jobs, off))
                rows.append(_row(c, "limits off (baseline)", off, args.jobs, None))
    header = [
        "concurrency",
        "one hot tenant",
        "admitted",
        "not 202",
        "wall s",
        "admitted/s",
        "POST p50/p99 ms",
        "rate / p50 vs off",
    ]
    print(f"\nAdmission: {args.jobs} submits per run, from {args.clients} client processes")
    print(table(header, rows))


if __name__ == "__main__":
    main()
