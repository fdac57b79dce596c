"""The providers' official SDKs drive the emulator: create, poll to the end, cancel, download.

Every answer (each state, each error) is parsed with the SDK's own response models, strictly
(`model_validate`, not the SDKs' lenient construction), and the emulator's refusals come back
as the SDK's typed errors. Checked against runwayml 5.24, lumaai 1.21, google-genai 2.34,
fal-client 1.0 and replicate 1.0 (pyproject's `contract` extra).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import quote

import av
import fal_client
import fal_client.client
import httpx
import lumaai
import pytest
import replicate
import replicate.exceptions
import runwayml
import runwayml.lib.polling
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from google.oauth2.credentials import Credentials as OAuthCredentials
from lumaai.types import Generation, GenerationListResponse
from PIL import Image
from pydantic import BaseModel
from replicate.helpers import FileOutput
from replicate.prediction import Prediction
from replicate.webhook import Webhooks, WebhookSigningSecret
from runwayml.types import ImageToVideoCreateResponse, TextToVideoCreateResponse
from runwayml.types.task_retrieve_response import (
    Cancelled,
    Failed,
    Pending,
    Running,
    Succeeded,
)

from emulator.config import EmulatorConfig
from emulator.replicate import LIST_PAGE

T = TypeVar("T")

KEY = "emulator-test-key"
FAST = "[emu queue=0 gen=0.3]"
PENDING = "[emu queue=60]"  # stays queued for the whole test
RUNNING = "[emu queue=0 gen=60 steps=60]"  # stays running for the whole test
REFUSE = "[emu queue=0 gen=0.2 refuse]"
FAIL = "[emu queue=0 gen=0.2 fail=internal]"


def wait_for(check: Callable[[], T | None], *, timeout: float = 20.0, what: str = "") -> T:
    """Call `check` every 50 ms until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result is not None:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


def unique(text: str) -> str:
    return f"{text} #{uuid.uuid4().hex[:8]}"


def assert_mp4(data: bytes, seconds: float) -> None:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert container.duration is not None
        assert abs(container.duration / 1_000_000 - seconds) < 0.3


def png_data_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 80, 40)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def strict(model: type[BaseModel], body: Any) -> Any:
    """`body` validated by one of the SDK's pydantic response models (required fields,
    `Literal` values, types); the SDKs themselves construct responses leniently."""
    return model.model_validate(body)


@pytest.fixture
def http(emulator_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_server, timeout=30) as client:
        yield client


# --------------------------------------------------------------------------------------------
# Runway: runwayml 5.24
# --------------------------------------------------------------------------------------------

RUNWAY_STATES: dict[str, type[BaseModel]] = {
    "PENDING": Pending,
    "RUNNING": Running,
    "SUCCEEDED": Succeeded,
    "FAILED": Failed,
    "CANCELLED": Cancelled,
}


