"""Run N jobs through the whole stack; print POST/GET latency percentiles and jobs per second.

Against a running stack (`make up`): `python bench/e2e.py --api http://127.0.0.1:8000 --key KEY`.
With no --api it starts its own stack (Temporal, SeaweedFS, emulator, worker, API) on free
ports in a temp dir, and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from pydantic import SecretStr

from reelay import devstack
from reelay.settings import Settings

TERMINAL = {"complete", "failed", "cancelled"}


@contextmanager
def own_stack(root: Path, generation_seconds: float) -> Iterator[tuple[str, str]]:
    """A throwaway local stack; yields (API URL, key)."""
    logs = root / "logs"
    api_port = devstack.free_port()
    s3_port = devstack.free_port(with_grpc=True)
    settings = Settings(
        _env_file=None,
        temporal_address=f"127.0.0.1:{devstack.free_port()}",
        s3_endpoint=f"127.0.0.1:{s3_port}",
        s3_access_key="bench",
        s3_secret_key=SecretStr("bench-secret-key"),
        emulator_port=devstack.free_port(),
        emulator_data_dir=root / "emulator",
        emulator_generation_seconds=generation_seconds,
        emulator_render_scale=8,
        api_port=api_port,
        public_url=f"http://127.0.0.1:{api_port}",
        dev_api_key="rl_bench_key",
        poll_min_seconds=0.5,
        poll_max_seconds=2.0,
    )
    _, temporal_port = devstack.split_host_port(settings.temporal_address)
    with ExitStack() as stack:
        for proc in (
            devstack.start_temporal(port=temporal_port, log_path=logs / "temporal.log"),
            devstack.start_seaweed(
                data_dir=root / "s3",
                port=s3_port,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key.get_secret_value(),
                bucket=settings.s3_bucket,
                log_path=logs / "s3.log",
            ),
            devstack.start_emulator(settings, log_path=logs / "emulator.log"),
            devstack.start_worker(settings, log_path=logs / "worker.log"),
            devstack.start_api(settings, log_path=logs / "api.log"),
        ):
            stack.callback(proc.stop)
        yield settings.public_url, settings.dev_api_key


def percentiles(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    ms = sorted(s * 1000 for s in samples)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return (
        f"p50 {cuts[49]:7.1f} ms  p90 {cuts[89]:7.1f} ms  "
        f"p99 {cuts[98]:7.1f} ms  max {ms[-1]:7.1f} ms"
    )


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
        own_stack(Path(tmp), args.generation_seconds) as (api, key),
    ):
        asyncio.run(run_jobs(api, key, args.jobs, args.concurrency, args.duration))


if __name__ == "__main__":
    main()
