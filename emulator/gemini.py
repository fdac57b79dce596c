"""Veo through the Gemini Developer API under `/gemini/v1beta`, as strict as `google-genai`.

Long-running operations without progress; a safety block is a finished operation with
`raiMediaFilteredCount` and no samples; 429s carry `google.rpc.RetryInfo` instead of a
Retry-After header; a video URI needs the API key and redirects to the signed file. Only the
fields google-genai 2.34 sends in Gemini Developer API mode are accepted (it refuses
`generate_audio`, `seed` and the other Vertex-only options before sending); any other name
is Google's 400 "Unknown name". File ids are lowercase alphanumerics: the SDK's
`t_file_name` keeps only `[a-z0-9]+` of a URI's file name.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from emulator.protocol import (
    Body,
    Invalid,
    Rejected,
    add_file_route,
    check_outage,
    decode_base64,
    output_url,
    place,
)
from emulator.render import frame_size
from emulator.states import FailureKind, TaskState
from emulator.tasks import Task, TaskStore

PROVIDER = "gemini"
_FILE_ID = re.compile(r"/files/([0-9a-z]+):download")
SHORT_SIDES = {"720p": 720, "1080p": 1080}
# google-genai 2.34.0 models.py `_GenerateVideosConfig_to_mldev` / `_GenerateVideosParameters
# _to_mldev` / `_GenerateVideosSource_to_mldev`: the names a Gemini Developer API request
# can hold (the SDK raises ValueError for seed, generate_audio, fps, output_gcs_uri, ...).
REQUEST_FIELDS = frozenset({"instances", "parameters", "webhookConfig"})
INSTANCE_FIELDS = frozenset({"prompt", "image", "video", "lastFrame", "referenceImages"})
PARAMETERS = frozenset(
    {
        "sampleCount",
        "durationSeconds",
        "aspectRatio",
        "resolution",
        "personGeneration",
        "negativePrompt",
        "enhancePrompt",
    }
)
ASPECT_RATIOS = ("16:9", "9:16")
PERSON_GENERATION = ("allow_all", "allow_adult", "dont_allow")
_STATUS_WORDS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
}
GRPC_CANCELLED, GRPC_INTERNAL = 1, 13


@dataclass(frozen=True)
class VeoModel:
    durations: tuple[int, ...]
    only_720p: bool = False
    eight_at_1080p: bool = True
    max_samples: int = 1


# The Veo models of the Gemini API (ai.google.dev/gemini-api/docs/video, parameter table):
# Veo 2 makes 5-8 s at 720p only, one or two videos a request; Veo 3.x makes one video of
# 4, 6 or 8 s, and only 8 s at 1080p.
MODELS = {
    "veo-2.0-generate-001": VeoModel(
        durations=(5, 6, 7, 8), only_720p=True, eight_at_1080p=False, max_samples=2
    ),
    "veo-3.0-generate-001": VeoModel(durations=(4, 6, 8)),
    "veo-3.0-fast-generate-001": VeoModel(durations=(4, 6, 8)),
    "veo-3.1-generate-preview": VeoModel(durations=(4, 6, 8)),
    "veo-3.1-fast-generate-preview": VeoModel(durations=(4, 6, 8)),
}


def error_response(
    status: int, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS_WORDS.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status)


def rejection(exc: Rejected) -> JSONResponse:
    if exc.status == 429 and exc.retry_after is not None:
        retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo"}
        return error_response(429, exc.message, [{**retry, "retryDelay": f"{exc.retry_after}s"}])
    return error_response(exc.status, exc.message)


def _authorized(request: Request) -> None:
    if not (request.headers.get("x-goog-api-key") or request.query_params.get("key")):
        raise Rejected(403, "Method doesn't allow unregistered callers: send x-goog-api-key")


def known_names(body: Body, allowed: frozenset[str], where: str) -> None:
    """Google's answer to a field its API does not define (a 400, INVALID_ARGUMENT)."""
    if unknown := sorted(set(body.data) - allowed):
        at = f" at '{where}'" if where else ""
        name = f'"{unknown[0]}"{at}'
        message = f"Invalid JSON payload received. Unknown name {name}: Cannot find field."
        raise Rejected(400, message)


def _image(instance: Body, name: str) -> bytes | None:
    picture = instance.child(name)
    if picture is None:
        return None
    known_names(picture, frozenset({"bytesBase64Encoded", "mimeType"}), f"instances[0].{name}")
    picture.text("mimeType", required=True)
    data = picture.text("bytesBase64Encoded", required=True) or ""
    return decode_base64(f"instances[0].{name}.bytesBase64Encoded", data)


def duration_seconds(parameters: Body, rule: VeoModel) -> int:
    value = parameters.data.get("durationSeconds", 8)
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # the docs show both forms (*unconfirmed*): accept either
    if not isinstance(value, int) or isinstance(value, bool) or value not in rule.durations:
        allowed = ", ".join(map(str, rule.durations))
        raise Invalid("parameters.durationSeconds", f"must be one of {allowed}")
    return value