@pytest.fixture
def runway(emulator_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[runwayml.RunwayML]:
    # `wait_for_task_output` sleeps 6 +- 1.5 s between polls; the emulator is faster.
    monkeypatch.setattr(runwayml.lib.polling, "POLL_TIME", 0.1)
    monkeypatch.setattr(runwayml.lib.polling, "POLL_JITTER", 0.0)
    with runwayml.RunwayML(
        api_key=KEY, base_url=f"{emulator_server}/runway", max_retries=0
    ) as client:
        yield client


def runway_task(runway: runwayml.RunwayML, task_id: str) -> Any:
    """The task as its status's own SDK model (strict)."""
    body = runway.tasks.with_raw_response.retrieve(task_id).json()
    return strict(RUNWAY_STATES[body["status"]], body)


def test_runway_sdk_text_to_video_runs_to_a_downloadable_mp4(
    runway: runwayml.RunwayML, http: httpx.Client
) -> None:
    raw = runway.text_to_video.with_raw_response.create(
        model="gen4.5", prompt_text=unique(FAST), ratio="1280:720", duration=2
    )
    created = strict(TextToVideoCreateResponse, raw.json())
    assert created.estimated_cost.credits > 0
    task = raw.parse()
    done = task.wait_for_task_output(timeout=30)
    assert isinstance(done, Succeeded)
    succeeded = runway_task(runway, task.id)
    assert isinstance(succeeded, Succeeded)
    assert succeeded.cost.credits == created.estimated_cost.credits
    assert_mp4(http.get(succeeded.output[0]).raise_for_status().content, 2)


def test_runway_sdk_sees_each_state_in_its_own_model(runway: runwayml.RunwayML) -> None:
    pending = runway.text_to_video.create(
        model="veo3.1_fast", prompt_text=unique(PENDING), ratio="1920:1080", duration=4
    )
    running = runway.text_to_video.create(
        model="veo3.1", prompt_text=unique(RUNNING), ratio="720:1280"
    )
    failed = runway.text_to_video.create(
        model="gen4.5", prompt_text=unique(FAIL), ratio="720:1280", duration=3
    )
    assert isinstance(runway_task(runway, pending.id), Pending)
    progress = wait_for(lambda: runway_task(runway, running.id), what="running")
    assert isinstance(progress, Running)
    assert 0 <= progress.progress < 1

    runway.tasks.delete(pending.id)
    runway.tasks.delete(running.id)
    for task_id in (pending.id, running.id):
        cancelled = runway_task(runway, task_id)
        assert isinstance(cancelled, Cancelled)
        assert cancelled.cost.credits == 0

    with pytest.raises(runwayml.TaskFailedError) as caught:
        failed.wait_for_task_output(timeout=30)
    assert isinstance(caught.value.task_details, Failed)
    assert isinstance(runway_task(runway, failed.id), Failed)


def test_runway_sdk_image_to_video_takes_data_uris_and_keyframes(
    runway: runwayml.RunwayML,
) -> None:
    image = png_data_uri()
    raw = runway.image_to_video.with_raw_response.create(
        model="gen4_turbo", prompt_image=image, ratio="960:960", duration=2
    )
    task = strict(ImageToVideoCreateResponse, raw.json())
    assert isinstance(raw.parse().wait_for_task_output(timeout=30), Succeeded)
    assert task.estimated_cost.credits > 0
    keyframes = runway.image_to_video.create(
        model="veo3.1",
        prompt_text=unique(FAST),
        prompt_image=[{"uri": image, "position": "first"}, {"uri": image, "position": "last"}],
        ratio="1280:720",
        duration=4,
    )
    assert isinstance(keyframes.wait_for_task_output(timeout=30), Succeeded)


@pytest.mark.parametrize(
    ("endpoint", "params", "field"),
    [
        # types/text_to_video_create_params.py `Gen4_5.ratio`: 1280:720 | 720:1280 only.
        ("text_to_video", {"model": "gen4.5", "ratio": "1920:1080", "duration": 5}, "ratio"),
        ("text_to_video", {"model": "gen4.5", "ratio": "960:960", "duration": 5}, "ratio"),
        # `veo3` is no model of any current create call; gen4_turbo is image-to-video only.
        ("text_to_video", {"model": "veo3", "ratio": "1280:720", "duration": 8}, "model"),
        ("text_to_video", {"model": "gen4_turbo", "ratio": "1280:720", "duration": 5}, "model"),
        ("text_to_video", {"model": "veo3.1", "ratio": "1280:720", "duration": 5}, "duration"),
        ("text_to_video", {"model": "gen4.5", "ratio": "1280:720"}, "duration"),
        ("text_to_video", {"model": "gen4.5", "ratio": "1280:720", "duration": 11}, "duration"),
        # image-to-video: no 1080p ratio for gen4.5, an https or data URI only.
        (
            "image_to_video",
            {"model": "gen4.5", "ratio": "1920:1080", "duration": 5, "prompt_image": "data"},
            "ratio",
        ),
        (
            "image_to_video",
            {
                "model": "gen4_turbo",
                "ratio": "1280:720",
                "prompt_image": "http://example.com/cat.png",
            },
            "promptImage",
        ),
        (
            "image_to_video",
            {
                "model": "gen4.5",
                "ratio": "1280:720",
                "duration": 5,
                "prompt_image": [{"uri": "https://example.com/a.png", "position": "last"}],
            },
            "promptImage.0.position",
        ),
    ],
)
def test_runway_refusals_are_the_sdks_bad_request_errors(
    runway: runwayml.RunwayML, endpoint: str, params: dict[str, Any], field: str
) -> None:
    if params.get("prompt_image") == "data":
        params = {**params, "prompt_image": png_data_uri()}
    with pytest.raises(runwayml.BadRequestError) as caught:
        getattr(runway, endpoint).create(prompt_text="a cat", **params)
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict) and body["error"].startswith(field)
    assert [issue["path"] for issue in body["issues"]] == [field.split(".")]


