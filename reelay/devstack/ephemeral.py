"""A throwaway stack on free ports, for benchmarks and tools that need real servers outside
the test fixtures (`bench/`, `tests/histories/record.py`)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import SecretStr

from reelay.devstack.apps import start_api, start_emulator, start_worker
from reelay.devstack.ports import free_port, split_host_port
from reelay.devstack.process import ManagedProcess
from reelay.devstack.s3 import start_seaweed
from reelay.devstack.temporal import start_temporal
from reelay.settings import Settings, generated_dev_key


def ephemeral_settings(root: Path, **overrides: Any) -> Settings:
    """Settings of a stack on free ports with its data under `root`; `overrides` win."""
    api_port = free_port()
    values: dict[str, Any] = {
        "temporal_address": f"127.0.0.1:{free_port()}",
        "s3_endpoint": f"127.0.0.1:{free_port(with_grpc=True)}",
        "s3_secret_key": SecretStr(generated_dev_key()),
        "emulator_port": free_port(),
        "emulator_data_dir": root / "emulator",
        "data_dir": root / "data",  # the ledger store: the stack's own, gone with it
        "emulator_render_scale": 8,
        "api_port": api_port,
        "public_url": f"http://127.0.0.1:{api_port}",
        **overrides,
    }
    return Settings(_env_file=None, **values)


@contextmanager
def ephemeral_stack(root: Path, *, app: bool = True, **overrides: Any) -> Iterator[Settings]:
    """Temporal (in memory), SeaweedFS and the emulator, plus a worker and the API when `app`,
    on free ports under `root`; yields its settings and stops everything afterwards."""
    settings = ephemeral_settings(root, **overrides)
    logs = root / "logs"
    _, temporal_port = split_host_port(settings.temporal_address)
    _, s3_port = split_host_port(settings.s3_endpoint)
    starts: list[Callable[[], ManagedProcess]] = [
        lambda: start_temporal(port=temporal_port, log_path=logs / "temporal.log"),
        lambda: start_seaweed(
            data_dir=root / "s3",
            port=s3_port,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            bucket=settings.s3_bucket,
            log_path=logs / "s3.log",
        ),
        lambda: start_emulator(settings, log_path=logs / "emulator.log"),
    ]
    if app:
        starts += [
            lambda: start_worker(settings, log_path=logs / "worker.log"),
            lambda: start_api(settings, log_path=logs / "api.log"),
        ]
    with ExitStack() as stack:
        _unwind_on_stop_signals(stack)
        for start in starts:
            stack.callback(start().stop)
        yield settings


#: What stops a tool that holds an ephemeral stack: Ctrl-C, `kill`, `timeout`, a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    for sig in STOP_SIGNALS:  # a second signal must not cut the stopping short
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _unwind_on_stop_signals(stack: ExitStack) -> None:
    """Until `stack` is closed, any stop signal unwinds the tool as Ctrl-C does, once: the
    stack's processes run in sessions of their own, so nothing else would stop them, and the
    signals that follow are ignored until every process is stopped. Signals belong to the main
    thread: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    stack.callback(restore)
