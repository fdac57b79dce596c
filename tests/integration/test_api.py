"""The native API end to end: real API and worker processes, real Temporal, S3 and emulator."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import requests

from reelay.settings import Settings
from tests.conftest import DEV_API_KEY
from tests.support import MakeStack

AUTH = {"Authorization": f"Bearer {DEV_API_KEY}"}


@pytest.fixture(scope="module")
def stack(make_stack: MakeStack) -> Settings:
    return make_stack().settings


@pytest.fixture
def api(stack: Settings) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.public_url, headers=AUTH, timeout=30) as client:
        yield client


def wait_for(api: httpx.Client, job_id: str, *statuses: str, within: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        body: dict[str, Any] = api.get(f"/v1/video/generations/{job_id}").json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"job stayed {body['status']}"
        time.sleep(0.1)


def test_seed_000_python_polling_example_runs_unchanged(stack: Settings) -> None:
    """Seed 000's `generate_video` with only the base URL and key changed."""
    base = stack.public_url
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}

    def generate_video(prompt: str, model: str = "runway-gen3", duration_seconds: int = 4) -> Any:
        response = requests.post(
            f"{base}/v1/video/generations",
            headers={**headers, "Content-Type": "application/json"},
            json={"prompt": prompt, "model": model, "duration_seconds": duration_seconds},
        )
        job = response.json()
        job_id = job["id"]
        while True:
            status_response = requests.get(f"{base}/v1/video/generations/{job_id}", headers=headers)
            status = status_response.json()
            if status["status"] == "complete":
                return status
            if status["status"] == "failed":
                raise Exception(status.get("error_message", "Video generation failed"))
            time.sleep(1)  # the seed sleeps 5 s; 1 s keeps the suite quick

    status = generate_video(
        "A cat playing piano in a jazz club, cinematic lighting",
        model="runway-gen3",
        duration_seconds=8,
    )
    assert status["perf"]["cost_usd"] == pytest.approx(0.80)
    assert status["perf"]["generation_time_ms"] > 0
    video = requests.get(status["video_url"])  # no key: the URL is signed
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(video.content)) as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(8.0, abs=0.1)
        assert stream.codec_context.width / stream.codec_context.height == pytest.approx(
            16 / 9, rel=0.02
        )
    assert hashlib.sha256(video.content).hexdigest() == status["video"]["sha256"]


