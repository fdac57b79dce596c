"""One hot tenant submitting as fast as it can at concurrency 32 and 128: admitted submits
per second and POST latency with credits and limits on (the way every tenant runs), beside
the same with limits off (a second API on the same stack with `limits_enabled=False`).

`python -m bench.admission [--jobs 300] [--concurrency 32 128]`

Jobs stay in flight and are polled rarely (`QUIET_IN_FLIGHT`), so admission is measured on
its own; each run stops after `--jobs` submits or `--seconds`, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
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
    parser.add_argument("--jobs", type=int, default=300, help="submits per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--seconds", type=float, default=300.0, help="time bound per run")
    args = parser.parse_args()
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp:
        root = Path(tmp)
        with (
            own_stack(root, **QUIET_IN_FLIGHT) as settings,
            second_api(settings, root, limits_enabled=False) as limits_off,
        ):
            limits_on = devstack.api_base_url(settings)
            for c in args.concurrency:
                print(f"c={c}: limits on, then off ...", flush=True)
                on = asyncio.run(hammer(limits_on, args.jobs, c, args.seconds))
                off = asyncio.run(hammer(limits_off, args.jobs, c, args.seconds))
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
    print(f"\nAdmission: {args.jobs} submits per run")
    print(table(header, rows))


if __name__ == "__main__":
    main()
