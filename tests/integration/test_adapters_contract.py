"""Luma, Veo, fal and Replicate adapters (built by the registry) against the real emulator over
real sockets: the whole task life, refusals, cancel, 429 + Retry-After, image-to-video, and
callbacks delivered to a loopback receiver and verified by the adapters."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from activities.media import probe_video
from providers.base import (
    CallbackRejected,
    FailureKind,
    ProviderAdapter,
    ProviderTaskStatus,
    SourceImage,
    TaskState,
)
from providers.catalog import MODELS, CatalogError, resolve_request
from providers.errors import InvalidProviderRequestError, RetryableProviderError
from providers.fal import FalHandle
from providers.registry import build_adapters, deployed_routes
from reelay.jobs import JobSpec, Route
from reelay.settings import Settings
from tests.conftest import isolated_settings

FAST = "[emu queue=0.2 gen=0.5 steps=3]"
TERMINAL = (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED)


@dataclass(frozen=True)
class Case:
    """One provider's representative route, job shape and the full-size frame it makes."""

    route: Route
    image_route: Route
    seconds: int
    resolution: str
    aspect_ratio: str
    frame: tuple[int, int]


CASES = {
    "luma": Case(
        Route(adapter="luma", upstream_model="ray-2"),
        Route(adapter="luma", upstream_model="ray-2"),
        5,
        "720p",
        "21:9",
        (1680, 720),
    ),
    "gemini": Case(
        Route(adapter="gemini", upstream_model="veo-3.0-generate-001"),
        Route(adapter="gemini", upstream_model="veo-3.0-generate-001"),
        4,
        "720p",
        "9:16",
        (720, 1280),
    ),
    "fal": Case(
        Route(adapter="fal", upstream_model="fal-ai/kling-video/v2.5-turbo/pro/text-to-video"),
        Route(adapter="fal", upstream_model="fal-ai/kling-video/v2.5-turbo/pro/image-to-video"),
        5,
        "1080p",
        "1:1",
        (1080, 1080),
    ),
    "replicate": Case(
        Route(adapter="replicate", upstream_model="minimax/hailuo-02"),
        Route(adapter="replicate", upstream_model="minimax/hailuo-02"),
        6,
        "768p",
        "16:9",
        (1366, 768),
    ),
}
CALLBACK_PROVIDERS = ["luma", "fal", "replicate"]


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 18), (200, 80, 20)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()


@dataclass
class Receiver:
    """A loopback HTTP server: serves `/image.png`, records POSTs, can fail the first ones."""

    url: str = ""
    posts: dict[str, list[tuple[dict[str, str], bytes]]] = field(default_factory=dict)
    image_gets: int = 0
    fail_first: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def path(self) -> str:
        return f"/callback/{uuid.uuid4().hex}"

    async def wait_post(self, path: str, *, count: int = 1, within: float = 10.0) -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self.lock:
                got = list(self.posts.get(path, []))
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(f"no callback at {path} within {within} s")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/image.png":
                self.send_error(404)
                return
            with state.lock:
                state.image_gets += 1
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.posts.setdefault(self.path, []).append((dict(self.headers.items()), body))
                failing = state.fail_first.get(self.path, 0) >= len(state.posts[self.path])
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def emulator(emulator_server: str) -> Settings:
    """Settings with no provider key: the registry points every adapter at the emulator."""
    _, port = emulator_server.rsplit(":", 1)
    return isolated_settings(emulator_host="127.0.0.1", emulator_port=int(port))


@pytest.fixture
async def adapters(emulator: Settings) -> AsyncIterator[dict[str, ProviderAdapter]]:
    built = build_adapters(emulator)
    try:
        yield built
    finally:
        for adapter in built.values():
            await adapter.aclose()


def unique(text: str) -> str:
    return f"{text} #{uuid.uuid4().hex[:10]}"


