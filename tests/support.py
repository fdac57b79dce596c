"""Helpers shared by the integration tests (no fixtures here; see conftest.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from temporalio.client import Client, WorkflowHandle

from api import jobs
from providers.catalog import resolve_request
from reelay import devstack
from reelay.devstack import S3Endpoint
from reelay.jobs import JobSpec, JobStatus, JobView
from reelay.settings import Settings
from reelay.temporal import connect
from reelay.tenants import DEFAULT_TIERS, Tenant
from tests.conftest import DEV_API_KEY, clean_env, isolated_settings
from worker import serving
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


@asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[Client]:
    """An in-process worker on the settings' task queue; yields its client."""
    client = await connect(settings)
    async with serving(client, settings):
        yield client


async def emulator_submissions(
    settings: Settings, prompt: str, *, provider: str = "runway"
) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=settings.emulator_url) as http:
        response = await http.get("/_emulator/submissions", params={"provider": provider})
        response.raise_for_status()
        return [s for s in response.json() if s["prompt"] == prompt]


@contextmanager
def api_and_worker(
    name: str,
    *,
    temporal: str,
    s3: S3Endpoint,
    emulator: str,
    stack_dir: Path,
    **overrides: Any,
) -> Iterator[Settings]:
    """Real `python -m api` and `python worker.py` processes on a task queue of their own."""
    _, emulator_port = devstack.split_host_port(emulator)
    api_port = devstack.free_port()
    values: dict[str, Any] = {
        "temporal_address": temporal,
        "task_queue": f"test-{name}-{uuid.uuid4().hex[:8]}",
        **s3.settings_kwargs(),
        "emulator_port": emulator_port,
        "api_port": api_port,
        "public_url": f"http://127.0.0.1:{api_port}",
        "dev_api_key": DEV_API_KEY,
        "poll_min_seconds": 0.2,
        "poll_max_seconds": 1.0,
        **overrides,
    }
    settings = isolated_settings(**values)
    logs = stack_dir / "logs"
    with (
        devstack.start_worker(settings, log_path=logs / f"{name}-worker.log", env=clean_env()),
        devstack.start_api(settings, log_path=logs / f"{name}-api.log", env=clean_env()),
    ):
        yield settings