def test_runway_refuses_fields_the_models_type_does_not_declare(
    runway: runwayml.RunwayML,
) -> None:
    # `audio` is a field of Veo3_1, not of Gen4_5.
    with pytest.raises(runwayml.BadRequestError, match="audio"):
        runway.text_to_video.create(
            model="gen4.5",
            prompt_text="a cat",
            ratio="1280:720",
            duration=5,
            extra_body={"audio": True},
        )


def test_runway_status_errors_are_the_sdks_typed_errors(
    runway: runwayml.RunwayML, emulator_server: str
) -> None:
    with pytest.raises(runwayml.NotFoundError):
        runway.tasks.retrieve(str(uuid.uuid4()))
    prompt = unique("[emu create_429=1 retry_after=0]")
    with pytest.raises(runwayml.RateLimitError):
        runway.text_to_video.create(
            model="gen4.5", prompt_text=prompt, ratio="1280:720", duration=2
        )
    old = runwayml.RunwayML(
        api_key=KEY,
        base_url=f"{emulator_server}/runway",
        runway_version="2024-09-13",
        max_retries=0,
    )
    with old, pytest.raises(runwayml.BadRequestError, match="X-Runway-Version"):
        old.tasks.retrieve(str(uuid.uuid4()))


# --------------------------------------------------------------------------------------------
# Luma: lumaai 1.21
# --------------------------------------------------------------------------------------------


@pytest.fixture
def luma(emulator_server: str) -> Iterator[lumaai.LumaAI]:
    with lumaai.LumaAI(
        auth_token=KEY, base_url=f"{emulator_server}/luma/dream-machine/v1", max_retries=0
    ) as client:
        yield client


def luma_generation(luma: lumaai.LumaAI, generation_id: str) -> Generation:
    body = luma.generations.with_raw_response.get(generation_id).json()
    generation: Generation = strict(Generation, body)
    return generation


def test_luma_sdk_generation_runs_to_a_downloadable_mp4(
    luma: lumaai.LumaAI, http: httpx.Client
) -> None:
    raw = luma.generations.video.with_raw_response.create(
        model="ray-flash-2",
        prompt=unique(FAST),
        aspect_ratio="9:16",
        resolution="540p",
        duration="5s",
    )
    created = strict(Generation, raw.json())
    assert created.id and created.state == "dreaming"  # queue=0: at work at once
    assert isinstance(created.request, lumaai.types.generation.RequestGenerationRequest)
    assert created.request.model == "ray-flash-2"

    def completed() -> Generation | None:
        generation = luma_generation(luma, str(created.id))
        return generation if generation.state == "completed" else None

    done = wait_for(completed, what="completed generation")
    assert done.assets is not None and done.assets.video is not None
    assert_mp4(http.get(done.assets.video).raise_for_status().content, 5)

    extended = luma.generations.create(
        model="ray-2",
        prompt=unique(FAST),
        keyframes={"frame0": {"type": "generation", "id": str(done.id)}},
    )
    assert luma_generation(luma, str(extended.id)).request is not None


def test_luma_sdk_sees_each_state_and_deletes(luma: lumaai.LumaAI) -> None:
    queued = luma.generations.create(model="ray-2", prompt=unique(PENDING))
    dreaming = luma.generations.create(model="ray-2", prompt=unique(RUNNING))
    failed = luma.generations.create(model="ray-2", prompt=unique(REFUSE))
    assert luma_generation(luma, str(queued.id)).state == "queued"
    assert luma_generation(luma, str(dreaming.id)).state == "dreaming"

    def failure() -> Generation | None:
        generation = luma_generation(luma, str(failed.id))
        return generation if generation.state == "failed" else None

    assert wait_for(failure, what="failed generation").failure_reason
    for generation in (queued, dreaming):
        luma.generations.delete(str(generation.id))
        with pytest.raises(lumaai.NotFoundError):
            luma.generations.get(str(generation.id))


