"""Luma, Veo, fal and Replicate adapters on recorded example payloads (`tests/payloads/`) and
over `httpx.MockTransport`: parsing, request shapes and error mapping, no server."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from providers import fal, replicate, veo
from providers.base import CallbackRejected, FailureKind, SourceImage, TaskState
from providers.errors import InvalidProviderRequestError, RetryableProviderError
from providers.fal import FalAdapter, FalHandle, fal_input
from providers.luma import LumaAdapter, generation_body, parse_generation
from providers.replicate import ReplicateAdapter, parse_prediction, replicate_input
from providers.veo import VeoAdapter, parse_operation, predict_body
from reelay.jobs import JobSpec, Route

PAYLOADS = Path(__file__).parents[1] / "payloads"
IMAGE = SourceImage(url="https://bucket.test/in.png", content_type="image/png", data=b"\x89PNG")
Handler = Callable[[httpx.Request], httpx.Response]


def payload(provider: str, name: str) -> Any:
    return json.loads((PAYLOADS / f"{provider}.json").read_text())[name]


def job(**overrides: Any) -> JobSpec:
    values: dict[str, Any] = {
        "job_id": "job_vid_1",
        "tenant_id": "t",
        "request_id": "r",
        "model": "m",
        "requested_model": "m",
        "routes": [Route(adapter="x", upstream_model="y")],
        "prompt": "a dog",
        "duration_seconds": 5,
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "price_micro_usd_per_second": 1,
        "created_at": datetime.now(UTC),
        "deadline_seconds": 60,
        **overrides,
    }
    return JobSpec.model_validate(values)


def recorder(answer: Handler) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return seen, httpx.MockTransport(handler)


# --- Luma ------------------------------------------------------------------------------------


def test_luma_generation_vocabulary() -> None:
    done = parse_generation(payload("luma", "completed"))
    assert (done.state, done.output_url) == (
        TaskState.SUCCEEDED,
        payload("luma", "completed")["assets"]["video"],
    )
    assert parse_generation(payload("luma", "dreaming")).state is TaskState.RUNNING
    refused = parse_generation(payload("luma", "failed_moderation"))
    assert (refused.state, refused.failure_kind) == (TaskState.FAILED, FailureKind.CONTENT_REFUSED)
    assert "moderation" in (refused.failure or "")
    internal = parse_generation(payload("luma", "failed_internal"))
    assert internal.failure_kind is FailureKind.INTERNAL


async def test_luma_submit_body_headers_and_callback() -> None:
    seen, transport = recorder(lambda r: httpx.Response(201, json=payload("luma", "dreaming")))
    adapter = LumaAdapter("https://luma.test/dream-machine/v1", "lk", transport=transport)
    route = Route(adapter="luma", upstream_model="ray-2", clip_seconds=5)
    spec = job(duration_seconds=4, aspect_ratio="21:9", resolution="1080p", negative_prompt="fog")
    task_id = await adapter.submit(spec, route, image=IMAGE, callback_url="https://gw/cb?token=t")
    assert task_id == payload("luma", "dreaming")["id"]
    request = seen[0]
    assert request.url.path == "/dream-machine/v1/generations/video"
    assert request.headers["authorization"] == "Bearer lk"
    assert json.loads(request.content) == {
        "model": "ray-2",
        "prompt": "a dog",
        "aspect_ratio": "21:9",
        "resolution": "1080p",
        "duration": "5s",
        "keyframes": {"frame0": {"type": "image", "url": IMAGE.url}},
        "callback_url": "https://gw/cb?token=t",
    }
    with pytest.raises(InvalidProviderRequestError, match="7 s"):
        generation_body(
            job(duration_seconds=7), Route(adapter="luma", upstream_model="ray-2"), None, None
        )


def test_luma_callback_is_the_generation_hashed() -> None:
    adapter = LumaAdapter("https://luma.test", "k")
    body = json.dumps(payload("luma", "completed")).encode()
    event = adapter.verify_callback({}, body)
    assert event.task_id == payload("luma", "completed")["id"]
    assert event.event_id == hashlib.sha256(body).hexdigest()
    for bad in (b"not json", b"[1, 2]", b'{"state": "completed"}'):
        with pytest.raises(CallbackRejected):
            adapter.verify_callback({}, bad)


# --- Veo (Gemini API) ------------------------------------------------------------------------


def test_veo_operation_vocabulary() -> None:
    assert parse_operation(payload("gemini", "running")).state is TaskState.RUNNING
    done = parse_operation(payload("gemini", "done"))
    assert done.state is TaskState.SUCCEEDED
    assert done.output_url and done.output_url.endswith(":download?alt=media")
    refused = parse_operation(payload("gemini", "rai_filtered"))
    assert (refused.state, refused.failure_kind) == (TaskState.FAILED, FailureKind.CONTENT_REFUSED)
    assert "Responsible AI" in (refused.failure or "")
    failed = parse_operation(payload("gemini", "error"))
    assert failed.failure_kind is FailureKind.INTERNAL
    bad_input = parse_operation({"done": True, "error": {"code": 3, "message": "bad aspect"}})
    assert bad_input.failure_kind is FailureKind.INVALID_REQUEST
    cancelled = parse_operation({"done": True, "error": {"code": 1, "message": "CANCELLED"}})
    assert cancelled.state is TaskState.CANCELLED


def test_veo_request_body() -> None:
    route = Route(adapter="gemini", upstream_model="veo-3.1-generate-preview", clip_seconds=8)
    spec = job(
        duration_seconds=5,
        resolution="1080p",
        aspect_ratio="9:16",
        negative_prompt="blur",
        audio=True,
        enhance_prompt=True,
        seed=7,
    )
    assert predict_body(spec, route, IMAGE) == {
        "instances": [
            {
                "prompt": "a dog",
                "image": {
                    "bytesBase64Encoded": base64.b64encode(b"\x89PNG").decode(),
                    "mimeType": "image/png",
                },
            }
        ],
        "parameters": {
            "aspectRatio": "9:16",
            "durationSeconds": 8,
            "sampleCount": 1,
            "resolution": "1080p",
            "negativePrompt": "blur",
            "enhancePrompt": True,
        },
    }  # no generateAudio or seed: the Gemini API refuses both (google-genai 2.x)
    veo2 = predict_body(job(), Route(adapter="gemini", upstream_model="veo-2.0-generate-001"), None)
    assert "generateAudio" not in veo2["parameters"] and "resolution" not in veo2["parameters"]
    with pytest.raises(InvalidProviderRequestError):
        predict_body(job(aspect_ratio="1:1"), route, None)


async def test_veo_submits_once_and_a_refusal_is_not_resubmitted() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["parameters"].get("enhancePrompt"):
            error = {"code": 400, "message": "enhance_prompt isn't supported by this model."}
            return httpx.Response(400, json={"error": error})
        return httpx.Response(200, json=payload("gemini", "running"))

    seen, transport = recorder(answer)
    adapter = VeoAdapter("https://g.test/v1beta", "gk", transport=transport)
    route = Route(adapter="gemini", upstream_model="veo-3.0-generate-001")
    name = await adapter.submit(job(audio=True, duration_seconds=8), route)
    assert name == payload("gemini", "running")["name"]
    assert "generateAudio" not in json.loads(seen[0].content)["parameters"]
    assert seen[0].headers["x-goog-api-key"] == "gk"
    with pytest.raises(InvalidProviderRequestError, match="enhance_prompt"):
        await adapter.submit(job(enhance_prompt=True, duration_seconds=8), route)
    assert [r.url.path for r in seen] == [
        "/v1beta/models/veo-3.0-generate-001:predictLongRunning"
    ] * 2  # one each: nothing silently dropped and resent


async def test_veo_429_retry_delay_and_poll_path() -> None:
    seen, transport = recorder(lambda r: httpx.Response(429, json=payload("gemini", "error_429")))
    adapter = VeoAdapter("https://g.test/v1beta", "gk", transport=transport)
    with pytest.raises(RetryableProviderError) as caught:
        await adapter.poll(Route(adapter="gemini", upstream_model="m"), "models/m/operations/op1")
    assert caught.value.retry_after == 23.0
    assert seen[0].url.path == "/v1beta/models/m/operations/op1"


async def test_veo_download_sends_the_key_to_google_only() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "g.test":
            return httpx.Response(302, headers={"Location": "https://cdn.test/v.mp4?sig=1"})
        return httpx.Response(200, content=b"mp4")

    seen, transport = recorder(answer)
    adapter = VeoAdapter("https://g.test/v1beta", "gk", transport=transport)
    async with adapter.download("https://g.test/v1beta/files/f1:download?alt=media") as response:
        assert await response.aread() == b"mp4"
    assert [r.headers.get("x-goog-api-key") for r in seen] == ["gk", None]


def test_veo_takes_no_callbacks() -> None:
    with pytest.raises(CallbackRejected):
        VeoAdapter("https://g.test", "k").verify_callback({"webhook-id": "x"}, b"{}")


# --- fal -------------------------------------------------------------------------------------


def fal_route(model: str, clip: int | None = None) -> Route:
    return Route(adapter="fal", upstream_model=model, clip_seconds=clip)


@pytest.mark.parametrize(
    ("model", "overrides", "image", "expected"),
    [
        (
            "fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
            {"negative_prompt": "blur", "aspect_ratio": "9:16", "resolution": "1080p"},
            False,
            {"duration": "5", "aspect_ratio": "9:16", "negative_prompt": "blur"},
        ),
        (
            "fal-ai/kling-video/v2.5-turbo/pro/image-to-video",
            {"duration_seconds": 10, "resolution": "1080p"},
            True,
            {"duration": "10", "image_url": IMAGE.url},
        ),
        (
            "fal-ai/kling-video/v3/pro/text-to-video",
            {"duration_seconds": 13, "audio": True, "resolution": "1080p"},
            False,
            {"duration": "13", "generate_audio": True, "aspect_ratio": "16:9"},
        ),
        (
            "fal-ai/kling-video/v2.6/pro/image-to-video",
            {"resolution": "1080p"},
            True,
            {"duration": "5", "generate_audio": False, "start_image_url": IMAGE.url},
        ),
        (
            "fal-ai/minimax/hailuo-02/standard/text-to-video",
            {"duration_seconds": 10, "resolution": "512p", "enhance_prompt": True},
            False,
            {"duration": "10", "prompt_optimizer": True, "resolution": "512P"},
        ),
        (
            "fal-ai/pika/v2.2/text-to-video",
            {"resolution": "1080p", "aspect_ratio": "4:5", "seed": 3, "negative_prompt": "x"},
            False,
            {
                "duration": 5,
                "resolution": "1080p",
                "aspect_ratio": "4:5",
                "seed": 3,
                "negative_prompt": "x",
            },
        ),
        (
            "fal-ai/bytedance/seedance/v1/pro/text-to-video",
            {"duration_seconds": 12, "resolution": "480p", "aspect_ratio": "21:9"},
            False,
            {"duration": "12", "resolution": "480p", "aspect_ratio": "21:9"},
        ),
        (
            "fal-ai/wan/v2.2-a14b/text-to-video",
            {"duration_seconds": 5, "resolution": "580p", "negative_prompt": "n"},
            False,
            {
                "num_frames": 81,
                "frames_per_second": 16,
                "resolution": "580p",
                "aspect_ratio": "16:9",
                "negative_prompt": "n",
                "enable_prompt_expansion": False,
            },
        ),
        (
            "fal-ai/wan-25-preview/image-to-video",
            {"duration_seconds": 10, "resolution": "1080p"},
            True,
            {
                "duration": "10",
                "resolution": "1080p",
                "image_url": IMAGE.url,
                "enable_prompt_expansion": False,
            },
        ),
    ],
)
def test_fal_input_per_family(
    model: str, overrides: dict[str, Any], image: bool, expected: dict[str, Any]
) -> None:
    body = fal_input(job(**overrides), fal_route(model), IMAGE if image else None)
    assert body == {"prompt": "a dog", **expected}


def test_fal_input_refuses_what_the_model_cannot_make() -> None:
    with pytest.raises(InvalidProviderRequestError, match="resolution 720p"):
        fal_input(job(), fal_route("fal-ai/minimax/hailuo-02/standard/text-to-video", 6), None)
    with pytest.raises(InvalidProviderRequestError, match="7 s"):
        fal_input(job(duration_seconds=7), fal_route("fal-ai/pika/v2.2/text-to-video"), None)
    with pytest.raises(InvalidProviderRequestError, match="no fal input mapping"):
        fal_input(job(), fal_route("fal-ai/flux/dev"), None)


async def test_fal_submit_keeps_the_given_urls_and_polls_them() -> None:
    submit = payload("fal", "submit")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json=submit)
        if request.url.path.endswith("/status"):
            return httpx.Response(200, json=payload("fal", "status_completed"))
        return httpx.Response(200, json=payload("fal", "result"))

    seen, transport = recorder(answer)
    adapter = FalAdapter("https://queue.fal.test", "fk", transport=transport)
    route = fal_route("fal-ai/kling-video/v2.5-turbo/pro/text-to-video")
    handle = await adapter.submit(
        job(resolution="1080p"), route, callback_url="https://gw/cb?token=a&b=1"
    )
    assert FalHandle.decode(handle).status_url == submit["status_url"]
    assert seen[0].url.path == "/fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
    assert seen[0].url.params["fal_webhook"] == "https://gw/cb?token=a&b=1"
    assert seen[0].headers["authorization"] == "Key fk"
    status = await adapter.poll(route, handle)
    assert (status.state, status.output_url) == (
        TaskState.SUCCEEDED,
        payload("fal", "result")["video"]["url"],
    )
    assert str(seen[1].url) == submit["status_url"] + "?logs=1"
    assert str(seen[2].url) == submit["response_url"]
    with pytest.raises(InvalidProviderRequestError, match="not a fal task handle"):
        await adapter.poll(route, "plain-id")


@pytest.mark.parametrize(
    ("status_name", "result", "state", "kind"),
    [
        ("status_in_queue", None, TaskState.QUEUED, None),
        ("status_completed_error", None, TaskState.FAILED, FailureKind.INTERNAL),
        (
            "status_completed",
            (422, "result_content_policy"),
            TaskState.FAILED,
            FailureKind.CONTENT_REFUSED,
        ),
        (
            "status_completed",
            (422, "result_validation"),
            TaskState.FAILED,
            FailureKind.INVALID_REQUEST,
        ),
        ("status_completed", (500, None), TaskState.FAILED, FailureKind.INTERNAL),
    ],
)
async def test_fal_status_and_result_failures(
    status_name: str,
    result: tuple[int, str | None] | None,
    state: TaskState,
    kind: FailureKind | None,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return httpx.Response(202, json=payload("fal", status_name))
        assert result is not None
        code, name = result
        return httpx.Response(code, json=payload("fal", name) if name else {"detail": "boom"})

    _, transport = recorder(answer)
    adapter = FalAdapter("https://queue.fal.test", "k", transport=transport)
    status = await adapter.poll(
        fal_route("m"), FalHandle.model_validate(payload("fal", "submit")).encode()
    )
    assert (status.state, status.failure_kind) == (state, kind)


def test_fal_progress_comes_from_logs() -> None:
    status = fal.parse_status(payload("fal", "status_in_progress"))
    assert status is not None and status.progress == pytest.approx(0.4)


async def test_fal_gateway_errors_on_the_result_are_retried() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return httpx.Response(200, json=payload("fal", "status_completed"))
        return httpx.Response(502, text="<html>bad gateway</html>")

    _, transport = recorder(answer)
    adapter = FalAdapter("https://queue.fal.test", "k", transport=transport)
    with pytest.raises(RetryableProviderError):
        await adapter.poll(
            fal_route("m"), FalHandle.model_validate(payload("fal", "submit")).encode()
        )


def fal_signed(
    key: Ed25519PrivateKey, body: bytes, *, at: float, request_id: str
) -> dict[str, str]:
    timestamp = str(int(at))
    message = "\n".join([request_id, "user-1", timestamp, hashlib.sha256(body).hexdigest()])
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "user-1",
        "X-Fal-Webhook-Timestamp": timestamp,
        "X-Fal-Webhook-Signature": key.sign(message.encode()).hex(),
    }


def test_fal_webhook_signature_freshness_and_key_rotation() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = [k.public_key().public_bytes_raw().hex() for k in (old, new)]
    adapter = FalAdapter("https://q.test", "k", webhook_public_keys=keys)
    webhook = payload("fal", "webhook_ok")
    body, rid = json.dumps(webhook).encode(), webhook["request_id"]
    headers = fal_signed(new, body, at=time.time(), request_id=rid)
    event = adapter.verify_callback(headers, body)
    assert (event.task_id, event.event_id) == (rid, f"{rid}:{headers['X-Fal-Webhook-Timestamp']}")
    stranger = Ed25519PrivateKey.generate()
    rejected = [
        (fal_signed(new, body, at=time.time() - 301, request_id=rid), body),
        (fal_signed(stranger, body, at=time.time(), request_id=rid), body),
        (headers, body.replace(b"OK", b"ER")),
        (fal_signed(new, body, at=time.time(), request_id="other"), body),
        ({**headers, "X-Fal-Webhook-Signature": "zz"}, body),
        ({k: v for k, v in headers.items() if "User" not in k}, body),
    ]
    for bad_headers, bad_body in rejected:
        with pytest.raises(CallbackRejected):
            adapter.verify_callback(bad_headers, bad_body)


def test_fal_emulator_key_derivation_matches_the_seed() -> None:
    private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"seed").digest())
    assert fal.public_key_hex_for_seed("seed") == private.public_key().public_bytes_raw().hex()


# --- Replicate -------------------------------------------------------------------------------


def test_replicate_prediction_vocabulary() -> None:
    running = parse_prediction(payload("replicate", "processing"))
    assert (running.state, running.progress) == (TaskState.RUNNING, pytest.approx(0.6))
    done = parse_prediction(payload("replicate", "succeeded"))
    assert done.output_url == payload("replicate", "succeeded")["output"]
    listed = parse_prediction(payload("replicate", "succeeded_list_output"))
    assert listed.output_url == payload("replicate", "succeeded_list_output")["output"][0]
    flagged = parse_prediction(payload("replicate", "failed_flagged"))
    assert flagged.failure_kind is FailureKind.CONTENT_REFUSED
    assert parse_prediction(payload("replicate", "canceled")).state is TaskState.CANCELLED
    assert parse_prediction({"id": "x", "status": "starting"}).state is TaskState.QUEUED


@pytest.mark.parametrize(
    ("model", "overrides", "image", "expected"),
    [
        (
            "kwaivgi/kling-v2.5-turbo-pro",
            {"duration_seconds": 10, "negative_prompt": "n", "aspect_ratio": "1:1"},
            False,
            {"duration": 10, "aspect_ratio": "1:1", "negative_prompt": "n"},
        ),
        ("kwaivgi/kling-v2.1-master", {}, True, {"duration": 5, "start_image": IMAGE.url}),
        (
            "minimax/hailuo-02",
            {"duration_seconds": 6, "resolution": "1080p", "enhance_prompt": True},
            True,
            {
                "duration": 6,
                "resolution": "1080p",
                "prompt_optimizer": True,
                "first_frame_image": IMAGE.url,
            },
        ),
        (
            "bytedance/seedance-1-pro",
            {"seed": 9, "aspect_ratio": "4:3"},
            False,
            {"duration": 5, "resolution": "720p", "aspect_ratio": "4:3", "seed": 9},
        ),
        (
            "wan-video/wan-2.5-t2v-fast",
            {"aspect_ratio": "9:16", "resolution": "1080p"},
            False,
            {"duration": 5, "enable_prompt_expansion": False, "size": "1080*1920"},
        ),
        (
            "wan-video/wan-2.5-i2v",
            {"duration_seconds": 10},
            True,
            {
                "duration": 10,
                "enable_prompt_expansion": False,
                "resolution": "720p",
                "image": IMAGE.url,
            },
        ),
    ],
)
def test_replicate_input_per_family(
    model: str, overrides: dict[str, Any], image: bool, expected: dict[str, Any]
) -> None:
    route = Route(adapter="replicate", upstream_model=model)
    body = replicate_input(job(**overrides), route, IMAGE if image else None)
    assert body == {"prompt": "a dog", **expected}


async def test_replicate_submit_throttle_and_cancel() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/predictions"):
            body = json.loads(request.content)
            assert body["webhook_events_filter"] == ["completed"]
            assert body["webhook"] == "https://gw/cb"
            return httpx.Response(
                429, headers={"Retry-After": "4"}, json=payload("replicate", "throttled")
            )
        return httpx.Response(404, json={"detail": "Not found"})

    seen, transport = recorder(answer)
    adapter = ReplicateAdapter("https://api.replicate.test", "rk", transport=transport)
    route = Route(adapter="replicate", upstream_model="kwaivgi/kling-v2.5-turbo-pro")
    with pytest.raises(RetryableProviderError) as caught:
        await adapter.submit(job(), route, callback_url="https://gw/cb")
    assert caught.value.retry_after == 4.0
    assert "throttled" in str(caught.value)
    assert seen[0].url.path == "/v1/models/kwaivgi/kling-v2.5-turbo-pro/predictions"
    assert seen[0].headers["authorization"] == "Bearer rk"
    await adapter.cancel(route, "gone")  # a 404 on cancel is not an error
    assert seen[1].url.path == "/v1/predictions/gone/cancel"


def test_replicate_webhook_matches_the_standard_webhooks_vector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vector = payload("replicate", "standard_webhooks_vector")
    timestamp = int(vector["webhook-timestamp"])
    monkeypatch.setattr(replicate, "time", SimpleNamespace(time=lambda: timestamp + 10))
    adapter = ReplicateAdapter("https://r.test", "k", webhook_secret=vector["secret"])
    headers = {k: vector[k] for k in ("webhook-id", "webhook-timestamp")}
    headers["webhook-signature"] = f"v1,bm9wZQ== {vector['webhook-signature']}"  # one of several
    body = vector["body"].encode()
    assert adapter.verify_callback(headers, body).event_id == vector["webhook-id"]
    for bad_headers, bad_body in [
        ({**headers, "webhook-signature": "v1,bm9wZQ=="}, body),
        (headers, body + b" "),
        ({**headers, "webhook-id": "msg_other"}, body),
        ({**headers, "webhook-signature": vector["webhook-signature"].replace("v1", "v2")}, body),
        ({k: v for k, v in headers.items() if k != "webhook-timestamp"}, body),
    ]:
        with pytest.raises(CallbackRejected):
            adapter.verify_callback(bad_headers, bad_body)
    monkeypatch.setattr(replicate, "time", SimpleNamespace(time=lambda: timestamp + 301))
    with pytest.raises(CallbackRejected, match="s off"):
        adapter.verify_callback(headers, body)
    with pytest.raises(CallbackRejected, match="no Replicate webhook secret"):
        ReplicateAdapter("https://r.test", "k").verify_callback(headers, body)


def test_unknown_upstream_families_are_refused() -> None:
    route = Route(adapter="replicate", upstream_model="someone/else")
    with pytest.raises(InvalidProviderRequestError):
        replicate_input(job(), route, None)
    assert veo.makes_audio("veo-3.0-generate-001") and not veo.makes_audio("veo-2.0-generate-001")
