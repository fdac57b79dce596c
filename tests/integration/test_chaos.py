"""Chaos: SIGKILL a real worker process during submit, poll and store, then start another.

Each job must complete, be charged once and be stored once with the right checksum, and be
submitted exactly once per route (the emulator counts what it accepted), except where the
provider offers no way to find a lost submit's task (Runway: see
`test_a_worker_killed_during_submit_submits_once`). To catch the worker inside a submit, its
provider traffic goes through `HoldingProxy`: the create carrying a chosen prompt reaches
the emulator, which accepts the task, but its answer is held back, so the provider has the
task and the worker has not heard of it when it dies.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowHandle

from reelay.jobs import JobStatus, JobView
from reelay.storage import s3_client
from reelay.temporal import connect
from tests.conftest import DEV_API_KEY
from tests.integration.dialect_helpers import assert_mp4
from tests.support import MakeStack, Stack, is_storing, started, unique_prompt, view_of, wait_until
from workflows.video_generation import VideoGenerationWorkflow

AUTH = {"Authorization": f"Bearer {DEV_API_KEY}"}
# Headers that belong to one connection, not to the message being forwarded.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
}


class HoldingProxy:
    """A loopback reverse proxy to the emulator that can withhold one create's answer.

    After `hold(marker)`, the first POST whose body contains `marker` is forwarded (the
    emulator creates the task) but its answer is kept back; `held` is set meanwhile. On
    `release()` the connection closes unanswered. Everything else passes through.
    """

    def __init__(self, upstream: str) -> None:
        self.held = threading.Event()
        self._released = threading.Event()
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        self._upstream = httpx.Client(base_url=upstream, timeout=60)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = [
                    (name, value)
                    for name, value in self.headers.items()
                    if name.lower() not in HOP_BY_HOP
                ]
                with proxy._upstream.stream(
                    self.command, self.path, headers=headers, content=body
                ) as answer:
                    if proxy._take_hold(self.command, body):
                        answer.read()
                        proxy.held.set()
                        proxy._released.wait()
                        self.close_connection = True
                        return
                    self.send_response(answer.status_code)
                    for name, value in answer.headers.multi_items():
                        if name.lower() not in HOP_BY_HOP - {"content-length"}:
                            self.send_header(name, value)
                    self.end_headers()
                    for chunk in answer.iter_raw():
                        self.wfile.write(chunk)
                        self.wfile.flush()

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def hold(self, marker: str) -> None:
        with self._lock:
            self._marker = marker.encode()
            self.held.clear()
            self._released.clear()

    def release(self) -> None:
        self._released.set()

    def _take_hold(self, method: str, body: bytes) -> bool:
        with self._lock:
            if method != "POST" or self._marker is None or self._marker not in body:
                return False
            self._marker = None
            return True

    def __enter__(self) -> HoldingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()


@pytest.fixture(scope="module")
def proxy(emulator_server: str) -> Iterator[HoldingProxy]:
    with HoldingProxy(emulator_server) as running:
        yield running


@pytest.fixture(scope="module")
def stack(make_stack: MakeStack, proxy: HoldingProxy) -> Stack:
    """API and worker processes whose provider traffic goes through the proxy."""
    return make_stack(emulator_port=proxy.port)


async def accepted(emulator: str, prompt: str) -> list[dict[str, Any]]:
    """The tasks with `prompt` the providers accepted, oldest first, from the emulator
    (`emulator` is its base URL, not the proxy's)."""
    async with httpx.AsyncClient(base_url=emulator) as http:
        response = await http.get("/_emulator/submissions")
        response.raise_for_status()
    return [s for s in response.json() if s["prompt"] == prompt]


async def submissions_per_route(emulator: str, prompt: str) -> Counter[str]:
    """How many tasks with `prompt` each provider accepted."""
    return Counter(s["provider"] for s in await accepted(emulator, prompt))


async def submit(
    stack: Stack, prompt: str, model: str = "runway-gen3", seconds: int = 4
) -> WorkflowHandle[Any, JobView]:
    """POST a 16:9 job to the API (the default model, runway-gen3: one route, Runway's)."""
    async with httpx.AsyncClient(base_url=stack.settings.public_url, headers=AUTH) as api:
        response = await api.post(
            "/v1/video/generations",
            json={"prompt": prompt, "duration_seconds": seconds, "model": model},
        )
    assert response.status_code == 202, response.text
    client = await connect(stack.settings)
    handle = client.get_workflow_handle_for(VideoGenerationWorkflow.run, response.json()["id"])
    await started(handle)
    return handle


async def spent_usd(stack: Stack) -> float:
    """The dev tenant's settled spending so far."""
    async with httpx.AsyncClient(base_url=stack.settings.public_url, headers=AUTH) as api:
        response = await api.get("/v1/account")
    response.raise_for_status()
    return float(response.json()["spent_usd"])


async def crash_and_recover(
    stack: Stack,
    handle: WorkflowHandle[Any, JobView],
    prompt: str,
    tmp_path: Path,
    *,
    caught: Callable[[], Awaitable[bool]],
    emulator: str,
    seconds: int = 4,
) -> Counter[str]:
    """Once `caught()` holds, SIGKILL the worker and start another; then check that the job
    completed, was charged once and stored once. Returns the tasks each provider accepted."""
    spent_before = await spent_usd(stack)
    await wait_until(caught, within=120, interval=0.05)
    stack.kill_worker()
    stack.start_worker()
    result = await asyncio.wait_for(handle.result(), 240)

    assert result.status is JobStatus.COMPLETED
    assert result.cost_micro_usd == result.estimated_cost_micro_usd  # one clip's price
    charged = await spent_usd(stack) - spent_before
    assert charged == pytest.approx(result.estimated_cost_micro_usd / 1_000_000)
    per_route = await submissions_per_route(emulator, prompt)
    assert per_route, "the emulator never saw the job"
    assert result.video is not None
    s3 = s3_client(stack.settings)
    local = tmp_path / "stored.mp4"
    s3.fget_object(stack.settings.s3_bucket, result.video.key, str(local))
    data = local.read_bytes()
    assert hashlib.sha256(data).hexdigest() == result.video.sha256
    assert_mp4(data, seconds=seconds, ratio=16 / 9)  # the whole clip, not a torn download
    assert len(list(s3.list_objects(stack.settings.s3_bucket, prefix=result.video.key))) == 1
    return per_route


@pytest.mark.parametrize(
    ("model", "seconds", "provider", "tasks"),
    [
        pytest.param("luma-dream-machine", 4, "luma", 1, id="luma-finds-the-lost-task"),
        pytest.param("wan-2.5-fast", 5, "replicate", 1, id="replicate-finds-the-lost-task"),
        pytest.param("runway-gen3", 4, "runway", 2, id="runway-cannot"),
    ],
)
async def test_a_worker_killed_during_submit_submits_once(
    stack: Stack,
    proxy: HoldingProxy,
    emulator_server: str,
    tmp_path: Path,
    model: str,
    seconds: int,
    provider: str,
    tasks: int,
) -> None:
    """The worker dies after the provider accepted the create, before its answer arrived.

    Luma and Replicate list their tasks, so the retried attempt finds the lost one (Luma's
    by its echoed request with the job's callback URL, Replicate's by model and input) and
    submits nothing: one task. Runway lists no tasks,
    so this is the documented double-submit window (providers/README.md, "Submitted
    twice"): the retry creates a second task on the same route (never on another), the
    lost one runs on unpolled; the job still completes once, is charged once and stores one
    video.
    """
    prompt = unique_prompt("[emu gen=1] chaos during submit")
    proxy.hold(prompt)
    handle = await submit(stack, prompt, model, seconds)

    async def inside_submit() -> bool:
        # The provider has the task; the workflow has not recorded it.
        if not proxy.held.is_set():
            return False
        view = await view_of(handle)
        return view.provider_task_id is None and len(await accepted(emulator_server, prompt)) == 1

    try:
        per_route = await crash_and_recover(
            stack,
            handle,
            prompt,
            tmp_path,
            caught=inside_submit,
            emulator=emulator_server,
            seconds=seconds,
        )
    finally:
        proxy.release()
    assert per_route == Counter({provider: tasks})
    # The job polled the last task: the lost one itself, or (Runway) the retry's.
    tasks_made = await accepted(emulator_server, prompt)
    assert (await view_of(handle)).provider_task_id == tasks_made[-1]["task_id"]


async def test_a_worker_killed_during_poll_submits_once(
    stack: Stack, emulator_server: str, tmp_path: Path
) -> None:
    prompt = unique_prompt("[emu gen=8] chaos during poll")
    handle = await submit(stack, prompt)

    async def polling() -> bool:
        view = await view_of(handle)
        return view.status is JobStatus.PROCESSING and view.provider_task_id is not None

    per_route = await crash_and_recover(
        stack, handle, prompt, tmp_path, caught=polling, emulator=emulator_server
    )
    assert per_route == Counter({"runway": 1})


async def test_a_worker_killed_during_store_stores_once(
    stack: Stack, emulator_server: str, tmp_path: Path
) -> None:
    # Small files in the tests: throttle the download so the store step is caught mid-way.
    prompt = unique_prompt("[emu gen=1 slow=4000] chaos during store")
    handle = await submit(stack, prompt)

    per_route = await crash_and_recover(
        stack, handle, prompt, tmp_path, caught=lambda: is_storing(handle), emulator=emulator_server
    )
    assert per_route == Counter({"runway": 1})