def test_luma_sdk_lists_generations_newest_first(luma: lumaai.LumaAI) -> None:
    prompts = [unique(PENDING) for _ in range(4)]
    made = [luma.generations.create(model="ray-2", prompt=prompt) for prompt in prompts]
    luma.generations.delete(str(made[2].id))  # deleted: no longer listed
    first = strict(GenerationListResponse, luma.generations.with_raw_response.list(limit=2).json())
    assert [g.id for g in first.generations] == [made[3].id, made[1].id]
    assert (first.count, first.has_more, first.limit, first.offset) == (2, True, 2, 0)
    second = luma.generations.list(limit=2, offset=2)
    assert second.generations[0].id == made[0].id
    request = second.generations[0].request
    assert isinstance(request, lumaai.types.generation.RequestGenerationRequest)
    assert (request.model, request.prompt) == ("ray-2", prompts[0])
    with pytest.raises(lumaai.BadRequestError):
        luma.generations.list(limit=0)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"model": "ray-3"}, "model"),
        ({"model": "ray-2", "aspect_ratio": "5:4"}, "aspect_ratio"),
        ({"model": "ray-2", "resolution": "2k"}, "resolution"),
        ({"model": "ray-2", "duration": "7s"}, "duration"),
        ({"model": "ray-2", "extra_body": {"seed": 3}}, "seed"),
    ],
)
def test_luma_refusals_are_the_sdks_bad_request_errors(
    luma: lumaai.LumaAI, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(lumaai.BadRequestError) as caught:
        luma.generations.create(prompt="a cat", **params)
    body = caught.value.body
    assert isinstance(body, dict) and body["detail"].startswith(field)


# --------------------------------------------------------------------------------------------
# Veo on the Gemini Developer API: google-genai 2.34
# --------------------------------------------------------------------------------------------


@pytest.fixture
def gemini(emulator_server: str) -> genai.Client:
    options = genai_types.HttpOptions(
        base_url=f"{emulator_server}/gemini",
        api_version="v1beta",
        retry_options=genai_types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key=KEY, http_options=options)


def generate(
    gemini: genai.Client,
    model: str,
    prompt: str,
    config: genai_types.GenerateVideosConfig | None = None,
) -> genai_types.GenerateVideosOperation:
    source = genai_types.GenerateVideosSource(prompt=prompt)
    return gemini.models.generate_videos(model=model, source=source, config=config)


def gemini_until_done(
    gemini: genai.Client, operation: genai_types.GenerateVideosOperation
) -> genai_types.GenerateVideosOperation:
    def done() -> genai_types.GenerateVideosOperation | None:
        latest = gemini.operations.get(operation)
        return latest if latest.done else None

    return wait_for(done, what=f"operation {operation.name}")


def test_gemini_sdk_generates_extends_and_downloads(gemini: genai.Client) -> None:
    operation = gemini.models.generate_videos(
        model="veo-3.1-fast-generate-preview",
        source=genai_types.GenerateVideosSource(prompt=unique(FAST)),
        config=genai_types.GenerateVideosConfig(
            aspect_ratio="9:16",
            duration_seconds=4,
            resolution="720p",
            negative_prompt="blur",
            enhance_prompt=True,
            person_generation="allow_adult",
            number_of_videos=1,
        ),
    )
    assert operation.name and not operation.done
    done = gemini_until_done(gemini, operation)
    assert done.error is None and done.response is not None
    [generated] = done.response.generated_videos or []
    assert generated.video is not None and generated.video.uri
    # The SDK takes a file's name from an https:// URI only (`t_file_name`); the emulator
    # speaks plain http, so the test hands the SDK the URI as Google would spell it.
    https_uri = generated.video.uri.replace("http://", "https://", 1)
    assert_mp4(gemini.files.download(file=genai_types.Video(uri=https_uri)), 4)

    extension = gemini.models.generate_videos(
        model="veo-3.1-generate-preview",
        source=genai_types.GenerateVideosSource(prompt=unique(FAST), video=generated.video),
        config=genai_types.GenerateVideosConfig(duration_seconds=8),
    )
    assert gemini_until_done(gemini, extension).response is not None


def test_gemini_sdk_image_to_video_and_each_end(gemini: genai.Client) -> None:
    image = genai_types.Image(
        image_bytes=base64.b64decode(png_data_uri().partition(",")[2]), mime_type="image/png"
    )
    started = gemini.models.generate_videos(
        model="veo-2.0-generate-001",
        source=genai_types.GenerateVideosSource(prompt=unique(FAST), image=image),
    )
    assert gemini_until_done(gemini, started).response is not None

    refused = generate(gemini, "veo-3.0-generate-001", unique(REFUSE))
    blocked = gemini_until_done(gemini, refused).response
    assert blocked is not None and blocked.rai_media_filtered_count == 1
    assert not blocked.generated_videos

    broken = generate(gemini, "veo-3.0-generate-001", unique(FAIL))
    failed = gemini_until_done(gemini, broken)
    assert failed.error is not None and failed.error["code"] == 13


def test_gemini_operations_parse_in_every_state(gemini: genai.Client, http: httpx.Client) -> None:
    operation = generate(gemini, "veo-3.0-fast-generate-001", unique(PENDING))
    parsed = genai_types.GenerateVideosOperation.from_api_response(
        http.get(f"/gemini/v1beta/{operation.name}", headers={"x-goog-api-key": KEY}).json()
    )
    assert parsed.name == operation.name and not parsed.done
    # google-genai has no cancel call: cancel as the REST API does, then read it back.
    http.post(
        f"/gemini/v1beta/{operation.name}:cancel", headers={"x-goog-api-key": KEY}
    ).raise_for_status()
    cancelled = gemini.operations.get(operation)
    assert cancelled.done and cancelled.error is not None and cancelled.error["code"] == 1


@pytest.mark.parametrize(
    ("model", "config", "extra_parameters", "message"),
    [
        # google-genai 2.x refuses generate_audio and seed for the Gemini Developer API.
        ("veo-3.0-generate-001", {}, {"generateAudio": True}, "generateAudio"),
        ("veo-3.1-generate-preview", {}, {"seed": 7}, "seed"),
        ("veo-3.1-generate-preview", {"duration_seconds": 5}, {}, "durationSeconds"),
        (
            "veo-3.1-generate-preview",
            {"duration_seconds": 4, "resolution": "1080p"},
            {},
            "durationSeconds",
        ),
        ("veo-2.0-generate-001", {"duration_seconds": 4}, {}, "durationSeconds"),
        ("veo-2.0-generate-001", {"resolution": "1080p"}, {}, "resolution"),
        ("veo-3.0-generate-001", {"aspect_ratio": "1:1"}, {}, "aspectRatio"),
        ("veo-3.0-generate-001", {"number_of_videos": 2}, {}, "sampleCount"),
    ],
)
def test_gemini_refusals_are_the_sdks_client_errors(
    gemini: genai.Client,
    model: str,
    config: dict[str, Any],
    extra_parameters: dict[str, Any],
    message: str,
) -> None:
    options = genai_types.HttpOptions(extra_body={"parameters": extra_parameters})
    with pytest.raises(genai_errors.ClientError) as caught:
        generate(
            gemini, model, "a cat", genai_types.GenerateVideosConfig(**config, http_options=options)
        )
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert message in str(caught.value.message)


def test_gemini_sdk_itself_refuses_generate_audio_on_the_developer_api(
    gemini: genai.Client,
) -> None:
    with pytest.raises(ValueError, match="generate_audio"):
        config = genai_types.GenerateVideosConfig(generate_audio=True)
        generate(gemini, "veo-3.0-generate-001", "a cat", config)


def test_gemini_status_errors_are_the_sdks_typed_errors(gemini: genai.Client) -> None:
    with pytest.raises(genai_errors.ClientError) as unknown:
        generate(gemini, "veo-3.0-generate-preview", "a cat")
    assert unknown.value.code == 404 and unknown.value.status == "NOT_FOUND"
    with pytest.raises(genai_errors.ClientError) as throttled:
        generate(gemini, "veo-3.0-generate-001", unique("[emu create_429=1]"))
    assert throttled.value.code == 429 and throttled.value.status == "RESOURCE_EXHAUSTED"


# --------------------------------------------------------------------------------------------
# fal: fal-client 1.0
# --------------------------------------------------------------------------------------------

FAL_KLING = "fal-ai/kling-video/v2.1/master/text-to-video"


@pytest.fixture
def fal(emulator_server: str, monkeypatch: pytest.MonkeyPatch) -> fal_client.SyncClient:
    # fal-client builds every queue URL from this module constant (https://queue.fal.run/).
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"{emulator_server}/fal/")
    return fal_client.SyncClient(key=KEY)


