"""The provider client's cost per poll: httpx on its default transport (httpcore) beside
httpx on aiohttp's transport (what `providers.http.ProviderHttp` uses), in one run.

`python -m bench.provider_client [--loops 2000] [--seconds 15]`: the emulator alone, with
`--tasks` Runway tasks in flight; `--loops` poll loops share one `ProviderHttp` (its
`API_CONNECTIONS` connections), each polling a task as fast as the client lets it, as a
worker's poll loops do when they wake together. Printed per transport: polls a second, CPU
of this process per poll, and poll latency p50/p99. The emulator's own CPU is not counted
(it runs in its own process), so the figures are the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from httpx_aiohttp import AiohttpTransport

from bench.stack import RUNWAY_MODEL, RUNWAY_RATIO, SECONDS, quantile_ms, table
from providers.http import API_CONNECTIONS, ProviderHttp
from providers.registry import EMULATOR_KEY
from providers.runway import API_VERSION
from reelay.devstack import start_emulator
from reelay.devstack.ephemeral import ephemeral_settings

HEADERS = {"Authorization": f"Bearer {EMULATOR_KEY}", "X-Runway-Version": API_VERSION}
LIMITS = httpx.Limits(max_connections=API_CONNECTIONS, max_keepalive_connections=API_CONNECTIONS)
TRANSPORTS: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
    "httpx default transport (httpcore)": lambda: httpx.AsyncHTTPTransport(limits=LIMITS),
    "httpx on aiohttp (ProviderHttp)": lambda: AiohttpTransport(limits=LIMITS),
}


@dataclass
class Result:
    polls: int
    wall_seconds: float
    cpu_seconds: float
    latencies: list[float]


async def create_tasks(base_url: str, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS) as http:
        ids = []
        for n in range(count):
            body = {
                "model": RUNWAY_MODEL,
                "promptText": f"provider client bench {n}",
                "ratio": RUNWAY_RATIO,
                "duration": SECONDS,
            }
            response = await http.post("/v1/text_to_video", json=body)
            response.raise_for_status()
            ids.append(response.json()["id"])
        return ids


async def measure(
    base_url: str, transport: httpx.AsyncBaseTransport, ids: list[str], loops: int, seconds: float
) -> Result:
    http = ProviderHttp("runway", base_url, HEADERS, transport=transport)
    latencies: list[float] = []
    stop_at = 0.0

    async def loop(n: int) -> None:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            await http.request("GET", f"/v1/tasks/{ids[n % len(ids)]}")
            latencies.append(time.perf_counter() - started)

    try:
        stop_at = time.monotonic() + 2.0  # warm the connections
        await asyncio.gather(*(loop(n) for n in range(loops)))
        latencies.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(loop(n) for n in range(loops)))
        return Result(
            len(latencies),
            time.perf_counter() - wall,
            time.process_time() - cpu,
            list(latencies),
        )
    finally:
        await http.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2, help="each transport, alternating")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp:
        settings = ephemeral_settings(Path(tmp), emulator_generation_seconds=3600.0)
        emulator = start_emulator(settings, log_path=Path(tmp) / "emulator.log")
        try:
            base_url = f"{settings.emulator_url}/runway"
            ids = asyncio.run(create_tasks(base_url, args.tasks))
            results: dict[str, list[Result]] = {name: [] for name in TRANSPORTS}
            for _ in range(args.rounds):
                for name, make in TRANSPORTS.items():
                    run = measure(base_url, make(), ids, args.loops, args.seconds)
                    results[name].append(asyncio.run(run))
        finally:
            emulator.stop()
    print(
        f"{args.loops} poll loops on {API_CONNECTIONS} connections, {args.tasks} tasks, "
        f"{args.seconds:.0f} s a round, {args.rounds} rounds each (alternating)\n"
    )
    header = ["transport", "polls/s", "client CPU ms/poll", "p50/p99 ms"]
    rows = []
    for name, runs in results.items():
        for result in runs:
            rows.append(
                [
                    name,
                    f"{result.polls / result.wall_seconds:.0f}",
                    f"{1000 * result.cpu_seconds / max(result.polls, 1):.2f}",
                    f"{quantile_ms(result.latencies, 0.5):.0f} / "
                    f"{quantile_ms(result.latencies, 0.99):.0f}",
                ]
            )
    print(table(header, rows))


if __name__ == "__main__":
    main()
