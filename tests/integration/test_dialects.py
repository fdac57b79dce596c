"""Every seed's dialect end to end: real API and worker processes, Temporal, S3 and emulator.

Each seed's own client code runs with only the host and key changed (poll sleeps shortened).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from reelay.settings import Settings
from tests.integration.dialect_helpers import (
    assert_mp4,
    download,
    job_spec_of,
    png_bytes,
    poll,
    tenant_entry,
)
from tests.support import MakeStack

KEY = "rl_test_dialects_0123456789"
BROKE_KEY = "rl_test_broke_0123456789"  # a tenant with no credits
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def stack(make_stack: MakeStack, stack_dir: Path) -> Settings:
    run = uuid.uuid4().hex[:8]
    tenants = stack_dir / f"dialects-{run}.toml"
    tenants.write_text(
        tenant_entry(f"dialects-{run}", KEY, balance_usd=1000)
        + tenant_entry(f"broke-{run}", BROKE_KEY, balance_usd=0)
    )
    return make_stack(tenants_file=tenants).settings


@pytest.fixture
def api(stack: Settings) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.public_url, headers=AUTH, timeout=30) as client:
        yield client


# --- seed 001 -------------------------------------------------------------------------------


def test_seed_001_python_example_runs_unchanged(stack: Settings) -> None:
    base = stack.public_url
    response = requests.post(
        f"{base}/v1/video/generations",
        headers={
            "Authorization": f"Bearer {KEY}",
            "Content-Type": "application/json",
            "X-App-ID": "your-app-id",
        },
        json={
            "model": "google/veo-3.0-generate-preview",
            "prompt": "A cinematic shot of a majestic lion in the savannah.",
            "parameters": {
                "aspectRatio": "16:9",
                "negativePrompt": "cartoon, drawing, low quality",
            },
            "response_format": "mp4",
        },
    )
    result = response.json()
    assert response.status_code == 202
    assert set(result) == {"id", "operation_name", "status"}
    assert result["status"] == "pending"
    assert result["operation_name"].startswith("operations/veo-3.0-generate-preview/")
    operation_id = result["id"]

    def check_status(operation_id: str) -> str:
        while True:
            status_response = requests.get(
                f"{base}/v1/video/generations/{operation_id}",
                headers={"Authorization": f"Bearer {KEY}", "X-App-ID": "your-app-id"},
            )
            status = status_response.json()
            if status["status"] == "completed":
                return str(status["video_url"])
            assert status == {
                "id": operation_id,
                "operation_name": result["operation_name"],
                "status": "pending",
            }
            time.sleep(0.5)  # the seed sleeps 10 s

    video_url = check_status(operation_id)
    spec = job_spec_of(stack, operation_id)
    assert (spec.dialect, spec.app_id, spec.model) == ("seed001", "your-app-id", "veo-3")
    assert spec.negative_prompt == "cartoon, drawing, low quality"
    assert_mp4(download(video_url), seconds=spec.duration_seconds, ratio=16 / 9)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"prompt": "a lion"}, 400, "Missing required fields: model and prompt"),
        ({"model": "google/veo-3.0-generate-preview"}, 400, "Missing required fields"),
        ({"model": "dall-e-video", "prompt": "a lion"}, 400, "Model not found"),
        (
            {"model": "veo-3", "prompt": "a lion", "response_format": "gif"},
            400,
            "Unsupported response_format 'gif': only mp4 is supported",
        ),
        (
            {"model": "veo-3", "prompt": "a lion", "parameters": {"fps": 24}},
            400,
            "parameters.fps is not a known parameter",
        ),
        (
            {"model": "veo-3", "prompt": "a lion", "parameters": {"aspectRatio": "21:9"}},
            400,
            "parameters.aspectRatio must be one of",
        ),
    ],
)
def test_seed_001_errors_are_plain_strings(
    api: httpx.Client, body: dict[str, Any], status: int, error: str
) -> None:
    response = api.post("/v1/video/generations", json=body, headers={"X-App-ID": "app"})
    assert response.status_code == status
    assert set(response.json()) == {"error"}
    assert response.json()["error"].startswith(error)


def test_seed_001_missing_key_and_unknown_id(stack: Settings) -> None:
    url = f"{stack.public_url}/v1/video/generations"
    missing = httpx.post(url, json={"model": "veo-3", "prompt": "x"}, headers={"X-App-ID": "a"})
    assert missing.status_code == 401
    assert isinstance(missing.json()["error"], str)
    unknown = httpx.get(f"{url}/job_vid_{'0' * 32}", headers={**AUTH, "X-App-ID": "a"})
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "Video generation job not found"}
    # Without the header, seed 000's shape.
    native = httpx.get(f"{url}/job_vid_{'0' * 32}", headers=AUTH)
    assert native.json()["error"]["type"] == "not_found"


# --- seed 002 -------------------------------------------------------------------------------


def test_seed_002_submit_poll_download(api: httpx.Client, stack: Settings) -> None:
    response = api.post(
        "/v2/videos/generate",
        json={
            "prompt": "A paper boat drifting down a rainy street",
            "model": "runway-gen4.5",
            "webhookUrl": "https://hooks.example.com/reelay",
            "webhookEvents": ["progress", "completed"],
            "parameters": {"duration": 5, "aspectRatio": "9:16"},
        },
    )
    assert response.status_code == 202
    accepted = response.json()
    assert accepted == {"jobId": accepted["jobId"], "status": "QUEUED"}
    seen: set[str] = set()

    def read() -> dict[str, Any]:
        body: dict[str, Any] = api.get(f"/v2/jobs/{accepted['jobId']}").json()
        seen.add(body["status"])
        return body

    job = poll(read, lambda body: body["status"] in ("COMPLETED", "FAILED"))
    assert job["status"] == "COMPLETED", job
    assert seen <= {"QUEUED", "PROCESSING", "COMPLETED"}
    assert job["progress"] == 100
    assert job["model"] == "runway-gen4.5"
    result = job["result"]
    assert result["durationSeconds"] == pytest.approx(5, abs=0.15)
    assert_mp4(download(result["videoUrl"]), seconds=5, ratio=9 / 16)
    assert download(result["thumbnailUrl"])[:2] == b"\xff\xd8"
    spec = job_spec_of(stack, accepted["jobId"])
    assert spec.dialect == "seed002"
    assert spec.webhook is not None
    assert (spec.webhook.url, spec.webhook.events) == (
        "https://hooks.example.com/reelay",
        ["progress", "completed"],
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "veo-3"}, "prompt is required"),
        ({"prompt": "", "model": "veo-3"}, "prompt"),
        ({"prompt": "x" * 4001, "model": "veo-3"}, "prompt"),
        ({"prompt": "a boat"}, "model is required"),
        ({"prompt": "a boat", "model": "nope"}, "model 'nope' is not supported"),
        ({"prompt": "a boat", "model": "sora-2"}, "retired by its provider on 2026-09-24"),
        (
            {"prompt": "a boat", "model": "veo-3", "parameters": {"fps": 24}},
            "parameters.fps is not a known parameter",
        ),
        (
            {"prompt": "a boat", "model": "veo-3", "parameters": {"duration": 61}},
            "parameters.duration exceeds maximum of 60 for veo-3 model",
        ),
        (
            {"prompt": "a boat", "model": "veo-3", "webhookEvents": ["started"]},
            "webhookEvents needs webhookUrl",
        ),
        (
            {
                "prompt": "a boat",
                "model": "veo-3",
                "webhookUrl": "https://hooks.example.com/x",
                "webhookEvents": ["started"],
            },
            "webhookEvents must be among progress, completed, failed, cancelled",
        ),
        (
            {"prompt": "a boat", "model": "veo-3", "webhookUrl": "ftp://hooks.example.com/x"},
            "webhookUrl must be an http(s) URL",
        ),
        (
            {"prompt": "a boat", "model": "veo-3", "webhookUrl": "https://127.0.0.1/hook"},
            "webhookUrl must not point to a private or loopback address",
        ),
    ],
)
def test_seed_002_validation_errors(api: httpx.Client, body: dict[str, Any], message: str) -> None:
    response = api.post("/v2/videos/generate", json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert (error["error"], error["status"]) == ("Validation error", 400)
    assert message in error["message"]


def test_seed_002_missing_key_unknown_job_and_malformed_body(stack: Settings) -> None:
    base = stack.public_url
    missing = httpx.post(f"{base}/v2/videos/generate", json={"prompt": "x", "model": "veo-3"})
    assert missing.status_code == 401
    assert missing.json() == {
        "error": "Unauthorized",
        "message": "Missing API key: send Authorization: Bearer <key>",
        "status": 401,
    }
    unknown = httpx.get(f"{base}/v2/jobs/{uuid.uuid4()}", headers=AUTH)
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "Not found"
    malformed = httpx.post(
        f"{base}/v2/videos/generate",
        content=b"{nope",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["message"] == "request body is not valid JSON"


# --- seed 003 -------------------------------------------------------------------------------


def test_seed_003_python_example_runs_unchanged(stack: Settings) -> None:
    res = requests.post(
        f"{stack.public_url}/api/v1/videos/generate",
        headers={
            "x-api-key": KEY,
            "X-Workspace-Id": "YOUR_WORKSPACE_ID",
            "Content-Type": "application/json",
        },
        json={
            "prompt": "A golden retriever running through a field of wildflowers at sunset",
            "size": "landscape",
            "duration": 5,
            "model": "kling-3.0-pro",
            "has_audio": False,
        },
    )
    data = res.json()
    print(data["video_generation_id"])

    assert res.status_code == 200
    assert data["status"] == "processing"
    assert data["status_url"] == f"/api/v1/videos/generations/{data['video_generation_id']}"
    spec = job_spec_of(stack, data["video_generation_id"])
    assert (spec.dialect, spec.app_id, spec.aspect_ratio) == (
        "seed003",
        "YOUR_WORKSPACE_ID",
        "16:9",
    )
    assert data["credits_used"] == math.ceil(spec.estimated_cost_micro_usd / 10_000)
    assert data["enhance_prompt_applied"] is False
    assert 0 <= data["remaining_credits"] <= 100_000  # the tenant opens with $1000
    headers = {"x-api-key": KEY, "X-Workspace-Id": "YOUR_WORKSPACE_ID"}
    done = poll(
        lambda: httpx.get(stack.public_url + data["status_url"], headers=headers).json(),
        lambda body: body["status"] != "processing",
    )
    assert done["status"] == "completed", done
    assert (done["size"], done["duration"], done["has_audio"]) == ("landscape", 5, False)
    assert done["model"] == "kling-3.0-pro"
    video = done["video"]
    assert video["duration"] == 5
    assert video["width"] / video["height"] == pytest.approx(16 / 9, rel=0.03)
    assert_mp4(download(video["url"]), seconds=5, ratio=16 / 9)
    assert download(video["thumbnail_url"])[:2] == b"\xff\xd8"


def test_seed_003_image_to_video_from_an_uploaded_media_id(stack: Settings) -> None:
    headers = {"x-api-key": KEY}
    upload = httpx.post(
        f"{stack.public_url}/v1/media",
        headers=headers,
        files={"file": ("dog.png", png_bytes(), "image/png")},
    )
    assert upload.status_code == 201, upload.text
    media_id = upload.json()["media_id"]
    response = httpx.post(
        f"{stack.public_url}/api/v1/videos/generate",
        headers=headers,
        json={
            "prompt": "The dog starts running and jumps over a fence",
            "source_image": media_id,
            "size": "portrait",
            "duration": 5,
            "model": "kling-3.0-pro",
        },
    )
    assert response.status_code == 200, response.text
    job_id = response.json()["video_generation_id"]
    spec = job_spec_of(stack, job_id)
    assert spec.image is not None
    assert spec.image.key == f"media/{media_id}"
    done = poll(
        lambda: httpx.get(
            f"{stack.public_url}/api/v1/videos/generations/{job_id}", headers=headers
        ).json(),
        lambda body: body["status"] != "processing",
    )
    assert done["status"] == "completed", done
    assert done["size"] == "portrait"


def test_seed_003_enhance_prompt_is_applied_where_the_route_has_a_switch(
    api: httpx.Client,
) -> None:
    veo = api.post(
        "/api/v1/videos/generate",
        json={"prompt": "a lighthouse", "duration": 8, "model": "veo-3.1", "enhance_prompt": True},
    )
    assert veo.status_code == 200, veo.text
    assert veo.json()["enhance_prompt_applied"] is True
    kling = api.post(
        "/api/v1/videos/generate",
        json={"prompt": "a lighthouse", "duration": 5, "enhance_prompt": True},
    )
    assert kling.json()["enhance_prompt_applied"] is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": "a dog"}, "duration is required"),
        ({"prompt": "a dog", "duration": 7}, "duration must be one of 5, 10 for kling-3.0-pro"),
        (
            {"prompt": "a dog", "duration": 6, "model": "veo-3.1"},
            "duration must be one of 4, 8 for veo-3.1",
        ),
        (
            {"prompt": "a dog", "duration": 5, "model": "runway-gen-4.5", "has_audio": True},
            "has_audio is not available",
        ),
        ({"prompt": "a dog", "duration": 5, "size": "square"}, "size"),
        ({"prompt": "a dog", "duration": 5, "source_image": "not-a-uuid"}, "source_image"),
        (
            {"prompt": "a dog", "duration": 5, "source_image": str(uuid.uuid4())},
            "source_image",
        ),
        ({"prompt": "x" * 1001, "duration": 5, "model": "runway-gen-4.5"}, "prompt exceeds"),
    ],
)
def test_seed_003_validation_errors(api: httpx.Client, body: dict[str, Any], message: str) -> None:
    response = api.post("/api/v1/videos/generate", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert message in error["message"]


def test_seed_003_missing_key_and_unknown_id(stack: Settings) -> None:
    base = stack.public_url
    missing = httpx.post(f"{base}/api/v1/videos/generate", json={"prompt": "x", "duration": 5})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "UNAUTHORIZED"
    unknown = httpx.get(
        f"{base}/api/v1/videos/generations/{uuid.uuid4()}", headers={"x-api-key": KEY}
    )
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": {"code": "NOT_FOUND", "message": "Video generation job not found"}
    }


# --- seed 004 -------------------------------------------------------------------------------


def test_seed_004_python_example_runs_unchanged(stack: Settings, tmp_path: Path) -> None:
    base = stack.public_url
    api_key = KEY
    response = requests.post(
        f"{base}/v1/videos",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        json={
            "model": "google/veo-3.0",
            "prompt": "A cinematic sunrise over misty mountains",
            "duration": 6,
        },
    )
    job = response.json()
    print("Job ID:", job["id"])
    assert job["status"] == "queued"

    statuses = set()
    while True:
        poll_response = requests.get(
            f"{base}/v1/videos/{job['id']}", headers={"Authorization": f"Bearer {api_key}"}
        )
        data = poll_response.json()
        statuses.add(data["status"])
        if data["status"] == "completed":
            break
        assert data["status"] in ("queued", "processing"), data
        time.sleep(0.5)  # the seed sleeps 5 s

    video = requests.get(
        f"{base}/v1/videos/{job['id']}/download",
        headers={"Authorization": f"Bearer {api_key}"},
    )
    with open(tmp_path / "video.mp4", "wb") as f:
        f.write(video.content)

    assert video.headers["content-type"] == "video/mp4"
    assert_mp4((tmp_path / "video.mp4").read_bytes(), seconds=6, ratio=16 / 9)
    assert (data["duration"], data["aspect_ratio"], data["model"]) == (6, "16:9", "google/veo-3.0")
    assert download(data["video_url"]) == video.content


def test_seed_004_errors(api: httpx.Client, stack: Settings) -> None:
    bad = api.post("/v1/videos", json={"model": "google/veo-3.0", "prompt": "x", "duration": 7})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "duration")
    assert "duration must be one of" in error["message"]
    missing = httpx.post(f"{stack.public_url}/v1/videos", json={"model": "x", "duration": 5})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert api.post("/v1/videos", json={"prompt": "x", "duration": 5}).json()["error"][
        "message"
    ] == ("model is required")
    for path in ("/v1/videos/job_vid_unknown", "/v1/videos/job_vid_unknown/download"):
        unknown = api.get(path)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["type"] == "invalid_request_error"


# --- across dialects ------------------------------------------------------------------------


def test_a_job_reads_in_each_routes_dialect(api: httpx.Client) -> None:
    """A job answers in its own dialect on a shared path, else in the path's dialect."""
    native = api.post("/v1/video/generations", json={"prompt": "a kite", "duration_seconds": 2})
    job_id = native.json()["id"]
    assert api.get(f"/v2/jobs/{job_id}").json()["jobId"] == job_id
    assert api.get(f"/api/v1/videos/generations/{job_id}").json()["video_generation_id"] == job_id
    openai_view = api.get(f"/v1/videos/{job_id}").json()
    assert (openai_view["object"], openai_view["seconds"]) == ("video", "2")
    assert api.get(f"/v1/video/generations/{job_id}").json()["perf"]["request_id"]
    # A native job stays native on its own path, with or without seed 001's header.
    with_header = api.get(f"/v1/video/generations/{job_id}", headers={"X-App-ID": "a"})
    assert "perf" in with_header.json()

    seed002 = api.post(
        "/v2/videos/generate",
        json={"prompt": "a kite", "model": "runway-gen3", "parameters": {"duration": 2}},
    ).json()
    assert "perf" in api.get(f"/v1/video/generations/{seed002['jobId']}").json()
    as_001 = api.get(f"/v1/video/generations/{seed002['jobId']}", headers={"X-App-ID": "a"})
    assert as_001.json()["operation_name"].startswith("operations/runway-gen3/")