def veo_parameters(parameters: Body, model: str, rule: VeoModel) -> tuple[str, int, int]:
    """The parameters both Google platforms share: (aspect ratio, short side, seconds)."""
    ratio = parameters.text("aspectRatio", default="16:9", choices=ASPECT_RATIOS) or "16:9"
    resolution = parameters.text("resolution", default="720p", choices=SHORT_SIDES) or "720p"
    if rule.only_720p and parameters.has("resolution"):
        raise Invalid("parameters.resolution", f"is not supported by {model}")
    seconds = duration_seconds(parameters, rule)
    if rule.eight_at_1080p and resolution == "1080p" and seconds != 8:
        raise Invalid("parameters.durationSeconds", "must be 8 at 1080p")
    parameters.text("negativePrompt")
    parameters.text("personGeneration", choices=PERSON_GENERATION)
    parameters.flag("enhancePrompt")
    return ratio, SHORT_SIDES[resolution], seconds


def operation(store: TaskStore, task: Task, base_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"models/{task.model}/operations/{task.id}"}
    snap = task.snapshot()
    if snap.state in (TaskState.QUEUED, TaskState.RUNNING):
        return body
    body["done"] = True
    if snap.state is TaskState.CANCELLED:
        body["error"] = {"code": GRPC_CANCELLED, "message": "Operation cancelled"}
    elif snap.failure is FailureKind.CONTENT_REFUSED:
        body["response"] = _response(
            {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [snap.message]}
        )
    elif snap.state is TaskState.FAILED:
        body["error"] = {"code": GRPC_INTERNAL, "message": snap.message}
    else:
        uri = f"{base_url.rstrip('/')}/{PROVIDER}/v1beta/files/{task.id}:download?alt=media"
        body["response"] = _response({"generatedSamples": [{"video": {"uri": uri}}]})
    return body


def _response(result: dict[str, Any]) -> dict[str, Any]:
    kind = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
    return {"@type": kind, "generateVideoResponse": result}


async def _create(store: TaskStore, request: Request, model: str) -> Task:
    _authorized(request)
    rule = MODELS.get(model)
    if rule is None:
        raise Rejected(404, f"models/{model} is not found for API version v1beta")
    check_outage(store, PROVIDER)
    try:
        body = Body(await request.json())
    except ValueError:
        raise Invalid("body", "must be valid JSON") from None
    known_names(body, REQUEST_FIELDS, "")
    instances = body.data.get("instances")
    if not isinstance(instances, list) or len(instances) != 1:
        raise Invalid("instances", "must hold exactly one instance")
    instance = Body(instances[0], "instances[0]")
    known_names(instance, INSTANCE_FIELDS, "instances[0]")
    image = _image(instance, "image")
    prompt = instance.text("prompt", required=image is None) or ""
    _image(instance, "lastFrame")
    continues: Task | None = None
    if (video := instance.child("video")) is not None:
        # Video extension: the earlier output (by its URI) is carried on.
        known_names(video, frozenset({"uri", "encodedVideo", "encoding"}), "instances[0].video")
        uri = video.text("uri", required=True) or ""
        match = _FILE_ID.search(uri)
        continues = store.get(PROVIDER, match.group(1)) if match else None
        if continues is None or continues.output_path() is None:
            raise Invalid("instances[0].video.uri", "is not a video this API generated")
    parameters = Body(body.data.get("parameters", {}), "parameters")
    known_names(parameters, PARAMETERS, "parameters")
    ratio, short_side, seconds = veo_parameters(parameters, model, rule)
    parameters.integer("sampleCount", between=(1, rule.max_samples))
    return await place(
        store,
        PROVIDER,
        model=model,
        prompt=prompt,
        seconds=seconds,
        aspect_ratio=ratio,
        frame=frame_size(ratio, short_side),
        image=image,
        continues=continues,
        task_id=uuid.uuid4().hex,
    )


def build_router(store: TaskStore) -> APIRouter:
    router = APIRouter(prefix=f"/{PROVIDER}", tags=[PROVIDER])

    @router.post("/v1beta/models/{model}:predictLongRunning")
    async def predict(model: str, request: Request) -> Response:
        try:
            task = await _create(store, request, model)
        except Invalid as exc:
            return error_response(400, str(exc))
        except Rejected as exc:
            return rejection(exc)
        return JSONResponse(operation(store, task, str(request.base_url)))

    def find(request: Request, model: str, op: str) -> Task:
        _authorized(request)
        task = store.get(PROVIDER, op)
        if task is None or task.model != model:
            raise Rejected(404, f"Operation models/{model}/operations/{op} not found")
        return task

    @router.get("/v1beta/models/{model}/operations/{op}")
    async def get_operation(model: str, op: str, request: Request) -> Response:
        try:
            task = find(request, model, op)
        except Rejected as exc:
            return rejection(exc)
        if task.take_poll_fault():
            return error_response(503, "The service is currently unavailable.")
        return JSONResponse(operation(store, task, str(request.base_url)))

    @router.post("/v1beta/models/{model}/operations/{op}:cancel")
    async def cancel_operation(model: str, op: str, request: Request) -> Response:
        try:
            task = find(request, model, op)
        except Rejected as exc:
            return rejection(exc)
        task.cancel()
        return JSONResponse({})

    @router.get("/v1beta/files/{file_id}:download")
    async def download(file_id: str, request: Request, alt: str = "") -> Response:
        try:
            _authorized(request)
        except Rejected as exc:
            return rejection(exc)
        task = store.get(PROVIDER, file_id)
        if task is None or alt != "media" or task.snapshot().state is not TaskState.SUCCEEDED:
            return error_response(404, f"File {file_id} not found")
        return RedirectResponse(output_url(store, task, str(request.base_url)), status_code=302)

    add_file_route(router, store, PROVIDER)
    return router
