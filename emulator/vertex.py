"""Veo on Google Cloud's Vertex AI under `/vertex/{v1,v1beta1}`, as strict as `google-genai`.

The paths google-genai 2.34 uses in Vertex AI mode (`genai.Client(vertexai=True, ...)`):
`projects/{p}/locations/{l}/publishers/google/models/{model}:predictLongRunning` answers an
operation name; `...:fetchPredictOperation` with `{"operationName"}` reads it (no progress);
`{operation}:cancel` cancels. Callers send an OAuth bearer token. The video comes inline
(`bytesBase64Encoded`), or, when the request names `parameters.storageUri`, as a `gs://`
object served by the Cloud Storage JSON API download under `/gcs/storage/v1/b/{bucket}/o/`.
Only the names google-genai's `_GenerateVideosConfig_to_vertex` /
`_GenerateVideosParameters_to_vertex` send are accepted; the Veo models and their
durations, ratios and resolutions are Gemini's (`emulator.gemini.MODELS`).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.downloads import serve_file
from emulator.gemini import (
    GRPC_CANCELLED,
    GRPC_INTERNAL,
    MODELS,
    error_response,
    known_names,
    rejection,
    veo_parameters,
)
from emulator.protocol import Body, Invalid, Rejected, check_outage, decode_base64, place
from emulator.render import frame_size
from emulator.states import FailureKind, TaskState
from emulator.tasks import Task, TaskStore

PROVIDER = "vertex"
API_VERSIONS = ("v1", "v1beta1")
MAX_SEED = 2**32 - 1
REQUEST_FIELDS = frozenset({"instances", "parameters", "labels"})
INSTANCE_FIELDS = frozenset({"prompt", "image", "video", "lastFrame", "referenceImages", "mask"})
MEDIA_FIELDS = frozenset({"bytesBase64Encoded", "gcsUri", "mimeType"})
# google-genai 2.34.0 models.py `_GenerateVideosConfig_to_vertex`: every `parameters` name.
PARAMETERS = frozenset(
    {
        "sampleCount",
        "storageUri",
        "fps",
        "durationSeconds",
        "seed",
        "aspectRatio",
        "resolution",
        "personGeneration",
        "pubsubTopic",
        "negativePrompt",
        "enhancePrompt",
        "generateAudio",
        "compressionQuality",
        "resizeMode",
    }
)
MAX_SAMPLES = 4
_RESOURCE = "projects/{project}/locations/{location}/publishers/google/models/{model}"
_OUTPUT = re.compile(r"^gs://[^/]+/(?:.+/)?([0-9a-f-]{36})/sample_0\.mp4$")
_RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"


def _authorized(request: Request) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Rejected(401, "Request is missing required authentication credential.")


def _media(instance: Body, name: str) -> Body | None:
    """An image or video of the instance: inline bytes or a `gs://` URI, and its type."""
    media = instance.child(name)
    if media is None:
        return None
    known_names(media, MEDIA_FIELDS, f"instances[0].{name}")
    if media.has("bytesBase64Encoded") == media.has("gcsUri"):
        raise Invalid(f"instances[0].{name}", "needs exactly one of bytesBase64Encoded, gcsUri")
    if media.has("gcsUri") and not (media.text("gcsUri") or "").startswith("gs://"):
        raise Invalid(f"instances[0].{name}.gcsUri", "must be a gs:// URI")
    return media


def _image(instance: Body, name: str) -> bytes | None:
    media = _media(instance, name)
    if media is None or not media.has("bytesBase64Encoded"):
        return None  # a gs:// image: any picture is a fine first frame
    media.text("mimeType", required=True)
    data = media.text("bytesBase64Encoded") or ""
    return decode_base64(f"instances[0].{name}.bytesBase64Encoded", data)


def _parameters(body: Body, model: str) -> tuple[Body, tuple[str, int, int]]:
    parameters = Body(body.data.get("parameters", {}), "parameters")
    known_names(parameters, PARAMETERS, "parameters")
    shape = veo_parameters(parameters, model, MODELS[model])
    parameters.integer("sampleCount", between=(1, MAX_SAMPLES))
    parameters.integer("seed", between=(0, MAX_SEED))
    parameters.flag("generateAudio")
    parameters.integer("fps", choices=(24,))
    parameters.text("pubsubTopic")
    parameters.text("compressionQuality", choices=("optimized", "lossless"))
    parameters.text("resizeMode", choices=("pad", "crop"))
    storage = parameters.text("storageUri")
    if storage is not None and not storage.startswith("gs://"):
        raise Invalid("parameters.storageUri", "must be a gs:// URI")
    return parameters, shape


async def _create(store: TaskStore, request: Request, model: str) -> Task:
    _authorized(request)
    if model not in MODELS:
        raise Rejected(404, f"Publisher Model `publishers/google/models/{model}` not found.")
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
    _image(instance, "lastFrame")
    prompt = instance.text("prompt", required=image is None) or ""
    continues: Task | None = None
    if (video := _media(instance, "video")) is not None and video.has("gcsUri"):
        # Video extension of an earlier output (by its gs:// object) carries it on.
        match = _OUTPUT.match(video.text("gcsUri") or "")
        continues = store.get(PROVIDER, match.group(1)) if match else None
        if continues is None or continues.output_path() is None:
            raise Invalid("instances[0].video.gcsUri", "is not a video this API generated")
    parameters, (ratio, short_side, seconds) = _parameters(body, model)
    task = await place(
        store,
        PROVIDER,
        model=model,
        prompt=prompt,
        seconds=seconds,
        aspect_ratio=ratio,
        frame=frame_size(ratio, short_side),
        image=image,
        continues=continues,
    )
    if (storage := parameters.text("storageUri")) is not None:
        task.details["storage_uri"] = storage
    return task


def _gcs_object(task: Task) -> tuple[str, str] | None:
    """(bucket, object name) the task's video is written to, when it asked for storage."""
    storage: str | None = task.details.get("storage_uri")
    if storage is None:
        return None
    bucket, _, prefix = storage.removeprefix("gs://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/{task.id}/sample_0.mp4" if prefix else f"{task.id}/sample_0.mp4"


def operation(task: Task, name: str) -> dict[str, Any]:
    """The operation as `fetchPredictOperation` answers it (google-genai's
    `_GenerateVideosOperation_from_vertex` reads `response.videos[]`)."""
    body: dict[str, Any] = {"name": name}
    snap = task.snapshot()
    if snap.state in (TaskState.QUEUED, TaskState.RUNNING):
        return body
    body["done"] = True
    response: dict[str, Any] = {"@type": _RESPONSE_TYPE}
    if snap.state is TaskState.CANCELLED:
        body["error"] = {"code": GRPC_CANCELLED, "message": "Operation cancelled"}
    elif snap.failure is FailureKind.CONTENT_REFUSED:
        body["response"] = response | {
            "raiMediaFilteredCount": 1,
            "raiMediaFilteredReasons": [snap.message],
        }
    elif snap.state is TaskState.FAILED:
        body["error"] = {"code": GRPC_INTERNAL, "message": snap.message}
    elif (path := task.output_path()) is not None:
        if (stored := _gcs_object(task)) is not None:
            video = {"gcsUri": f"gs://{stored[0]}/{stored[1]}", "mimeType": "video/mp4"}
        else:
            video = {
                "bytesBase64Encoded": base64.b64encode(path.read_bytes()).decode(),
                "mimeType": "video/mp4",
            }
        body["response"] = response | {"videos": [video]}
    return body


def build_router(store: TaskStore) -> APIRouter:
    router = APIRouter(tags=[PROVIDER])
    models = "/vertex/{version}/projects/{project}/locations/{location}/publishers/google/models"

    def operation_task(version: str, name: str, model: str | None = None) -> Task:
        """The task behind an operation name (of `model`, when given)."""
        found = re.fullmatch(
            r"projects/[^/]+/locations/[^/]+/publishers/google/models/([^/]+)/operations/(.+)",
            name,
        )
        task = store.get(PROVIDER, found.group(2)) if found and version in API_VERSIONS else None
        if task is None or found is None or model not in (None, found.group(1)):
            raise Rejected(404, f"Operation {name} not found")
        return task

    @router.post(models + "/{model}:predictLongRunning")
    async def predict(
        version: str, project: str, location: str, model: str, request: Request
    ) -> Response:
        try:
            if version not in API_VERSIONS:
                raise Rejected(404, f"API version {version} is not found")
            task = await _create(store, request, model)
        except Invalid as exc:
            return error_response(400, str(exc))
        except Rejected as exc:
            return rejection(exc)
        resource = _RESOURCE.format(project=project, location=location, model=model)
        return JSONResponse({"name": f"{resource}/operations/{task.id}"})

    @router.post(models + "/{model}:fetchPredictOperation")
    async def fetch(version: str, model: str, request: Request) -> Response:
        try:
            _authorized(request)
            body = Body(await request.json())
            name = body.text("operationName", required=True) or ""
            task = operation_task(version, name, model)
        except Invalid as exc:
            return error_response(400, str(exc))
        except Rejected as exc:
            return rejection(exc)
        if task.take_poll_fault():
            return error_response(503, "The service is currently unavailable.")
        return JSONResponse(operation(task, name))

    @router.post("/vertex/{version}/{name:path}:cancel")
    async def cancel(version: str, name: str, request: Request) -> Response:
        try:
            _authorized(request)
            task = operation_task(version, name)
        except Rejected as exc:
            return rejection(exc)
        task.cancel()
        return JSONResponse({})

    @router.get("/gcs/storage/v1/b/{bucket}/o/{name:path}")
    async def gcs_download(bucket: str, name: str, request: Request, alt: str = "") -> Response:
        """Cloud Storage's JSON API download of a stored output (`?alt=media`)."""
        try:
            _authorized(request)
        except Rejected as exc:
            return rejection(exc)
        task = next((t for t in store.tasks(PROVIDER) if _gcs_object(t) == (bucket, name)), None)
        if task is None or alt != "media":
            return error_response(404, f"No such object: {bucket}/{name}")
        return serve_file(store, task)

    return router
