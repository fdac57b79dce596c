"""Jobs in flight: hold 500 / 2,000 (/ 10,000) jobs that the provider takes long to make,
and at each level print the worker's, the API's and Temporal's RSS, POST and GET latency
measured while there, and the provider polls per second the system sustains vs needs.

`python -m bench.capacity [--levels 500 2000] [--with-10k] [--window 60] [--fill-seconds 900]
[--gets 120] [--posts 30]`

The first row is the idle stack (the baseline). Jobs are filled through a second API with
limits off (the hot tenant, fastest to admit) until the provider has them all (the fill
time includes the worker submitting them); while at a level, three clients probe at once
for `--window` seconds, their requests spread evenly over it: POST with credits and limits
on (the metered tenant), POST with limits off, and GET of a random job in flight. Polls are
counted at the emulator (its access log); a job needs at least one poll per
`poll_max_seconds` (the product default). RSS is VmRSS of the processes the stack started
(each one's process group). Each level is bounded: filling stops after `--fill-seconds`,
probing after `--window`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.stack import (
    BENCH_KEY,
    METERED_KEY,
    MODEL,
    SECONDS,
    Batch,
    StackProcess,
    mib,
    own_stack,
    quantile_ms,
    second_api,
    stack_processes,
    table,
    timed_many,
)
from reelay import devstack
from reelay.settings import Settings

FILL_CONCURRENCY = 32
ROLES = ("worker", "api", "temporal")
POLL_LINE = b'"GET /runway/v1/tasks/'
DEFAULT_POLL_MIN = float(Settings.model_fields["poll_min_seconds"].default)
DEFAULT_POLL_MAX = float(Settings.model_fields["poll_max_seconds"].default)


def job_body(n: int) -> dict[str, Any]:
    return {
        "prompt": f"capacity bench {n}",
        "model": MODEL,
        "duration_seconds": SECONDS,
        "resolution": "720p",
        "aspect_ratio": "16:9",
    }


def _job_id(response: httpx.Response) -> str:
    response.raise_for_status()
    return str(response.json()["id"])


@dataclass
class Level:
    name: str
    submitted: int
    accepted: str
    fill_seconds: float
    level_seconds: float
    rss: dict[str, int]
    cpu: dict[str, float]
    post_on: Batch
    post_off: Batch
    gets: Batch
    polls_per_second: float
    polls_needed: float


class Capacity:
    def __init__(
        self, settings: Settings, root: Path, limits_off: str, window: float, gets: int, posts: int
    ) -> None:
        self.settings = settings
        self.api = devstack.api_base_url(settings)
        self.limits_off = limits_off
        self.window = window
        self.gets = gets
        self.posts = posts
        self.emulator_log = root / "logs" / "emulator.log"
        self.ids: list[str] = []  # the hot tenant's jobs (the ones GET reads)
        self.metered = 0  # the metered tenant's jobs (POST with limits on)
        self.counter = 0
        self._log_offset = 0
        self._polls = 0
        found = stack_processes()
        # The stack's own API (limits on) is the older of the two; a role not found is "?".
        self.processes: dict[str, StackProcess] = {
            role: found[role][0] for role in ROLES if found.get(role)
        }

    def _client(self, base_url: str, key: str, concurrency: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=concurrency),
        )

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    async def fill(self, level: int, seconds: float) -> float:
        """Submit (limits off) until `level` jobs were admitted, then wait until the provider
        has them all (the worker submits them); both within `seconds`. Returns the time taken."""
        began = time.monotonic()
        missing = level - len(self.ids) - self.metered
        if missing <= 0:
            return 0.0
        async with self._client(self.limits_off, BENCH_KEY, FILL_CONCURRENCY) as http:
            batch = await timed_many(
                lambda _: http.post("/v1/video/generations", json=job_body(self._next())),
                missing,
                FILL_CONCURRENCY,
                seconds,
            )
        self.ids += [
            str(r.json()["id"])
            for r in batch.results
            if isinstance(r, httpx.Response) and r.status_code == 202
        ]
        while time.monotonic() - began < seconds:
            accepted = await self._accepted()
            if not accepted.isdigit() or int(accepted) >= len(self.ids) + self.metered:
                break
            await asyncio.sleep(1.0)
        return time.monotonic() - began

    def _polls_so_far(self) -> int:
        """Provider polls in the emulator's access log so far (read on from the last call)."""
        try:
            with open(self.emulator_log, "rb") as log:
                log.seek(self._log_offset)
                for line in log:
                    if not line.endswith(b"\n"):
                        break  # half-written: counted next time
                    self._log_offset += len(line)
                    self._polls += line.count(POLL_LINE)
        except OSError:
            pass
        return self._polls

    async def _accepted(self) -> str:
        """Tasks the emulator accepted (the jobs really at the provider), if it says."""
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                stats = (await http.get(f"{self.settings.emulator_url}/_emulator/stats")).json()
            return str(stats["accepted"].get("runway", 0))
        except (httpx.HTTPError, KeyError, ValueError):
            return "?"

    async def probe(self) -> tuple[Batch, Batch, Batch]:
        """POST limits on, POST limits off and GET, three clients at once, each one request
        at a time, spread evenly over the window (so they sample the whole level, not the
        half-second after its fill): `posts` of each POST (each one a job more in flight, so
        fewer) and `gets` GETs."""
        async with (
            self._client(self.api, METERED_KEY, 1) as on,
            self._client(self.limits_off, BENCH_KEY, 1) as off,
            self._client(self.api, BENCH_KEY, 1) as reader,
        ):

            async def post_on(_: int) -> str:
                return _job_id(await on.post("/v1/video/generations", json=job_body(self._next())))

            async def post_off(_: int) -> str:
                return _job_id(await off.post("/v1/video/generations", json=job_body(self._next())))

            if not self.ids:  # a job to GET when idle
                self.ids.append(await post_off(0))
            pool = list(self.ids)

            async def get(_: int) -> None:
                job_id = random.choice(pool)
                (await reader.get(f"/v1/video/generations/{job_id}")).raise_for_status()

            post_every, get_every = self.window / self.posts, self.window / self.gets
            results = await asyncio.gather(
                timed_many(post_on, self.posts, 1, self.window, post_every),
                timed_many(post_off, self.posts, 1, self.window, post_every),
                timed_many(get, self.gets, 1, self.window, get_every),
            )
        self.metered += sum(isinstance(r, str) for r in results[0].results)
        self.ids += [r for r in results[1].results if isinstance(r, str)]
        return results[0], results[1], results[2]

    async def level(self, name: str, level: int, fill_seconds: float) -> Level:
        began = time.monotonic()
        filled = await self.fill(level, fill_seconds)
        cpu_before = {role: p.cpu_seconds() for role, p in self.processes.items()}
        polls_before, window_began = self._polls_so_far(), time.monotonic()
        post_on, post_off, gets = await self.probe()
        rest = self.window - (time.monotonic() - window_began)
        if rest > 0:
            await asyncio.sleep(rest)  # polls are counted over the whole window
        window = time.monotonic() - window_began
        polls = self._polls_so_far() - polls_before
        accepted = await self._accepted()
        submitted = len(self.ids) + self.metered
        in_flight = int(accepted) if accepted.isdigit() else submitted
        return Level(
            name=name,
            submitted=submitted,
            accepted=accepted,
            fill_seconds=filled,
            level_seconds=time.monotonic() - began,
            rss={role: p.rss_bytes() for role, p in self.processes.items()},
            cpu={
                role: (p.cpu_seconds() - cpu_before[role]) / window
                for role, p in self.processes.items()
            },
            post_on=post_on,
            post_off=post_off,
            gets=gets,
            polls_per_second=polls / window,
            polls_needed=in_flight / DEFAULT_POLL_MAX,
        )


