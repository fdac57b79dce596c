"""Reelay's own processes: the provider emulator, the worker and the API, each waited on until
it really serves."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from reelay.devstack.env import settings_env
from reelay.devstack.ports import connect_host
from reelay.devstack.process import ManagedProcess
from reelay.devstack.temporal import wait_for_task_queue_poller
from reelay.devstack.waits import started, wait_for_http
from reelay.settings import Settings

#: The module `python -m` runs as the provider emulator.
EMULATOR_MODULE = "emulator"
#: The checkout's root: the emulator is not installed (not in the wheel) and runs from here.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
#: `worker.py` of this checkout (run as a script; `-m worker` when installed as a module).
WORKER_SCRIPT = SOURCE_ROOT / "worker.py"


def python_process(
    name: str,
    args: Sequence[str],
    settings: Settings,
    log_path: Path,
    env: Mapping[str, str] | None,
) -> ManagedProcess:
    """`python <args>` (this interpreter) with `settings` in its env, not yet started."""
    base = os.environ if env is None else env
    full_env = {**base, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
    return ManagedProcess(name, [sys.executable, *args], log_path=log_path, env=full_env)


def emulator_process(
    settings: Settings, *, log_path: Path, env: Mapping[str, str] | None = None
) -> ManagedProcess:
    source = {"PYTHONPATH": str(SOURCE_ROOT)}
    return python_process(
        "emulator", ["-m", EMULATOR_MODULE], settings, log_path, {**(env or os.environ), **source}
    )


def worker_process(
    settings: Settings, *, log_path: Path, env: Mapping[str, str] | None = None
) -> ManagedProcess:
    args = [str(WORKER_SCRIPT)] if WORKER_SCRIPT.is_file() else ["-m", "worker"]
    return python_process("worker", args, settings, log_path, env)


def api_process(
    settings: Settings, *, log_path: Path, env: Mapping[str, str] | None = None
) -> ManagedProcess:
    return python_process("api", ["-m", "api"], settings, log_path, env)


def api_base_url(settings: Settings) -> str:
    return f"http://{connect_host(settings.api_host)}:{settings.api_port}"


def wait_emulator_healthy(
    settings: Settings, proc: ManagedProcess | None = None, *, timeout: float = 60.0
) -> None:
    """Until the emulator answers GET /healthz."""
    url = f"http://{connect_host(settings.emulator_host)}:{settings.emulator_port}/healthz"
    wait_for_http(url, timeout=timeout, process=proc)


def wait_worker_healthy(
    settings: Settings, proc: ManagedProcess | None = None, *, timeout: float = 60.0
) -> None:
    """Until a worker polls `settings.task_queue`."""
    wait_for_task_queue_poller(
        settings.temporal_address,
        settings.temporal_namespace,
        settings.task_queue,
        timeout=timeout,
        process=proc,
    )


def wait_api_healthy(
    settings: Settings, proc: ManagedProcess | None = None, *, timeout: float = 60.0
) -> None:
    """Until the API answers /healthz (process up) and /readyz (Temporal and S3 reachable)."""
    base = api_base_url(settings)
    wait_for_http(f"{base}/healthz", timeout=timeout, process=proc)
    wait_for_http(f"{base}/readyz", timeout=timeout, process=proc)


def start_emulator(
    settings: Settings,
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """`python -m <EMULATOR_MODULE>` configured by `settings`; waits for GET /healthz."""
    return started(
        emulator_process(settings, log_path=log_path, env=env),
        lambda proc: wait_emulator_healthy(settings, proc, timeout=timeout),
    )


def start_worker(
    settings: Settings,
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """`python worker.py`; waits until it polls `settings.task_queue`."""
    return started(
        worker_process(settings, log_path=log_path, env=env),
        lambda proc: wait_worker_healthy(settings, proc, timeout=timeout),
    )


def start_api(
    settings: Settings,
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """`python -m api`; waits for /healthz and /readyz."""
    return started(
        api_process(settings, log_path=log_path, env=env),
        lambda proc: wait_api_healthy(settings, proc, timeout=timeout),
    )
