"""The store step against real faults: a slow provider download, an unreachable S3."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.errors import STORAGE_TYPE
from activities.inputs import ProviderTaskRef, StoreRequest
from activities.jobs import JobActivities
from emulator.render import render_mp4
from providers.base import ProviderTaskStatus, TaskState
from reelay import devstack
from reelay.jobs import JobStatus, Route
from reelay.settings import Settings
from reelay.storage import s3_client
from tests.conftest import isolated_settings
from tests.support import job_spec, running_worker, start, unique_prompt

# The 4 s clip (about 8 KB) then takes about 33 s: beyond the poll loop's heartbeat timeout.
SLOW_BYTES_PER_SECOND = 250


async def test_a_download_slower_than_the_heartbeat_timeout_is_stored_in_one_attempt(
    settings: Settings,
) -> None:
    prompt = unique_prompt(f"[emu gen=1 slow={SLOW_BYTES_PER_SECOND}] a snail on a leaf")
    # 4 s: one whole clip of seed 000's default (1080p) route, stored as downloaded (no trim).
    spec = job_spec(settings, prompt, duration_seconds=4)
    async with running_worker(settings) as client:
        handle = await start(client, settings, spec)
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.status is JobStatus.COMPLETED
    assert result.video is not None
    # The body alone took longer than a heartbeat timeout to arrive.
    seconds = result.video.size_bytes / SLOW_BYTES_PER_SECOND
    assert seconds > spec.poll_heartbeat_timeout_seconds
    assert store_attempts(history) == [1]


def store_attempts(history: Any) -> list[int]:
    """The attempt numbers of the activities that may store the job's video, from its
    history: the poll loop (which stores it, since `store-in-poll`) and a `store_video` (only
    if the loop handed the store back)."""
    scheduled = {
        e.event_id
        for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name
        in ("poll_until_done", "store_video")
    }
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]


async def test_a_download_cut_half_way_is_resumed_within_one_attempt(settings: Settings) -> None:
    prompt = unique_prompt("[emu gen=1 truncate=1] a kite that lost its string")
    spec = job_spec(settings, prompt, duration_seconds=2)
    async with running_worker(settings) as client:
        handle = await start(client, settings, spec)
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.status is JobStatus.COMPLETED
    assert result.video is not None
    stored = s3_client(settings).get_object(settings.s3_bucket, result.video.key).read()
    assert hashlib.sha256(stored).hexdigest() == result.video.sha256
    assert store_attempts(history) == [1]  # the rest was fetched with a Range request


async def test_an_unreachable_s3_is_a_retryable_error_that_names_no_internals() -> None:
    port = devstack.free_port()  # nothing listens there
    settings = isolated_settings(s3_endpoint=f"127.0.0.1:{port}", s3_bucket="internal-bucket")
    activities = JobActivities(settings, {}, s3_client(settings))
    request = StoreRequest(
        job_id="job_vid_internal-key",
        task=ProviderTaskRef(route=Route(adapter="runway", upstream_model="gen4.5"), task_id="t"),
    )
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(activities.store_video, request)
    assert caught.value.type == STORAGE_TYPE
    assert not caught.value.non_retryable
    for internal in ("127.0.0.1", str(port), "internal-bucket", "job_vid_internal-key"):
        assert internal not in caught.value.message


class ServesClip:
    """A provider whose finished task's output is `clip`; it counts the downloads."""

    def __init__(self, clip: Path) -> None:
        self._data = clip.read_bytes()
        self.downloads = 0

    @contextlib.asynccontextmanager
    async def download(self, url: str, *, resume: Any = None) -> AsyncIterator[httpx.Response]:
        self.downloads += 1
        yield httpx.Response(200, content=self._data)


async def test_only_the_first_store_skips_looking_for_a_stored_video(
    settings: Settings, tmp_path: Path
) -> None:
    clip = render_mp4(tmp_path / "out.mp4", width=64, height=36, duration_seconds=1, fps=8)
    provider = ServesClip(clip)
    adapters: dict[str, Any] = {"runway": provider}
    activities = JobActivities(settings, adapters, s3_client(settings))
    request = StoreRequest(
        job_id=f"job_vid_{uuid.uuid4().hex}",
        task=ProviderTaskRef(route=Route(adapter="runway", upstream_model="gen4.5"), task_id="t"),
    )
    done = ProviderTaskStatus(state=TaskState.SUCCEEDED, output_url="https://p.example/out.mp4")

    stored = await activities.store(request, {}, finished=done, first=True)
    assert provider.downloads == 1
    # A retried attempt (or the workflow's store step) finds it: no second download.
    assert await activities.store(request, {}, finished=done) == stored
    assert provider.downloads == 1
    # A first store does not look, and stores the provider's output again.
    assert await activities.store(request, {}, finished=done, first=True) == stored
    assert provider.downloads == 2
