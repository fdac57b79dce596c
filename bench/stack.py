"""The benchmarks' stack (`devstack.ephemeral_stack` with a tenant that is never limited)
and how they print latencies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reelay import devstack
from reelay.settings import Settings
from reelay.tenants import hash_key

BENCH_KEY = "rl_bench_key"


def hot_tenant(root: Path) -> Path:
    """A tenants file with one tenant whose limits and balance never get in the way."""
    path = root / "tenants.toml"
    path.write_text(
        "[[tenants]]\n"
        'id = "hot"\n'
        'tier = "enterprise"\n'
        "concurrent_jobs = 10000\n"
        "jobs_per_day = 1000000\n"
        "opening_balance_usd = 1000000.0\n"
        f'key_hashes = ["{hash_key(BENCH_KEY)}"]\n'
    )
    return path


@contextmanager
def own_stack(root: Path, **overrides: Any) -> Iterator[Settings]:
    """The whole stack, with one tenant (`BENCH_KEY`) whose limits never get in the way."""
    values: dict[str, Any] = {
        "dev_api_key": "",
        "tenants_file": hot_tenant(root),
        "tenant_queue_cap": 100_000,
        "poll_min_seconds": 0.5,
        "poll_max_seconds": 2.0,
        **overrides,
    }
    with devstack.ephemeral_stack(root, **values) as settings:
        yield settings


def percentiles(samples: list[float]) -> str:
    """p50/p90/p99/max of durations in seconds, printed in milliseconds."""
    if not samples:
        return "no samples"
    ms = sorted(s * 1000 for s in samples)

    def at(q: float) -> float:
        return ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]

    return (
        f"p50 {at(0.5):7.1f} ms  p90 {at(0.9):7.1f} ms  "
        f"p99 {at(0.99):7.1f} ms  max {ms[-1]:7.1f} ms"
    )