def test_fal_client_submits_polls_and_downloads(
    fal: fal_client.SyncClient, http: httpx.Client, emulator_server: str
) -> None:
    handle = fal.submit(
        FAL_KLING, arguments={"prompt": unique(FAST), "duration": "5", "aspect_ratio": "1:1"}
    )
    # Queue URLs as fal gives them: the model path after owner/app is dropped.
    assert handle.status_url == (
        f"{emulator_server}/fal/fal-ai/kling-video/requests/{handle.request_id}/status"
    )
    # Without logs (the client's default) and with them: both parse.
    events = list(handle.iter_events(with_logs=False, interval=0.05))
    assert isinstance(events[-1], fal_client.Completed) and events[-1].logs is None
    final = handle.status(with_logs=True)
    assert isinstance(final, fal_client.Completed)
    assert final.logs and "100%" in final.logs[-1]["message"] and final.error is None
    result = handle.get()
    assert_mp4(http.get(result["video"]["url"]).raise_for_status().content, 5)


def test_fal_client_sees_queue_progress_and_cancels(fal: fal_client.SyncClient) -> None:
    running = fal.submit(FAL_KLING, arguments={"prompt": unique(RUNNING)})
    queued = fal.submit(FAL_KLING, arguments={"prompt": unique(PENDING)})
    status = queued.status(with_logs=True)
    assert isinstance(status, fal_client.Queued) and status.position >= 0
    progress = running.status(with_logs=True)
    assert isinstance(progress, fal_client.InProgress) and progress.logs is not None
    assert isinstance(running.status(), fal_client.InProgress)
    for handle in (queued, running):
        handle.cancel()
        ended = handle.status()
        assert isinstance(ended, fal_client.Completed) and ended.error