def job_for(case: Case, prompt: str, **fields: Any) -> JobSpec:
    values: dict[str, Any] = {
        "job_id": "job_vid_contract",
        "tenant_id": "t",
        "request_id": "r",
        "model": "m",
        "requested_model": "m",
        "routes": [case.route],
        "prompt": prompt,
        "duration_seconds": case.seconds,
        "resolution": case.resolution,
        "aspect_ratio": case.aspect_ratio,
        "price_micro_usd_per_second": 1,
        "created_at": datetime.now(UTC),
        "deadline_seconds": 60,
        **fields,
    }
    return JobSpec.model_validate(values)


async def poll_to_end(
    adapter: ProviderAdapter, route: Route, task_id: str, *, within: float = 20.0
) -> list[ProviderTaskStatus]:
    seen: list[ProviderTaskStatus] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        seen.append(await adapter.poll(route, task_id))
        if seen[-1].state in TERMINAL:
            return seen
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish: {seen[-1]}")


async def submissions(settings: Settings, provider: str, prompt: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=settings.emulator_url) as http:
        response = await http.get("/_emulator/submissions", params={"provider": provider})
        response.raise_for_status()
        return [s for s in response.json() if s["prompt"] == prompt]


def webhook_task_id(provider: str, handle: str) -> str:
    return FalHandle.decode(handle).request_id if provider == "fal" else handle


@pytest.mark.parametrize("provider", list(CASES))
async def test_task_life_ends_in_a_real_mp4(
    provider: str, adapters: dict[str, ProviderAdapter], emulator: Settings, tmp_path: Path
) -> None:
    case, adapter, prompt = CASES[provider], adapters[provider], unique(f"a heron {FAST}")
    task_id = await adapter.submit(job_for(case, prompt), case.route)
    seen = await poll_to_end(adapter, case.route, task_id)
    assert seen[0].state in (TaskState.QUEUED, TaskState.RUNNING)
    final = seen[-1]
    assert final.state is TaskState.SUCCEEDED, final
    assert final.output_url and final.progress == 1.0
    target = tmp_path / "video.mp4"
    async with adapter.download(final.output_url) as response:
        target.write_bytes(await response.aread())
    info = probe_video(target)
    assert info.codec == "h264"
    assert info.duration_seconds == pytest.approx(case.seconds, abs=0.2)
    assert info.width / info.height == pytest.approx(case.frame[0] / case.frame[1], rel=0.05)
    [record] = await submissions(emulator, provider, prompt)
    assert record["image"] is False
    assert record["size"] == f"{case.frame[0]}x{case.frame[1]}"
    assert record["duration"] == case.seconds


@pytest.mark.parametrize("provider", list(CASES))
@pytest.mark.parametrize(
    ("directive", "kind"),
    [("refuse", FailureKind.CONTENT_REFUSED), ("fail=internal", FailureKind.INTERNAL)],
)
async def test_failures_are_classified(
    provider: str, directive: str, kind: FailureKind, adapters: dict[str, ProviderAdapter]
) -> None:
    case, adapter = CASES[provider], adapters[provider]
    prompt = unique(f"a storm [emu queue=0 gen=0.2 {directive}]")
    task_id = await adapter.submit(job_for(case, prompt), case.route)
    final = (await poll_to_end(adapter, case.route, task_id))[-1]
    assert (final.state, final.failure_kind) == (TaskState.FAILED, kind)
    assert final.failure


@pytest.mark.parametrize("provider", list(CASES))
async def test_cancel_stops_the_task(provider: str, adapters: dict[str, ProviderAdapter]) -> None:
    case, adapter = CASES[provider], adapters[provider]
    task_id = await adapter.submit(job_for(case, unique("a long one [emu gen=60]")), case.route)
    await adapter.cancel(case.route, task_id)
    await adapter.cancel(case.route, task_id)  # a second cancel is harmless
    if provider == "luma":
        with pytest.raises(InvalidProviderRequestError, match="404"):
            await adapter.poll(case.route, task_id)  # Luma stops a generation by deleting it
        return
    assert (await adapter.poll(case.route, task_id)).state is TaskState.CANCELLED


