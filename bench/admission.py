"""One hot tenant submitting as fast as it can: admitted jobs per second and POST latency,
with credits and limits on (every submit is an update of the tenant's account workflow)
and off (jobs start directly).

`python -m bench.admission [--jobs 300] [--concurrency 32]`
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from bench.stack import BENCH_KEY, own_stack, percentiles


async def hammer(api: str, jobs: int, concurrency: int) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    admitted = 0
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=api,
        headers={"Authorization": f"Bearer {BENCH_KEY}"},
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency),
    ) as http:

        async def one(n: int) -> None:
            nonlocal admitted
            async with gate:
                began = time.perf_counter()
                response = await http.post(
                    "/v1/video/generations",
                    json={"prompt": f"[emu gen=30] hot {n}", "duration_seconds": 2},
                )
                latencies.append(time.perf_counter() - began)
                admitted += response.status_code == 202

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(jobs)))
        return latencies, admitted, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    for limits in (True, False):
        with (
            tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp,
            own_stack(Path(tmp), limits_enabled=limits) as settings,
        ):
            latencies, admitted, elapsed = asyncio.run(
                hammer(settings.public_url, args.jobs, args.concurrency)
            )
        label = "credits+limits ON " if limits else "credits+limits OFF"
        print(
            f"{label}: {admitted}/{args.jobs} admitted in {elapsed:.1f} s = "
            f"{admitted / elapsed:.1f} jobs/s; POST {percentiles(latencies)}"
        )


if __name__ == "__main__":
    main()
