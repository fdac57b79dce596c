"""A throwaway local stack for the benchmarks: every part on free ports in a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

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
    """Temporal, SeaweedFS, the emulator, a worker and the API; yields their settings."""
    logs = root / "logs"
    api_port = devstack.free_port()
    s3_port = devstack.free_port(with_grpc=True)
    values: dict[str, Any] = {
        "temporal_address": f"127.0.0.1:{devstack.free_port()}",
        "s3_endpoint": f"127.0.0.1:{s3_port}",
        "s3_access_key": "bench",
        "s3_secret_key": SecretStr("bench-secret-key"),
        "emulator_port": devstack.free_port(),
        "emulator_data_dir": root / "emulator",
        "emulator_render_scale": 8,
        "api_port": api_port,
        "public_url": f"http://127.0.0.1:{api_port}",
        "dev_api_key": "",
        "tenants_file": hot_tenant(root),
        "tenant_queue_cap": 100_000,
        "poll_min_seconds": 0.5,
        "poll_max_seconds": 2.0,
        **overrides,
    }
    settings = Settings(_env_file=None, **values)
    _, temporal_port = devstack.split_host_port(settings.temporal_address)
    with ExitStack() as stack:
        for start in (
            lambda: devstack.start_temporal(port=temporal_port, log_path=logs / "temporal.log"),
            lambda: devstack.start_seaweed(
                data_dir=root / "s3",
                port=s3_port,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key.get_secret_value(),
                bucket=settings.s3_bucket,
                log_path=logs / "s3.log",
            ),
            lambda: devstack.start_emulator(settings, log_path=logs / "emulator.log"),
            lambda: devstack.start_worker(settings, log_path=logs / "worker.log"),
            lambda: devstack.start_api(settings, log_path=logs / "api.log"),
        ):
            stack.callback(start().stop)
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