@pytest.mark.parametrize("provider", list(CASES))
async def test_rate_limits_outages_and_poll_errors_are_retryable(
    provider: str, adapters: dict[str, ProviderAdapter], emulator: Settings
) -> None:
    case, adapter = CASES[provider], adapters[provider]
    prompt = unique(f"busy [emu create_429=1 retry_after=7 poll_5xx=1] {FAST}")
    with pytest.raises(RetryableProviderError) as caught:
        await adapter.submit(job_for(case, prompt), case.route)
    assert caught.value.retry_after == 7.0
    task_id = await adapter.submit(job_for(case, prompt), case.route)
    with pytest.raises(RetryableProviderError):
        await adapter.poll(case.route, task_id)
    assert (await adapter.poll(case.route, task_id)).state in (TaskState.QUEUED, TaskState.RUNNING)
    assert len(await submissions(emulator, provider, prompt)) == 1

    async with httpx.AsyncClient(base_url=emulator.emulator_url) as http:
        (await http.post("/_emulator/config", json={"outages": {provider: 503}})).raise_for_status()
        try:
            with pytest.raises(RetryableProviderError, match="503"):
                await adapter.submit(job_for(case, unique("down")), case.route)
        finally:
            (await http.post("/_emulator/config", json={"outages": {}})).raise_for_status()


@pytest.mark.parametrize("provider", list(CASES))
async def test_image_to_video_reaches_the_emulator(
    provider: str, adapters: dict[str, ProviderAdapter], emulator: Settings, receiver: Receiver
) -> None:
    case, adapter, prompt = CASES[provider], adapters[provider], unique(f"animate {FAST}")
    image = SourceImage(url=f"{receiver.url}/image.png", content_type="image/png", data=PNG)
    before = receiver.image_gets
    task_id = await adapter.submit(job_for(case, prompt), case.image_route, image=image)
    assert (await poll_to_end(adapter, case.image_route, task_id))[-1].state is TaskState.SUCCEEDED
    [record] = await submissions(emulator, provider, prompt)
    assert record["image"] is True
    # Veo takes the bytes inline; the others fetch the (presigned) URL themselves.
    assert receiver.image_gets == before + (0 if provider == "gemini" else 1)


@pytest.mark.parametrize("provider", CALLBACK_PROVIDERS)
async def test_callbacks_arrive_when_the_task_ends_and_verify(
    provider: str, adapters: dict[str, ProviderAdapter], receiver: Receiver
) -> None:
    case, adapter = CASES[provider], adapters[provider]
    path = receiver.path()
    started = time.monotonic()
    handle = await adapter.submit(
        job_for(case, unique(f"called back {FAST}")), case.route, callback_url=receiver.url + path
    )
    [(headers, body)] = await receiver.wait_post(path)  # no polling in between
    assert time.monotonic() - started < 5
    event = adapter.verify_callback(headers, body)
    assert event.task_id == webhook_task_id(provider, handle)
    payload = json.loads(body)
    assert {"luma": "state", "fal": "status", "replicate": "status"}[provider] in payload
    if provider != "luma":  # Luma's callbacks are unsigned: the URL's token authenticates them
        with pytest.raises(CallbackRejected):
            adapter.verify_callback(headers, body.replace(b'"', b" ", 1))
    with pytest.raises(CallbackRejected):
        adapter.verify_callback(headers, b"{not json")


def _stale_signed(provider: str, settings: Settings, body: bytes) -> dict[str, str]:
    """A correctly signed callback, ten minutes old."""
    timestamp = str(int(time.time()) - 600)
    if provider == "fal":
        seed = settings.emulator_fal_signing_seed.get_secret_value().encode()
        key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())
        rid = json.loads(body)["request_id"]
        message = "\n".join([rid, "u", timestamp, hashlib.sha256(body).hexdigest()])
        return {
            "X-Fal-Webhook-Request-Id": rid,
            "X-Fal-Webhook-User-Id": "u",
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": key.sign(message.encode()).hex(),
        }
    secret = settings.emulator_replicate_webhook_secret.get_secret_value()
    mac = hmac.new(
        base64.b64decode(secret.removeprefix("whsec_")),
        f"msg_1.{timestamp}.".encode() + body,
        hashlib.sha256,
    )
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
    }