def test_submit_answers_202_in_the_seed_shape(api: httpx.Client) -> None:
    response = api.post(
        "/v1/video/generations",
        json={
            "prompt": "A serene mountain landscape",
            "model": "luma-dream-machine",
            "duration_seconds": 5,
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert body["id"].startswith("job_vid_")
    assert body["status"] == "pending"
    assert body["model"] == "luma-dream-machine"
    assert (body["duration_seconds"], body["resolution"], body["aspect_ratio"]) == (
        5,
        "1080p",
        "16:9",
    )
    assert body["estimated_cost_usd"] == pytest.approx(0.30)
    assert body["perf"]["request_id"].startswith("req_vid_")
    assert body["perf"]["model_used"] == "ray-2"  # luma-dream-machine runs on Luma Ray 2
    assert body["perf"]["latency_ms"] >= 0
    done = wait_for(api, body["id"], "complete", "failed")
    assert done["status"] == "complete"
    assert done["perf"]["cost_usd"] == pytest.approx(0.30)


def test_processing_status_reports_progress(api: httpx.Client) -> None:
    job = api.post(
        "/v1/video/generations", json={"prompt": "[emu gen=6 steps=6] rain on a window"}
    ).json()
    body = wait_for(api, job["id"], "processing")
    assert 0 <= body["progress_percent"] <= 100
    later = wait_for(api, job["id"], "complete")
    assert later["progress_percent"] == 100


def test_a_processing_jobs_progress_moves_in_finer_steps_than_its_memo(api: httpx.Client) -> None:
    """A read shows the poll loop's heartbeat, which moves within 5 points: the memo (what
    lists and the Temporal UI show) of a job nothing acts on moves only in quarters."""
    job = api.post(
        "/v1/video/generations", json={"prompt": "[emu gen=10 steps=20] a clock's second hand"}
    ).json()
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while (body := api.get(f"/v1/video/generations/{job['id']}").json())["status"] != "complete":
        if body["status"] == "processing":
            seen.append(body["progress_percent"])
        assert time.monotonic() < deadline, f"job stayed {body['status']}"
        time.sleep(0.1)
    assert seen == sorted(seen)
    assert [p for p in seen if p % 25], seen


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "prompt is required"),
        ({"prompt": ""}, "prompt must not be empty"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": "x", "model": "dall-e"}, "model 'dall-e' is not supported"),
        (
            {"prompt": "x", "duration_seconds": 17},
            "duration_seconds exceeds maximum of 16 for runway-gen3 model",
        ),
        ({"prompt": "x", "duration_seconds": "eight"}, "duration_seconds"),
        ({"prompt": "x", "duration_seconds": True}, "duration_seconds"),
        ({"prompt": "x", "duration_seconds": 2.5}, "whole number of seconds"),
        ({"prompt": "x", "duration_seconds": -1}, "duration_seconds must be at least"),
        ({"prompt": "x", "resolution": "4k"}, "resolution must be one of 720p, 1080p"),
        ({"prompt": "x", "aspect_ratio": "21:9"}, "aspect_ratio must be one of"),
        ({"prompt": "x", "model": "pika", "duration_seconds": 10}, "maximum of 4 for pika"),
    ],
)
def test_invalid_requests_get_400_in_the_seed_error_shape(
    api: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = api.post("/v1/video/generations", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert message in error["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"prompt"'])
def test_malformed_bodies_get_400_not_422(api: httpx.Client, raw: bytes) -> None:
    response = api.post(
        "/v1/video/generations", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}]
)
def test_a_missing_or_wrong_key_gets_401(stack: Settings, headers: dict[str, str]) -> None:
    response = httpx.post(
        f"{stack.public_url}/v1/video/generations", json={"prompt": "x"}, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"


def test_x_api_key_header_is_accepted(stack: Settings) -> None:
    response = httpx.get(f"{stack.public_url}/v1/models", headers={"x-api-key": DEV_API_KEY})
    assert response.status_code == 200


@pytest.mark.parametrize("job_id", ["job_vid_doesnotexist", "anything", "job_vid_" + "0" * 32])
def test_unknown_jobs_get_404(api: httpx.Client, job_id: str) -> None:
    for response in (
        api.get(f"/v1/video/generations/{job_id}"),
        api.get(f"/v1/video/generations/{job_id}/content"),
        api.post(f"/v1/video/generations/{job_id}/cancel"),
    ):
        assert response.status_code == 404
        assert response.json() == {
            "error": {"type": "not_found", "message": "Video generation job not found"}
        }


def test_content_supports_range_and_signed_links(api: httpx.Client, stack: Settings) -> None:
    job = api.post(
        "/v1/video/generations", json={"prompt": "a red kite", "duration_seconds": 2}
    ).json()
    done = wait_for(api, job["id"], "complete")
    full = api.get(f"/v1/video/generations/{job['id']}/content")
    assert full.status_code == 200
    assert full.headers["accept-ranges"] == "bytes"
    assert int(full.headers["content-length"]) == len(full.content) == done["video"]["size_bytes"]
    part = api.get(f"/v1/video/generations/{job['id']}/content", headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.content == full.content[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(full.content)}"
    tail = api.get(f"/v1/video/generations/{job['id']}/content", headers={"Range": "bytes=-16"})
    assert tail.content == full.content[-16:]
    outside = api.get(
        f"/v1/video/generations/{job['id']}/content",
        headers={"Range": f"bytes={len(full.content)}-"},
    )
    assert outside.status_code == 416

    thumb = httpx.get(done["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"  # JPEG
    forged = done["video_url"].replace("signature=", "signature=0")
    assert httpx.get(forged).status_code == 403
    unsigned = done["video_url"].split("?")[0]
    assert httpx.get(unsigned).status_code == 401


def test_cancel_a_running_job_then_cancelling_again_is_409(api: httpx.Client) -> None:
    job = api.post("/v1/video/generations", json={"prompt": "[emu gen=60] a slow tide"}).json()
    wait_for(api, job["id"], "processing")
    assert api.post(f"/v1/video/generations/{job['id']}/cancel").status_code == 202
    cancelled = wait_for(api, job["id"], "cancelled")
    assert "video_url" not in cancelled
    again = api.post(f"/v1/video/generations/{job['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "conflict"


def test_content_refusal_is_a_failed_job_with_the_reason(api: httpx.Client) -> None:
    job = api.post("/v1/video/generations", json={"prompt": "[emu refuse] forbidden"}).json()
    failed = wait_for(api, job["id"], "failed")
    assert failed["error_message"].startswith("Content policy violation")
    assert "cost_usd" not in failed["perf"]


def test_models_lists_the_catalog_with_limits_and_prices(api: httpx.Client) -> None:
    response = api.get("/v1/models")
    assert response.status_code == 200
    models = {m["id"]: m for m in response.json()["data"]}
    assert {"veo-3", "runway-gen3", "luma-dream-machine", "pika"} <= models.keys()
    veo = models["veo-3"]
    assert (veo["max_duration_seconds"], veo["max_clip_seconds"], veo["chained"]) == (60, 8, True)
    assert models["pika"]["price_usd_per_second"] == 0.067
    assert models["runway-gen3"]["routes"][0] == {
        "provider": "runway",
        "upstream_model": "gen4.5",
        "min_seconds": 2,
        "max_seconds": 10,
        "durations": None,
        "resolutions": ["720p"],
        "aspect_ratios": ["16:9", "9:16", "1:1"],
        "image_to_video": True,
        "continuation": "last_frame",
        "available": True,
    }
    # Runway's gen4.5 makes no 1080p: seed 000's default resolution is made by veo3.1_fast.
    full_hd = models["runway-gen3"]["routes"][1]
    assert (full_hd["upstream_model"], full_hd["resolutions"]) == ("veo3.1_fast", ["1080p"])
    assert models["luma-dream-machine"]["routes"][0]["continuation"] == "keyframe"
    sora = models["sora-2"]
    assert (sora["status"], sora["reason"]) == ("retired", "retired by its provider on 2026-09-24")
    assert models["midjourney-video"]["status"] == "unavailable"


def test_health_and_openapi(stack: Settings) -> None:
    assert httpx.get(f"{stack.public_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{stack.public_url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"temporal": "ok", "s3": "ok"}
    paths = httpx.get(f"{stack.public_url}/openapi.json").json()["paths"]
    assert "/v1/video/generations/{job_id}/content" in paths


def test_cli_generates_waits_and_saves_the_mp4(stack: Settings, tmp_path: Path) -> None:
    out = tmp_path / "cli.mp4"
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("reelay")),
            "generate",
            "[emu gen=1] a cli sunrise",
            "--model",
            "runway-gen3",
            "--duration",
            "3",
            "--wait",
            "-o",
            str(out),
            "--api",
            stack.public_url,
            "--key",
            DEV_API_KEY,
            "--interval",
            "0.2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "complete" in run.stdout
    with av.open(str(out)) as container:
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(3.0, abs=0.1)
    job_id = run.stdout.split("job ")[1].split()[0]
    status = subprocess.run(
        [
            str(Path(sys.executable).with_name("reelay")),
            "status",
            job_id,
            "--api",
            stack.public_url,
            "--key",
            DEV_API_KEY,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0 and '"complete"' in status.stdout


def test_a_bad_cli_request_prints_the_error_and_fails(stack: Settings) -> None:
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("reelay")),
            "generate",
            "x",
            "--duration",
            "99",
            "--api",
            stack.public_url,
            "--key",
            DEV_API_KEY,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "duration_seconds exceeds maximum of 16" in run.stdout
