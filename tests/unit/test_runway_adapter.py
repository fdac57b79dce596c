"""Runway adapter parsing and error mapping over `httpx.MockTransport` (one adapter, no server)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import httpx
import pytest

from providers.base import FailureKind, SourceImage, TaskState
from providers.errors import (
    ContentRefusedError,
    InvalidProviderRequestError,
    ProviderUnavailableError,
    RetryableProviderError,
)
from providers.families import FAMILIES
from providers.runway import RunwayAdapter, parse_task, prompt_image, runway_ratio
from reelay.jobs import JobSpec, Route

ROUTE = Route(adapter="runway", upstream_model="gen4.5")


def _adapter(transport: httpx.MockTransport) -> RunwayAdapter:
    return RunwayAdapter("https://runway.test", "key-123", transport=transport)


def _job(**overrides: object) -> JobSpec:
    values: dict[str, object] = {
        "job_id": "job_vid_1",
        "tenant_id": "t",
        "request_id": "r",
        "model": "runway-gen3",
        "requested_model": "runway-gen3",
        "routes": [ROUTE],
        "prompt": "a dog",
        "duration_seconds": 8,
        "resolution": "720p",
        "aspect_ratio": "9:16",
        "price_micro_usd_per_second": 100_000,
        "created_at": datetime.now(UTC),
        "deadline_seconds": 60,
        **overrides,
    }
    return JobSpec.model_validate(values)


async def test_submit_sends_runway_fields_and_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "task-1"})

    adapter = _adapter(httpx.MockTransport(handler))
    assert await adapter.submit(_job(), ROUTE) == "task-1"
    request = seen[0]
    assert request.url.path == "/v1/text_to_video"
    assert request.headers["authorization"] == "Bearer key-123"
    assert request.headers["x-runway-version"] == "2024-11-06"
    assert json.loads(request.content) == {
        "model": "gen4.5",
        "promptText": "a dog",
        "ratio": "720:1280",
        "duration": 8,
    }


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"Retry-After": "7"}, RetryableProviderError, 7.0),
        (503, {}, RetryableProviderError, None),
        (501, {}, RetryableProviderError, None),  # every 5xx, as the official SDKs retry
        (520, {}, RetryableProviderError, None),
        (401, {}, ProviderUnavailableError, None),
        (400, {}, InvalidProviderRequestError, None),
    ],
)
async def test_submit_errors_are_classified(
    status: int, headers: dict[str, str], error: type[Exception], retry_after: float | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, json={"error": "nope"})

    adapter = _adapter(httpx.MockTransport(handler))
    with pytest.raises(error) as caught:
        await adapter.submit(_job(), ROUTE)
    assert "nope" in str(caught.value)
    if isinstance(caught.value, RetryableProviderError):
        assert caught.value.retry_after == retry_after


async def test_connection_refused_is_provider_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderUnavailableError):
        await _adapter(httpx.MockTransport(handler)).poll(ROUTE, "task-1")


def test_parse_task_vocabulary() -> None:
    assert parse_task({"status": "PENDING"}).state is TaskState.QUEUED
    assert parse_task({"status": "THROTTLED"}).state is TaskState.QUEUED
    running = parse_task({"status": "RUNNING", "progress": 0.42})
    assert (running.state, running.progress) == (TaskState.RUNNING, 0.42)
    done = parse_task({"status": "SUCCEEDED", "output": ["https://cdn/x.mp4"]})
    assert (done.state, done.output_url) == (TaskState.SUCCEEDED, "https://cdn/x.mp4")
    refused = parse_task(
        {"status": "FAILED", "failure": "flagged", "failureCode": "SAFETY.INPUT.TEXT"}
    )
    assert refused.failure_kind is FailureKind.CONTENT_REFUSED
    assert refused.failure == "flagged"
    internal = parse_task({"status": "FAILED", "failureCode": "INTERNAL.BAD_OUTPUT.CODE01"})
    assert internal.failure_kind is FailureKind.INTERNAL
    empty = parse_task({"status": "SUCCEEDED", "output": []})
    assert empty.state is TaskState.FAILED


def test_unknown_ratio_is_refused_before_submitting() -> None:
    # Per model, as runwayml's typed params allow: gen4.5 makes 1:1 (960:960) only from an
    # image and no 1080p at all; Veo 3.1 on Runway makes 1080p in 16:9 and 9:16.
    gen45, veo31 = FAMILIES["runway-gen4.5"], FAMILIES["runway-veo3.1"]
    assert runway_ratio("1:1", "720p", gen45, with_image=True) == "960:960"
    assert runway_ratio("16:9", "1080p", veo31) == "1920:1080"
    for ratio, resolution, family in [
        ("4:3", "1080p", veo31),
        ("1:1", "1080p", gen45),
        ("16:9", "1080p", gen45),
        ("1:1", "720p", gen45),
    ]:
        with pytest.raises(InvalidProviderRequestError):
            runway_ratio(ratio, resolution, family)


def test_a_plain_http_image_goes_inline_and_a_large_one_is_refused() -> None:
    small = SourceImage(url="http://bucket.local/in.png", content_type="image/png", data=b"png")
    assert prompt_image(small) == "data:image/png;base64,cG5n"
    https = dataclasses.replace(small, url="https://bucket.test/in.png")
    assert prompt_image(https) == "https://bucket.test/in.png"
    large = dataclasses.replace(small, data=b"x" * 3_600_000)
    with pytest.raises(InvalidProviderRequestError, match="HTTPS"):
        prompt_image(large)


async def test_a_refusal_at_submit_is_a_content_refusal() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "Prompt flagged by content moderation"})

    with pytest.raises(ContentRefusedError):
        await _adapter(httpx.MockTransport(handler)).submit(_job(), ROUTE)