@pytest.mark.parametrize("provider", ["fal", "replicate"])
async def test_stale_signed_callbacks_are_rejected(
    provider: str, adapters: dict[str, ProviderAdapter], emulator: Settings, receiver: Receiver
) -> None:
    case, adapter, path = CASES[provider], adapters[provider], receiver.path()
    prompt = unique("[emu queue=0 gen=0.1 refuse] stale")
    await adapter.submit(job_for(case, prompt), case.route, callback_url=receiver.url + path)
    [(headers, body)] = await receiver.wait_post(path)
    adapter.verify_callback(headers, body)  # a refusal is reported (and signed) too
    with pytest.raises(CallbackRejected, match="off"):
        adapter.verify_callback(_stale_signed(provider, emulator, body), body)


async def test_callbacks_are_retried_on_errors(
    adapters: dict[str, ProviderAdapter], emulator: Settings, receiver: Receiver
) -> None:
    case, adapter, path = CASES["luma"], adapters["luma"], receiver.path()
    receiver.fail_first[path] = 2
    prompt = unique("[emu queue=0 gen=0.1] retried")
    await adapter.submit(job_for(case, prompt), case.route, callback_url=receiver.url + path)
    posts = await receiver.wait_post(path, count=3)
    assert len({body for _, body in posts}) == 1
    for _ in range(50):
        [record] = await submissions(emulator, "luma", prompt)
        if record["callback"]["delivered"]:
            break
        await asyncio.sleep(0.05)
    assert record["callback"] == {"url": receiver.url + path, "attempts": 3, "delivered": True}


async def test_every_catalog_route_is_accepted_by_its_emulated_provider(
    adapters: dict[str, ProviderAdapter], receiver: Receiver, emulator: Settings
) -> None:
    """Each route's default request (and its image-to-video form) passes the emulator's
    validation of that upstream model's input. `[emu fail=internal]` skips rendering."""
    image = SourceImage(url=f"{receiver.url}/image.png", content_type="image/png", data=PNG)
    accepted = 0
    for model in MODELS:
        for with_image in (False, True):
            try:
                resolved = resolve_request(prompt="x", model=model.id, with_image=with_image)
            except CatalogError:
                continue
            for route in deployed_routes(emulator, resolved.routes):
                prompt = unique(f"{model.id} [emu fail=internal]")
                spec = job_for(
                    CASES["luma"],
                    prompt,
                    routes=[route],
                    duration_seconds=resolved.duration_seconds,
                    resolution=resolved.resolution,
                    aspect_ratio=resolved.aspect_ratio,
                )
                adapter = adapters[route.adapter]
                await adapter.submit(spec, route, image=image if with_image else None)
                accepted += 1
    assert accepted > 60
    async with httpx.AsyncClient(base_url=emulator.emulator_url) as http:
        records = (await http.get("/_emulator/submissions")).json()
    models = {r["model"] for r in records}
    assert "fal-ai/wan/v2.2-a14b/image-to-video" in models and "wan-video/wan-2.5-i2v" in models


def test_registry_points_every_adapter_at_the_emulator(emulator: Settings) -> None:
    assert set(build_adapters(emulator)) == {"runway", "luma", "gemini", "fal", "replicate"}
    keyed = isolated_settings(require_provider_keys=True, luma_api_key="lk")
    assert set(build_adapters(keyed)) == {"luma"}


def test_downloaded_mp4_is_decodable(tmp_path: Path) -> None:
    """Guard for `probe_video` above: PyAV reads what the emulator renders."""
    from emulator.render import render_mp4

    path = render_mp4(tmp_path / "v.mp4", width=64, height=36, duration_seconds=1, fps=4)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
