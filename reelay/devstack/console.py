"""`make up` (`python -m reelay.devstack up`): the whole local stack in the foreground.

Starts, in this order, the Temporal dev server (with the Web UI), SeaweedFS (S3), the provider
emulator, the worker and the API; waits until each one is really healthy; prints where
everything is; restarts any part that dies (with back-off, the others keep running); and on
Ctrl-C (SIGINT, SIGTERM or SIGHUP) stops them in reverse order. State
lives under `settings.data_dir`, so a restart keeps every job and every stored video.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from reelay.devstack.apps import (
    api_base_url,
    api_process,
    emulator_process,
    wait_api_healthy,
    wait_emulator_healthy,
    wait_worker_healthy,
    worker_process,
)
from reelay.devstack.env import child_env
from reelay.devstack.ports import (
    GRPC_PORT_OFFSET,
    bind_host,
    connect_host,
    port_is_free,
    port_is_open,
    split_host_port,
)
from reelay.devstack.process import ManagedProcess, StackError
from reelay.devstack.s3 import S3Endpoint, seaweed_process, wait_bucket_ready
from reelay.devstack.supervise import Part, Supervisor
from reelay.devstack.temporal import temporal_process, wait_temporal_ready
from reelay.settings import Settings, generated_dev_key, get_settings

#: Printed (on a line of its own) once every process of `up` is healthy.
READY_MARKER = "Reelay dev stack is ready"
#: Names of the processes of `up`, in start order (also the log file names).
STACK_ORDER = ("temporal", "s3", "emulator", "worker", "api")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# --- settings and keys ----------------------------------------------------------------------


def load_or_create_dev_key(path: Path) -> str:
    """The dev API key stored at `path`, generated (and stored, mode 0600) on first use."""
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return key
    key = generated_dev_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


def stack_settings(settings: Settings) -> Settings:
    """`settings` as the stack runs it: absolute data dir, a dev key, emulator data in data_dir."""
    data_dir = settings.data_dir.resolve()
    update: dict[str, Any] = {"data_dir": data_dir}
    if not settings.dev_api_key:
        update["dev_api_key"] = load_or_create_dev_key(data_dir / "dev_api_key")
    if "emulator_data_dir" not in settings.model_fields_set:
        update["emulator_data_dir"] = data_dir / "emulator"
    if not settings.admin_api_key.get_secret_value():
        update["admin_api_key"] = SecretStr(load_or_create_dev_key(data_dir / "admin_api_key"))
    if not settings.webhook_allow_hosts:
        # The local stack delivers webhooks to receivers on this machine, over plain http.
        update["webhook_allow_hosts"] = ["127.0.0.1", "localhost", "::1"]
    return settings.model_copy(update=update)


def busy_ports(settings: Settings) -> list[str]:
    """The ports `up` needs that something else already listens on, with their setting."""
    temporal_host, temporal_port = split_host_port(settings.temporal_address)
    s3_host, s3_port = split_host_port(settings.s3_endpoint)
    wanted = [
        ("REELAY_TEMPORAL_ADDRESS", temporal_host, temporal_port),
        ("REELAY_TEMPORAL_UI_PORT", temporal_host, settings.temporal_ui_port),
        ("REELAY_S3_ENDPOINT", s3_host, s3_port),
        ("REELAY_S3_ENDPOINT (+10000: S3 gRPC)", s3_host, s3_port + GRPC_PORT_OFFSET),
        ("REELAY_EMULATOR_PORT", settings.emulator_host, settings.emulator_port),
        ("REELAY_API_PORT", settings.api_host, settings.api_port),
    ]
    return [
        f"{port} ({setting})"
        for setting, host, port in wanted
        if port_is_open(host, port) or not port_is_free(port, bind_host(host))
    ]


# --- the parts ------------------------------------------------------------------------------


def stack_parts(settings: Settings, *, timeout: float) -> list[Part]:
    """The processes of `up`, in start order (names as in `STACK_ORDER`)."""
    data_dir = settings.data_dir
    logs = data_dir / "logs"
    env = child_env(settings)
    temporal_host, temporal_port = split_host_port(settings.temporal_address)
    s3_host, s3_port = split_host_port(settings.s3_endpoint)
    s3 = S3Endpoint(
        f"{connect_host(s3_host)}:{s3_port}",
        settings.s3_access_key,
        settings.s3_secret_key.get_secret_value(),
        settings.s3_bucket,
        settings.s3_region,
    )
    return [
        Part(
            "temporal",
            "Temporal dev server",
            lambda: temporal_process(
                port=temporal_port,
                host=temporal_host,
                db_file=data_dir / "temporal.db",
                ui_port=settings.temporal_ui_port,
                namespace=settings.temporal_namespace,
                log_path=logs / "temporal.log",
                env=env,
            ),
            lambda proc: wait_temporal_ready(
                proc,
                port=temporal_port,
                host=temporal_host,
                ui_port=settings.temporal_ui_port,
                namespace=settings.temporal_namespace,
                timeout=timeout,
            ),
        ),
        Part(
            "s3",
            "SeaweedFS (S3)",
            lambda: seaweed_process(
                data_dir=data_dir / "s3",
                port=s3_port,
                host=s3_host,
                access_key=s3.access_key,
                secret_key=s3.secret_key,
                bucket=s3.bucket,
                log_path=logs / "s3.log",
                env=env,
            ),
            lambda proc: wait_bucket_ready(proc, s3, timeout=timeout),
        ),
        Part(
            "emulator",
            "provider emulator",
            lambda: emulator_process(settings, log_path=logs / "emulator.log", env=env),
            lambda proc: wait_emulator_healthy(settings, proc, timeout=timeout),
        ),
        Part(
            "worker",
            "worker",
            lambda: worker_process(settings, log_path=logs / "worker.log", env=env),
            lambda proc: wait_worker_healthy(settings, proc, timeout=timeout),
        ),
        Part(
            "api",
            "API",
            lambda: api_process(settings, log_path=logs / "api.log", env=env),
            lambda proc: wait_api_healthy(settings, proc, timeout=timeout),
        ),
    ]


# --- the console ----------------------------------------------------------------------------


def _ready_table(settings: Settings) -> Table:
    api = api_base_url(settings)
    temporal_host, _ = split_host_port(settings.temporal_address)
    ui = f"http://{connect_host(temporal_host)}:{settings.temporal_ui_port}"
    s3_host, s3_port = split_host_port(settings.s3_endpoint)
    scheme = "https" if settings.s3_secure else "http"
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("API", api)
    table.add_row("API docs", f"{api}/docs")
    table.add_row("Temporal Web UI", ui)
    table.add_row(
        "Temporal",
        f"{settings.temporal_address}  namespace {settings.temporal_namespace}, "
        f"task queue {settings.task_queue}",
    )
    table.add_row(
        "S3 (SeaweedFS)",
        f"{scheme}://{connect_host(s3_host)}:{s3_port}  bucket {settings.s3_bucket}, "
        f"access key {settings.s3_access_key}",
    )
    table.add_row("Provider emulator", settings.emulator_url)
    table.add_row("Dev API key", settings.dev_api_key)
    table.add_row("Admin API key", settings.admin_api_key.get_secret_value())
    table.add_row("Data", str(settings.data_dir))
    table.add_row("Logs", f"{settings.data_dir / 'logs'}/{{{','.join(STACK_ORDER)}}}.log")
    return table


def _curl_example(settings: Settings) -> str:
    api = api_base_url(settings)
    auth = f'-H "Authorization: Bearer {settings.dev_api_key}"'
    body = '{"prompt": "A red fox trotting through fresh snow", "model": "runway-gen3"}'
    return (
        f"curl -s {api}/v1/video/generations {auth} \\\n"
        f"  -H 'Content-Type: application/json' -d '{body}'\n"
        f"curl -s {api}/v1/video/generations/<id> {auth}"
    )


def _print_ready(console: Console, settings: Settings) -> None:
    console.print(f"\n[bold green]{READY_MARKER}[/]")
    console.print(_ready_table(settings))
    console.print("\nTry it:\n" + _curl_example(settings), soft_wrap=True)
    console.print("\nPress Ctrl-C to stop everything.")


# --- running and stopping -------------------------------------------------------------------


class _Interrupted(BaseException):
    """Raised from the signal handler: unwinds whatever `up` is doing, then everything stops."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(signum)


@contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """While inside, a stop signal raises `_Interrupted` in the main thread."""
    previous = {sig: signal.signal(sig, _on_signal) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start_all(supervisor: Supervisor, console: Console) -> None:
    for part in supervisor.parts:
        began = time.monotonic()
        with console.status(f"starting {part.label} ..."):
            proc = supervisor.start(part)
        took = time.monotonic() - began
        console.print(f"  [green]✓[/] {part.label} [dim](pid {proc.pid}, {took:.1f}s)[/]")


def _announce(console: Console) -> Callable[[str], None]:
    """How the supervisor's restart lines reach the console (from its watcher threads)."""

    def announce(line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        console.print(f"{stamp} {line}", style="yellow", markup=False, soft_wrap=True)

    return announce


def _stop_all(procs: list[ManagedProcess], console: Console) -> None:
    """Stop `procs` in this order; a second stop signal kills whatever is left at once."""
    remaining = list(procs)
    try:
        while remaining:
            proc = remaining[0]
            proc.stop()
            console.print(f"  stopped {proc.name}")
            remaining.pop(0)
    except _Interrupted:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        console.print("  killing the rest")
        for proc in remaining:
            proc.kill()


def run_stack(settings: Settings, *, startup_timeout: float = 120.0) -> int:
    """Run the whole local stack in the foreground until a stop signal; returns the exit code.

    0 after a stop signal (Ctrl-C, SIGTERM, SIGHUP); 1 if a process fails its first start.
    Once everything is up, a part that dies is restarted (`supervise.Supervisor`).
    """
    console = Console(highlight=False)
    settings = stack_settings(settings)
    busy = busy_ports(settings)
    if busy:
        console.print(
            f"[bold red]error:[/] already in use: {', '.join(busy)}. Is another stack running? "
            "Stop it, or choose other ports with those REELAY_* variables.",
            soft_wrap=True,
        )
        return 1
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(
        stack_parts(settings, timeout=startup_timeout), announce=_announce(console)
    )
    code = 0
    with _stop_signals_interrupt():
        try:
            console.print(
                f"Starting the Reelay dev stack (data in {settings.data_dir}, logs in {log_dir})"
            )
            _start_all(supervisor, console)
            _print_ready(console, settings)
            supervisor.watch()
            while True:
                signal.pause()
        except _Interrupted:
            console.print("\nStopping ...")
        except StackError as exc:
            code = 1
            console.print(f"\n[bold red]error:[/] {exc}", soft_wrap=True, markup=False)
            console.print("Stopping ...")
        _stop_all(supervisor.halt(), console)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reelay.devstack", description="Reelay's local dev stack."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "up",
        help="run Temporal, SeaweedFS, the emulator, the worker and the API until Ctrl-C "
        "(configured by REELAY_* env vars)",
    )
    parser.parse_args(argv)
    return run_stack(get_settings())
