"""Helpers shared by the dialect end-to-end tests (`test_dialects`, `test_openai_sdk`)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

import av
import httpx
import pytest
from PIL import Image
from temporalio.client import WorkflowExecutionStatus

from reelay.jobs import JobSpec
from reelay.settings import Settings
from reelay.temporal import connect
from reelay.tenants import hash_key
from tests.support import started


def tenant_entry(tenant_id: str, api_key: str, *, balance_usd: float) -> str:
    """A `[[tenants]]` table for the tenants file.

    Each test module has tenants of its own: a tenant's account workflow runs on the task
    queue of the stack that first used it, so tenants are not shared across stacks.
    """
    return (
        f'[[tenants]]\nid = "{tenant_id}"\ntier = "enterprise"\n'
        f'opening_balance_usd = {balance_usd}\nkey_hashes = ["{hash_key(api_key)}"]\n'
    )


def assert_mp4(data: bytes, *, seconds: float, ratio: float) -> None:
    """`data` is a playable H.264 MP4 of about `seconds` and of aspect ratio `ratio`."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(seconds, abs=0.15)
        assert stream.codec_context.name == "h264"
        width, height = stream.codec_context.width, stream.codec_context.height
        assert width / height == pytest.approx(ratio, rel=0.03)


def poll(
    read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], within: float = 90
) -> dict[str, Any]:
    """Call `read` until `done` says so; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        body = read()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"still {body}"
        time.sleep(0.2)


def job_spec_of(settings: Settings, job_id: str) -> JobSpec:
    """The input the job's workflow started with (what the API put into `JobSpec`)."""
    return asyncio.run(_job_spec_of(settings, job_id))


async def _job_spec_of(settings: Settings, job_id: str) -> JobSpec:
    client = await connect(settings)
    handle = client.get_workflow_handle(job_id)
    await started(handle)
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [spec] = await client.data_converter.decode(payloads[:1], [JobSpec])
        assert isinstance(spec, JobSpec)
        return spec
    raise AssertionError(f"no history for {job_id}")


def workflow_status(settings: Settings, job_id: str, *, within: float) -> WorkflowExecutionStatus:
    """The job workflow's status once it is closed; fail after `within` seconds."""
    return asyncio.run(_closed_status(settings, job_id, within))


async def _closed_status(settings: Settings, job_id: str, within: float) -> WorkflowExecutionStatus:
    handle = (await connect(settings)).get_workflow_handle(job_id)
    deadline = time.monotonic() + within
    while True:
        status = (await handle.describe()).status
        if status is not None and status is not WorkflowExecutionStatus.RUNNING:
            return status
        assert time.monotonic() < deadline, f"{job_id} still running"
        await asyncio.sleep(0.2)


def png_bytes(width: int = 64, height: int = 36) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def download(url: str, **kwargs: Any) -> bytes:
    response = httpx.get(url, timeout=30, **kwargs)
    assert response.status_code == 200, response.text
    return response.content