def test_fal_refusals_are_the_clients_http_errors(fal: fal_client.SyncClient) -> None:
    with pytest.raises(fal_client.client.FalClientHTTPError) as invalid:
        fal.submit(FAL_KLING, arguments={"prompt": "a cat", "duration": "7"})
    assert invalid.value.status_code == 422
    assert isinstance(invalid.value.message, list)
    assert invalid.value.message[0]["loc"] == ["body", "duration"]
    with pytest.raises(fal_client.client.FalClientHTTPError) as unknown:
        fal.submit("fal-ai/no-such-model", arguments={"prompt": "a cat"})
    assert unknown.value.status_code == 404

    refused = fal.submit(FAL_KLING, arguments={"prompt": unique(REFUSE)})
    with pytest.raises(fal_client.client.FalClientHTTPError) as flagged:
        refused.get()
    assert flagged.value.status_code == 422
    assert flagged.value.message[0]["type"] == "content_policy_violation"


# --------------------------------------------------------------------------------------------
# Replicate: replicate 1.0
# --------------------------------------------------------------------------------------------

REPLICATE_KLING = "kwaivgi/kling-v2.1-master"


@pytest.fixture
def replicate_client(emulator_server: str) -> replicate.Client:
    client = replicate.Client(api_token=KEY, base_url=f"{emulator_server}/replicate")
    client.poll_interval = 0.05
    return client


def replicate_prediction(client: replicate.Client, http: httpx.Client, pid: str) -> Prediction:
    body = http.get(
        f"/replicate/v1/predictions/{pid}", headers={"Authorization": f"Bearer {KEY}"}
    ).json()
    # replicate's models are pydantic.v1 ones, whose Optional fields default to None: the
    # SDK declares every field a prediction carries, so each must be there.
    assert set(Prediction.__fields__) - {"_client"} <= set(body)
    return Prediction.parse_obj(body)


def test_replicate_sdk_runs_and_downloads(replicate_client: replicate.Client) -> None:
    prediction = replicate_client.models.predictions.create(
        model=REPLICATE_KLING,
        input={"prompt": unique(FAST), "duration": 5, "aspect_ratio": "9:16"},
    )
    prediction.wait()
    assert prediction.status == "succeeded" and prediction.completed_at
    assert isinstance(prediction.output, str)
    assert_mp4(FileOutput(prediction.output, replicate_client).read(), 5)
    output = replicate_client.run(REPLICATE_KLING, input={"prompt": unique(FAST)})
    assert isinstance(output, str) and output.startswith("http")


def test_replicate_predictions_parse_in_every_state(
    replicate_client: replicate.Client, http: httpx.Client
) -> None:
    starting = replicate_client.models.predictions.create(
        model=REPLICATE_KLING, input={"prompt": unique(PENDING)}
    )
    processing = replicate_client.models.predictions.create(
        model=REPLICATE_KLING, input={"prompt": unique(RUNNING)}
    )
    assert replicate_prediction(replicate_client, http, starting.id).status == "starting"

    def progressed() -> Prediction | None:
        latest = replicate_prediction(replicate_client, http, processing.id)
        return latest if latest.progress is not None else None

    progress = wait_for(progressed, what="progress in the logs").progress
    assert progress is not None and progress.total == 10
    for prediction in (starting, processing):
        prediction.cancel()
        assert prediction.status == "canceled"
        assert replicate_prediction(replicate_client, http, prediction.id).status == "canceled"

    with pytest.raises(replicate.exceptions.ModelError) as failed:
        replicate_client.run(REPLICATE_KLING, input={"prompt": unique(REFUSE)})
    assert failed.value.prediction.status == "failed"
    assert "E005" in str(failed.value.prediction.error)