def test_native_webhook_fields_are_checked(api: httpx.Client) -> None:
    bad = api.post(
        "/v1/video/generations",
        json={"prompt": "a kite", "webhook_url": "https://localhost/hook"},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["message"].startswith("webhook_url must not point to")
    events = api.post(
        "/v1/video/generations",
        json={
            "prompt": "a kite",
            "webhook_url": "https://hooks.example.com/x",
            "webhook_events": ["done"],
        },
    )
    assert events.status_code == 400
    assert "webhook_events must be among" in events.json()["error"]["message"]


def test_native_webhook_fields_reach_the_job(api: httpx.Client, stack: Settings) -> None:
    response = api.post(
        "/v1/video/generations",
        json={"prompt": "a kite", "duration_seconds": 2, "webhook_url": "https://h.example.com/"},
    )
    assert response.status_code == 202, response.text
    spec = job_spec_of(stack, response.json()["id"])
    assert spec.webhook is not None
    assert spec.webhook.events == ["completed", "failed", "cancelled"]


def test_openapi_lists_every_dialect_with_its_schemas(stack: Settings) -> None:
    doc = httpx.get(f"{stack.public_url}/openapi.json").json()
    paths = doc["paths"]
    expected = {
        ("/v1/video/generations", "post"): {"native (seed 000)", "seed 001"},
        ("/v2/videos/generate", "post"): {"seed 002"},
        ("/v2/jobs/{jobId}", "get"): {"seed 002"},
        ("/api/v1/videos/generate", "post"): {"seed 003"},
        ("/api/v1/videos/generations/{video_generation_id}", "get"): {"seed 003"},
        ("/v1/videos", "post"): {"OpenAI videos", "seed 004"},
        ("/v1/videos", "get"): {"OpenAI videos"},
        ("/v1/videos/{video_id}", "delete"): {"OpenAI videos"},
        ("/v1/videos/{video_id}/content", "get"): {"OpenAI videos"},
        ("/v1/videos/{video_id}/download", "get"): {"seed 004"},
    }
    for (path, method), tags in expected.items():
        assert set(paths[path][method]["tags"]) == tags, path
    shared = paths["/v1/videos"]["post"]["requestBody"]["content"]
    titles = {schema["title"] for schema in shared["application/json"]["schema"]["oneOf"]}
    assert titles == {"OpenAICreateVideo", "Seed004CreateVideo"}
    assert "multipart/form-data" in shared
    native = paths["/v1/video/generations"]["post"]["requestBody"]["content"]["application/json"]
    assert {s["title"] for s in native["schema"]["oneOf"]} == {
        "CreateGeneration",
        "CreateVideoOperation",
    }
    seed001 = native["schema"]["oneOf"][1]
    assert seed001["properties"]["parameters"]["anyOf"][0]["properties"]["aspectRatio"]
    assert seed001["examples"][0]["model"] == "google/veo-3.0-generate-preview"


def test_insufficient_credits_in_every_dialect(stack: Settings) -> None:
    broke = httpx.Client(
        base_url=stack.public_url, headers={"Authorization": f"Bearer {BROKE_KEY}"}, timeout=30
    )
    with broke:
        seed000 = broke.post("/v1/video/generations", json={"prompt": "a kite"})
        assert seed000.status_code == 402
        assert seed000.json()["error"]["type"] == "insufficient_credits"
        seed001 = broke.post(
            "/v1/video/generations",
            json={"model": "google/veo-3.0-generate-preview", "prompt": "a lion"},
            headers={"X-App-ID": "app"},
        )
        assert (seed001.status_code, seed001.json()) == (402, {"error": "Insufficient balance"})
        seed002 = broke.post("/v2/videos/generate", json={"prompt": "a kite", "model": "veo-3"})
        assert seed002.status_code == 402
        assert seed002.json()["error"] == "Insufficient credits"
        seed003 = broke.post("/api/v1/videos/generate", json={"prompt": "a dog", "duration": 5})
        assert seed003.status_code == 402
        assert seed003.json()["error"]["code"] == "INSUFFICIENT_CREDITS"
        seed004 = broke.post("/v1/videos", json={"model": "veo-3", "prompt": "x", "duration": 4})
        openai = broke.post("/v1/videos", json={"model": "veo-3", "prompt": "x", "seconds": "4"})
        for response in (seed004, openai):
            assert response.status_code == 429
            assert response.headers["x-should-retry"] == "false"
            assert response.json()["error"]["type"] == "insufficient_quota"