def _p50_p99(batch: Batch) -> str:
    ok = batch.ok()
    text = f"{quantile_ms(ok, 0.5):.0f} / {quantile_ms(ok, 0.99):.0f}" if ok else "-"
    text += f" n={len(batch.results)}"
    return text + (f" ({failures})" if (failures := batch.failures()) else "")


def _get_p50(batch: Batch) -> float | None:
    ok = batch.ok()
    return quantile_ms(ok, 0.5) if ok else None


def report(levels: list[Level]) -> None:
    header = [
        "in flight",
        "submitted / at provider",
        "fill s / level s",
        "worker RSS",
        "API RSS",
        "Temporal RSS",
        "CPU s/s worker/api/temporal",
        "POST on p50/p99 ms",
        "POST off p50/p99 ms",
        "GET p50/p99 ms",
        "GET p50 vs idle",
        "polls/s got / needed",
    ]
    idle = _get_p50(levels[0].gets)
    rows = []
    for lv in levels:
        get_p50 = _get_p50(lv.gets)
        rows.append(
            [
                lv.name,
                f"{lv.submitted} / {lv.accepted}",
                f"{lv.fill_seconds:.0f} / {lv.level_seconds:.0f}",
                *(mib(lv.rss[r]) if r in lv.rss else "?" for r in ROLES),
                "/".join(f"{lv.cpu[r]:.2f}" if r in lv.cpu else "?" for r in ROLES),
                _p50_p99(lv.post_on),
                _p50_p99(lv.post_off),
                _p50_p99(lv.gets),
                "-" if get_p50 is None or not idle else f"{get_p50 / idle:.1f}x",
                f"{lv.polls_per_second:.1f} / {lv.polls_needed:.1f}",
            ]
        )
    print(
        f"\nCapacity: jobs in flight (polls every {DEFAULT_POLL_MIN:g}-{DEFAULT_POLL_MAX:g} s, "
        "the product default); probes at c=1 each, at the same time"
    )
    print(table(header, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--with-10k", action="store_true", help="add the 10,000 level (long)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds probed per level")
    parser.add_argument("--gets", type=int, default=120, help="GETs per level, over the window")
    parser.add_argument(
        "--posts", type=int, default=30, help="POSTs per level and POST probe, over the window"
    )
    parser.add_argument("--fill-seconds", type=float, default=900.0, help="fill bound per level")
    parser.add_argument(
        "--generation-seconds", type=float, default=3600.0, help="the emulator's (stay in flight)"
    )
    args = parser.parse_args()
    wanted = sorted(set(args.levels + ([10_000] if args.with_10k else [])))
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp:
        root = Path(tmp)
        with (
            own_stack(
                root,
                emulator_generation_seconds=args.generation_seconds,
                poll_min_seconds=DEFAULT_POLL_MIN,
                poll_max_seconds=DEFAULT_POLL_MAX,
            ) as settings,
            second_api(settings, root, limits_enabled=False) as limits_off,
        ):
            bench = Capacity(settings, root, limits_off, args.window, args.gets, args.posts)
            levels = []
            for name, level in [("idle (baseline)", 0), *((f"{n:,}", n) for n in wanted)]:
                print(f"level {name} ...", flush=True)
                levels.append(asyncio.run(bench.level(name, level, args.fill_seconds)))
                print(f"  done in {levels[-1].level_seconds:.0f} s", flush=True)
                if len(levels) < len(wanted) + 1:  # the table so far, in case a later level stalls
                    report(levels)
    report(levels)
    print(f"\ntook {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