def test_replicate_sdk_pages_through_predictions_newest_first(
    replicate_client: replicate.Client, http: httpx.Client
) -> None:
    failing = unique(FAIL)
    made = [
        replicate_client.models.predictions.create(model=REPLICATE_KLING, input={"prompt": failing})
        for _ in range(LIST_PAGE + 1)
    ]
    raw = http.get("/replicate/v1/predictions", headers={"Authorization": f"Bearer {KEY}"})
    assert set(raw.json()) == {"previous", "next", "results"}
    for body in raw.json()["results"]:
        assert set(Prediction.__fields__) - {"_client"} <= set(body)
    first = replicate_client.predictions.list()
    assert first.previous is None and first.next is not None
    assert [p.id for p in first] == [p.id for p in reversed(made[1:])]
    second = replicate_client.predictions.list(first.next)
    assert second[0].id == made[0].id and second[0].input == {"prompt": failing}
    assert second.previous is not None
    assert replicate_client.predictions.list(second.previous)[0].id == made[-1].id
    with pytest.raises(replicate.exceptions.ReplicateError) as invalid:
        replicate_client.predictions.list(f"{first.next}0")
    assert invalid.value.status == 400


def test_replicate_refusals_are_the_sdks_errors(replicate_client: replicate.Client) -> None:
    with pytest.raises(replicate.exceptions.ReplicateError) as invalid:
        replicate_client.models.predictions.create(
            model=REPLICATE_KLING, input={"prompt": "a cat", "duration": 7}
        )
    assert invalid.value.status == 422 and invalid.value.title == "Input validation failed"
    assert "input.duration" in str(invalid.value.detail)
    with pytest.raises(replicate.exceptions.ReplicateError) as unknown:
        replicate_client.models.predictions.create(
            model="nobody/nothing", input={"prompt": "a cat"}
        )
    assert unknown.value.status == 404


# --------------------------------------------------------------------------------------------
# Veo on Vertex AI: google-genai 2.34 in Vertex AI mode
# --------------------------------------------------------------------------------------------


