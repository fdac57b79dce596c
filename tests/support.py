"""Helpers shared by the tests (no fixtures here: see tests/conftest.py for what every test
may use and tests/integration/conftest.py for the servers and the `make_stack` factory)."""

from __future__ import annotations

import asyncio
import http.server
import os
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.polling import show_position
from api import jobs
from providers.catalog import resolve_request
from reelay import devstack
from reelay.jobs import JobSpec, JobStatus, JobView
from reelay.settings import Settings
from reelay.temporal import connect
from reelay.tenants import DEFAULT_TIERS, Tenant
from tests.conftest import clean_env
from worker import serving
from workflows import search_attributes
from workflows.video_generation import VideoGenerationWorkflow

T = TypeVar("T")
TENANT = Tenant(id="tenant-a", tier="pro", limits=DEFAULT_TIERS["pro"])


async def wait_until(
    check: Callable[[], Awaitable[T]], *, within: float = 60.0, interval: float = 0.1
) -> T:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s (last value {value!r})")
        await asyncio.sleep(interval)


#: How early the roll-over server suggests continuing as new (events in a run's history).
SUGGEST_CONTINUE_AS_NEW_AFTER_EVENTS = 40


@asynccontextmanager
async def rolling_over(settings: Settings) -> AsyncIterator[Settings]:
    """`settings` on a dev server of its own that suggests continue-as-new after
    `SUGGEST_CONTINUE_AS_NEW_AFTER_EVENTS` events, so a long job's history rolls over."""
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=devstack.binary("temporal"),
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AFTER_EVENTS}",
        ],
        search_attributes=search_attributes.ALL,
    ) as env:
        address = env.client.service_client.config.target_host
        yield settings.model_copy(update={"temporal_address": address})


async def started(handle: WorkflowHandle[Any, Any], within: float = 30.0) -> None:
    """Wait until the workflow exists: the API starts a job's workflow just after its 202."""

    async def exists() -> bool:
        try:
            await handle.describe()
        except RPCError:
            return False
        return True

    await wait_until(exists, within=within)


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def unique_prompt(text: str = "a lighthouse at dusk") -> str:
    return f"{text} #{uuid.uuid4().hex[:10]}"


def job_spec(settings: Settings, prompt: str, **request: Any) -> JobSpec:
    resolved = resolve_request(prompt=prompt, **request)
    return jobs.build_spec(
        resolved, TENANT, settings, job_id=jobs.new_job_id(), request_id=jobs.new_request_id()
    )


async def start(client: Client, settings: Settings, spec: JobSpec) -> WorkflowHandle:
    await jobs.start_job(client, settings, spec)
    return client.get_workflow_handle_for(VideoGenerationWorkflow.run, spec.job_id)


async def view_of(handle: WorkflowHandle) -> JobView:
    return await handle.query(VideoGenerationWorkflow.view)


async def status_is(handle: WorkflowHandle, *statuses: JobStatus) -> bool:
    return (await view_of(handle)).status in statuses


async def is_storing(handle: WorkflowHandle) -> bool:
    """The job is storing its video, as the API reads it: its store step, or (since
    `store-in-poll`) its poll loop storing the video of the task it saw succeed."""
    view = await view_of(handle)
    if view.status is JobStatus.PROCESSING:
        description = await handle.describe()
        show_position(
            view,
            await jobs.poll_loop_position(
                description.raw_description.pending_activities, description.data_converter
            ),
        )
    return view.status is JobStatus.STORING


@asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[Client]:
    """An in-process worker on the settings' task queue; yields its client."""
    client = await connect(settings)
    async with serving(client, settings):
        yield client


@contextmanager
def serving_app(app: FastAPI, port: int, **config: Any) -> Iterator[str]:
    """`app` served by uvicorn in a thread of this process on `port` (`config`: more of
    `uvicorn.Config`): its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, **{"log_level": "warning", **config})
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "API did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def all_emulator_submissions(
    settings: Settings, *, provider: str = "runway"
) -> list[dict[str, Any]]:
    """Every task the emulator accepted for `provider` (its own record)."""
    async with httpx.AsyncClient(base_url=settings.emulator_url) as http:
        response = await http.get("/_emulator/submissions", params={"provider": provider})
        response.raise_for_status()
        submissions: list[dict[str, Any]] = response.json()
        return submissions


async def emulator_submissions(
    settings: Settings, prompt: str, *, provider: str = "runway"
) -> list[dict[str, Any]]:
    submissions = await all_emulator_submissions(settings, provider=provider)
    return [s for s in submissions if s["prompt"] == prompt]


@dataclass
class Reply:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_length: bool = True


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class Receiver:
    """A loopback HTTP server answering from a script of replies (then `default`).

    Records every request. `delay` makes each reply wait (released at `stop`).
    """

    def __init__(
        self,
        replies: Sequence[Reply] = (),
        *,
        default: Reply | None = None,
        port: int = 0,
        delay: float = 0.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.requests: list[Received] = []
        self._replies = list(replies)
        self._default = default or Reply()
        self._lock = threading.Lock()
        self._released = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver._record(Received(self.command, self.path, headers, body))
                receiver._released.wait(delay)
                reply = receiver._next_reply()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.content_length:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _record(self, request: Received) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.pop(0) if self._replies else self._default

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()


def resolver_for(table: dict[str, list[str]], calls: list[str] | None = None) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


class Stack:
    """Real `python worker.py` and `python -m api` processes on a task queue of their own.

    Made by the `make_stack` fixture over the session's servers; a context manager that starts
    the worker, then the API, and stops both. The worker can be killed and started again.
    """

    def __init__(self, name: str, settings: Settings, logs: Path) -> None:
        self.name = name
        self.settings = settings
        self._logs = logs
        self._workers = 0
        self._worker: devstack.ManagedProcess | None = None
        self._api: devstack.ManagedProcess | None = None

    def start_worker(self) -> None:
        """Start a worker process (the previous one must be gone); waits until it polls."""
        assert self._worker is None or not self._worker.alive(), "a worker is still running"
        self._workers += 1
        log = self._logs / f"{self.name}-worker-{self._workers}.log"
        self._worker = devstack.start_worker(self.settings, log_path=log, env=clean_env())

    def kill_worker(self) -> None:
        """SIGKILL the worker's whole process group: a crash, as far as it can tell."""
        assert self._worker is not None, "no worker was started"
        self._worker.kill()

    def __enter__(self) -> Stack:
        self.start_worker()
        try:
            log = self._logs / f"{self.name}-api.log"
            self._api = devstack.start_api(self.settings, log_path=log, env=clean_env())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in (self._api, self._worker):
            if process is not None:
                process.stop()


# `make_stack(**settings_overrides)`: a running `Stack`, stopped at the end of the module.
MakeStack = Callable[..., Stack]
