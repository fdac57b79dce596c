"""Bounded waits: poll a condition until it holds, the watched process dies, or time runs out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from reelay.devstack.ports import port_is_open
from reelay.devstack.process import ManagedProcess, StackError, StackTimeout

T = TypeVar("T")


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


def started(proc: ManagedProcess, wait: Callable[[ManagedProcess], None]) -> ManagedProcess:
    """`proc` started and waited on with `wait` (until healthy); stopped if the wait fails."""
    proc.start()
    try:
        wait(proc)
    except BaseException:
        proc.stop()
        raise
    return proc


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
