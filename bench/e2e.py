"""Run N jobs through the whole stack; print POST/GET latency percentiles and jobs per second.

Against a running stack (`make up`): `python -m bench.e2e --api http://127.0.0.1:8000 --key KEY`.
With no --api it starts its own stack (Temporal, SeaweedFS, emulator, worker, API) on free
ports in a temp dir, and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from bench.stack import BENCH_KEY, own_stack, percentiles

TERMINAL = {"complete", "failed", "cancelled"}


async def run_jobs(api: str, key: str, jobs: int, concurrency: int, duration: int) -> None:
    post_latency: list[float] = []
    get_latency: list[float] = []
    outcomes: dict[str, int] = {}
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=60, limits=limits
    ) as http:

        async def one(n: int) -> None:
            async with gate:
                body = {"prompt": f"bench job {n}", "duration_seconds": duration}
                began = time.perf_counter()
                response = await http.post("/v1/video/generations", json=body)
                post_latency.append(time.perf_counter() - began)
                response.raise_for_status()
                job_id = response.json()["id"]
            while True:
                await asyncio.sleep(0.5)
                began = time.perf_counter()
                status = (await http.get(f"/v1/video/generations/{job_id}")).json()["status"]
                get_latency.append(time.perf_counter() - began)
                if status in TERMINAL:
                    outcomes[status] = outcomes.get(status, 0) + 1
                    return

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(jobs)))
        elapsed = time.perf_counter() - started

    print(f"jobs: {jobs} ({duration} s videos), submit concurrency {concurrency}")
    print(f"outcomes: {outcomes}")
    print(f"POST /v1/video/generations  {percentiles(post_latency)}  (n={len(post_latency)})")
    print(f"GET  /v1/video/generations/{{id}}  {percentiles(get_latency)}  (n={len(get_latency)})")
    rate = outcomes.get("complete", 0) / elapsed
    print(f"wall time {elapsed:.1f} s; completed jobs per second {rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", help="base URL of a running Reelay API (default: start one)")
    parser.add_argument("--key", default="", help="API key for --api")
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--duration", type=int, default=4, help="seconds of video per job")
    parser.add_argument(
        "--generation-seconds", type=float, default=3.0, help="emulated generation time (own stack)"
    )
    args = parser.parse_args()
    if args.api:
        asyncio.run(run_jobs(args.api, args.key, args.jobs, args.concurrency, args.duration))
        return
    with (
        tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp,
        own_stack(Path(tmp), emulator_generation_seconds=args.generation_seconds) as settings,
    ):
        jobs = run_jobs(settings.public_url, BENCH_KEY, args.jobs, args.concurrency, args.duration)
        asyncio.run(jobs)


if __name__ == "__main__":
    main()
