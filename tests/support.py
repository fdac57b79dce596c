"""Helpers shared by the integration tests (no fixtures here; see conftest.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from temporalio.client import Client, WorkflowHandle

from api import jobs
from providers.catalog import resolve_request
from reelay.jobs import JobSpec, JobStatus, JobView
from reelay.settings import Settings
from reelay.temporal import connect
from reelay.tenants import Tenant
from worker import build_worker
from workflows.video_generation import VideoGenerationWorkflow

T = TypeVar("T")
TENANT = Tenant(id="tenant-a", tier="pro")


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
    async with build_worker(client, settings):
        yield client


async def emulator_submissions(settings: Settings, prompt: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=settings.emulator_url) as http:
        response = await http.get("/_emulator/submissions", params={"provider": "runway"})
        response.raise_for_status()
        return [s for s in response.json() if s["prompt"] == prompt]