@pytest.fixture
def vertex(emulator_server: str) -> genai.Client:
    options = genai_types.HttpOptions(
        base_url=f"{emulator_server}/vertex/",
        retry_options=genai_types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(
        vertexai=True,
        project="emulator-project",
        location="us-central1",
        credentials=OAuthCredentials(token="emulator-access-token"),
        http_options=options,
    )


def test_vertex_sdk_generates_inline_and_to_cloud_storage(
    vertex: genai.Client, http: httpx.Client
) -> None:
    inline = generate(
        vertex,
        "veo-3.0-fast-generate-001",
        unique(FAST),
        genai_types.GenerateVideosConfig(
            duration_seconds=4, generate_audio=True, seed=7, aspect_ratio="9:16"
        ),
    )
    done = gemini_until_done(vertex, inline)
    assert done.response is not None
    [video] = done.response.generated_videos or []
    assert video.video is not None and video.video.video_bytes is not None
    assert_mp4(video.video.video_bytes, 4)

    stored = generate(
        vertex,
        "veo-3.1-generate-preview",
        unique(FAST),
        genai_types.GenerateVideosConfig(output_gcs_uri="gs://reelay-test/out/"),
    )
    finished = gemini_until_done(vertex, stored)
    assert finished.response is not None
    [saved] = finished.response.generated_videos or []
    assert saved.video is not None and saved.video.uri
    bucket, _, name = saved.video.uri.removeprefix("gs://").partition("/")
    assert bucket == "reelay-test" and name.startswith("out/")
    media = http.get(
        f"/gcs/storage/v1/b/{bucket}/o/{quote(name, safe='')}",
        params={"alt": "media"},
        headers={"Authorization": "Bearer emulator-access-token"},
    )
    assert_mp4(media.raise_for_status().content, 8)

    extension = vertex.models.generate_videos(
        model="veo-3.1-generate-preview",
        source=genai_types.GenerateVideosSource(prompt=unique(FAST), video=saved.video),
        config=genai_types.GenerateVideosConfig(output_gcs_uri="gs://reelay-test/out/"),
    )
    assert gemini_until_done(vertex, extension).response is not None


def test_vertex_operations_end_refused_failed_or_cancelled(
    vertex: genai.Client, http: httpx.Client
) -> None:
    refused = gemini_until_done(vertex, generate(vertex, "veo-3.0-generate-001", unique(REFUSE)))
    assert refused.response is not None and refused.response.rai_media_filtered_count == 1
    failed = gemini_until_done(vertex, generate(vertex, "veo-3.0-generate-001", unique(FAIL)))
    assert failed.error is not None and failed.error["code"] == 13

    pending = generate(vertex, "veo-2.0-generate-001", unique(PENDING))
    assert not vertex.operations.get(pending).done
    http.post(
        f"/vertex/v1beta1/{pending.name}:cancel",
        headers={"Authorization": "Bearer emulator-access-token"},
    ).raise_for_status()
    cancelled = vertex.operations.get(pending)
    assert cancelled.done and cancelled.error is not None and cancelled.error["code"] == 1


@pytest.mark.parametrize(
    ("model", "config", "message"),
    [
        ("veo-3.0-generate-001", {"duration_seconds": 5}, "durationSeconds"),
        ("veo-3.1-generate-preview", {"resolution": "1080p", "duration_seconds": 6}, "1080p"),
        ("veo-3.0-generate-001", {"output_gcs_uri": "s3://bucket/"}, "storageUri"),
        ("veo-3.0-generate-001", {"fps": 30}, "fps"),
        ("veo-2.0-generate-001", {"resolution": "720p"}, "resolution"),
    ],
)
def test_vertex_refusals_are_the_sdks_client_errors(
    vertex: genai.Client, model: str, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(genai_errors.ClientError) as caught:
        generate(vertex, model, "a cat", genai_types.GenerateVideosConfig(**config))
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert message in str(caught.value.message)


def test_vertex_wants_a_token_and_a_known_model(vertex: genai.Client, emulator_server: str) -> None:
    with pytest.raises(genai_errors.ClientError) as unknown:
        generate(vertex, "veo-9.0-generate-001", "a cat")
    assert unknown.value.code == 404 and unknown.value.status == "NOT_FOUND"
    with httpx.Client(base_url=emulator_server) as http:
        path = (
            "/vertex/v1/projects/p/locations/us-central1/publishers/google/models/"
            "veo-3.0-generate-001:predictLongRunning"
        )
        answer = http.post(path, json={"instances": [{"prompt": "a cat"}]})
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


# --------------------------------------------------------------------------------------------
# Callbacks, as the SDKs read them
# --------------------------------------------------------------------------------------------


@dataclass
class Hook:
    """A loopback server that records each POST (headers and body) by path."""

    url: str = ""
    posts: dict[str, list[tuple[dict[str, str], bytes]]] = field(default_factory=dict)

    def wait(self, path: str) -> tuple[dict[str, str], bytes]:
        return wait_for(lambda: (self.posts.get(path) or [None])[0], what=f"POST {path}")


@pytest.fixture(scope="module")
def hook() -> Iterator[Hook]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.posts.setdefault(self.path, []).append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_luma_callbacks_are_generations(luma: lumaai.LumaAI, hook: Hook) -> None:
    path = f"/luma/{uuid.uuid4().hex}"
    created = luma.generations.create(
        model="ray-2", prompt=unique(FAST), callback_url=hook.url + path
    )
    _, body = hook.wait(path)
    generation = strict(Generation, json.loads(body))
    assert generation.id == created.id and generation.state == "completed"


def test_replicate_webhooks_pass_the_sdks_signature_check(
    replicate_client: replicate.Client, hook: Hook
) -> None:
    path = f"/replicate/{uuid.uuid4().hex}"
    created = replicate_client.models.predictions.create(
        model=REPLICATE_KLING,
        input={"prompt": unique(FAST)},
        webhook=hook.url + path,
        webhook_events_filter=["completed"],
    )
    headers, body = hook.wait(path)
    secret = EmulatorConfig.model_fields["replicate_webhook_secret"].default.get_secret_value()
    Webhooks.validate(headers=headers, body=body.decode(), secret=WebhookSigningSecret(key=secret))
    payload = json.loads(body)
    assert set(Prediction.__fields__) - {"_client"} <= set(payload)
    delivered = Prediction.parse_obj(payload)
    assert delivered.id == created.id and delivered.status == "succeeded"
