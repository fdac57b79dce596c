"""The OpenAI dialect driven by the official `openai` SDK, against real API and worker processes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI
from temporalio.client import WorkflowExecutionStatus

from reelay.settings import Settings
from tests.integration.dialect_helpers import (
    assert_mp4,
    job_spec_of,
    png_bytes,
    tenant_entry,
    workflow_status,
)
from tests.support import MakeStack

# The SDK marks its Videos API deprecated (OpenAI shut Sora down); Reelay still speaks it.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
KEY = "rl_test_openai_0123456789"


@pytest.fixture(scope="module")
def stack(make_stack: MakeStack, stack_dir: Path) -> Settings:
    run = uuid.uuid4().hex[:8]
    tenants = stack_dir / f"openai-{run}.toml"
    tenants.write_text(tenant_entry(f"openai-{run}", KEY, balance_usd=1000))
    return make_stack(tenants_file=tenants).settings


@pytest.fixture
def client(stack: Settings) -> Iterator[OpenAI]:
    with OpenAI(api_key=KEY, base_url=f"{stack.public_url}/v1", max_retries=0) as sdk:
        yield sdk


def test_create_and_poll_then_download_content(client: OpenAI, tmp_path: Path) -> None:
    video = client.videos.create_and_poll(
        model="runway-gen3",
        prompt="A calico cat playing a piano on stage",
        seconds="4",
        size="1280x720",
    )
    assert video.status == "completed", video.error
    assert (video.object, video.model, video.seconds, video.size) == (
        "video",
        "runway-gen3",
        "4",
        "1280x720",
    )
    assert video.progress == 100
    assert video.completed_at is not None and video.completed_at >= video.created_at
    assert video.error is None and video.remixed_from_video_id is None

    content = client.videos.download_content(video.id)
    content.write_to_file(tmp_path / "video.mp4")
    assert_mp4((tmp_path / "video.mp4").read_bytes(), seconds=4, ratio=16 / 9)
    thumbnail = client.videos.download_content(video.id, variant="thumbnail")
    assert thumbnail.content[:2] == b"\xff\xd8"
    assert client.videos.retrieve(video.id).status == "completed"


def test_retrieve_sends_the_poll_after_header_while_running(client: OpenAI) -> None:
    video = client.videos.create(model="runway-gen3", prompt="[emu gen=4] a slow tide")
    assert video.status == "queued"
    raw = client.videos.with_raw_response.retrieve(video.id)
    assert raw.parse().status in ("queued", "in_progress")
    assert 1000 <= int(raw.headers["openai-poll-after-ms"]) <= 10_000
    done = client.videos.poll(video.id)
    assert done.status == "completed"
    final = client.videos.with_raw_response.retrieve(video.id)
    assert "openai-poll-after-ms" not in final.headers


def test_input_reference_upload_becomes_the_source_image(client: OpenAI, stack: Settings) -> None:
    video = client.videos.create(
        model="runway-gen4.5",
        prompt="The painting comes alive",
        seconds="5",
        size="720x1280",
        input_reference=("first-frame.png", png_bytes(36, 64), "image/png"),
    )
    spec = job_spec_of(stack, video.id)
    assert spec.image is not None
    assert spec.image.key.startswith("media/")
    assert spec.image.content_type == "image/png"
    assert (spec.aspect_ratio, spec.resolution) == ("9:16", "720p")
    assert client.videos.poll(video.id).status == "completed"


def test_input_reference_must_be_an_image(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(
            model="runway-gen4.5",
            prompt="x",
            input_reference=("notes.txt", b"not an image", "text/plain"),
        )
    assert "input_reference must be a PNG, JPEG or WebP image" in refused.value.message


def test_list_paginates_with_after_and_order(client: OpenAI) -> None:
    ids = [
        client.videos.create(model="runway-gen3", prompt=f"[emu gen=30] clip {n}", seconds="2").id
        for n in range(3)
    ]
    # The listing reads Temporal's visibility, which may lag a just-started job (under load).
    deadline = time.monotonic() + 30
    while [v.id for v in client.videos.list(limit=3).data] != ids[::-1]:
        assert time.monotonic() < deadline, "the three jobs never all showed in the listing"
        time.sleep(0.2)
    newest_first = client.videos.list(limit=2)
    assert newest_first.has_more is True
    assert [v.id for v in newest_first.data] == ids[::-1][:2]
    listed = [v.id for v in client.videos.list(limit=2)]  # the SDK follows `after`
    assert listed[:3] == ids[::-1]
    oldest_first = client.videos.list(order="asc", after=ids[0], limit=5)
    assert [v.id for v in oldest_first.data] == ids[1:]
    assert oldest_first.has_more is False
    for video_id in ids:
        client.videos.delete(video_id)


def test_delete_removes_the_video_and_the_id_404s(client: OpenAI, stack: Settings) -> None:
    video = client.videos.create_and_poll(model="runway-gen3", prompt="a red kite", seconds="2")
    assert video.status == "completed"
    signed_url = httpx.get(
        f"{stack.public_url}/v1/video/generations/{video.id}",
        headers={"Authorization": f"Bearer {KEY}"},
    ).json()["video_url"]
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(video.id)
    assert video.id not in [v.id for v in client.videos.list(limit=100).data]
    assert httpx.get(signed_url).status_code == 404
    native = httpx.get(
        f"{stack.public_url}/v1/video/generations/{video.id}",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert native.status_code == 404


def test_deleting_a_running_job_cancels_it(client: OpenAI, stack: Settings) -> None:
    video = client.videos.create(model="runway-gen3", prompt="[emu gen=60] a slow tide")
    while client.videos.retrieve(video.id).status != "in_progress":
        time.sleep(0.1)
    client.videos.delete(video.id)
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    assert workflow_status(stack, video.id, within=30) is WorkflowExecutionStatus.CANCELED


def test_errors_come_in_openai_shape(client: OpenAI, stack: Settings) -> None:
    with pytest.raises(openai.BadRequestError) as retired:
        client.videos.create(model="sora-2", prompt="x")
    assert "2026-09-24" in retired.value.message
    assert retired.value.body == {
        "message": retired.value.body["message"],  # type: ignore[index]
        "type": "invalid_request_error",
        "param": "model",
        "code": None,
    }
    with pytest.raises(openai.BadRequestError) as bad_size:
        client.videos.create(model="runway-gen3", prompt="x", size="1280x500")  # type: ignore[arg-type]
    assert bad_size.value.param == "size"
    with pytest.raises(openai.BadRequestError) as bad_seconds:
        client.videos.create(model="runway-gen3", prompt="x", seconds="four")  # type: ignore[arg-type]
    assert bad_seconds.value.param == "seconds"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("job_vid_" + "0" * 32)
    stranger = OpenAI(api_key="wrong", base_url=f"{stack.public_url}/v1", max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError) as unauthorized:
        stranger.videos.list()
    assert unauthorized.value.code == "invalid_api_key"
    unknown = httpx.post(
        f"{stack.public_url}/v1/videos",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"prompt": "x", "seconds": "4", "quality": "high"},
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "quality is not a known parameter"
