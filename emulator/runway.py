"""Runway's task API under `/runway`, as strict as the `runwayml` SDK's types.

Every create body is checked against the TypedDict the SDK declares for its model and
endpoint (field names, required fields, `Literal` values); a refusal is Runway's 400
`{"error", "issues"}`. Task bodies carry every field the SDK's response models require
(`estimatedCost` while a task runs, `cost` once it ends).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.directives import DirectiveError, parse_directives
from emulator.downloads import serve_output, signed_query
from emulator.protocol import Invalid, load_image
from emulator.render import image_phase, scaled_size
from emulator.states import FailureKind, TaskState
from emulator.tasks import CreateFault, Task, TaskStore, iso_utc

PROVIDER = "runway"
API_VERSION = "2024-11-06"  # runwayml 5.24.0 `RunwayML(runway_version=...)` default
MAX_PROMPT_UTF16_UNITS = 1000
MAX_SEED = 2**32 - 1
MAX_DATA_URI_CHARS = 5 * 1024 * 1024  # "base64 data URI ... up to 5MB"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
_COMMON_GEN4 = frozenset({"model", "promptText", "ratio", "duration", "seed", "contentModeration"})
_GEN4_5_EXTRA = frozenset({"outputFormat", "proresProfile"})
_VEO = frozenset({"model", "promptText", "ratio", "duration", "audio", "negativePrompt", "seed"})
_VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")
_GEN4_IMAGE_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")


@dataclass(frozen=True)
class _Model:
    """What one model accepts on one endpoint (one TypedDict of the SDK)."""

    fields: frozenset[str]  # every field the TypedDict declares
    ratios: tuple[str, ...]
    durations: tuple[int, ...]
    default_duration: int | None  # None: `duration` is Required
    prompt_required: bool
    positions: tuple[str, ...] = ("first",)  # promptImage list positions (image_to_video)
    credits_per_second: int = 12  # Runway's published price per second of output


# runwayml 5.24.0, types/text_to_video_create_params.py: `Gen4_5`, `Veo3_1`, `Veo3_1Fast`.
# Runway models outside these (and ids no current SDK accepts, such as `veo3`) are refused.
TEXT_TO_VIDEO = {
    "gen4.5": _Model(
        fields=_COMMON_GEN4 | _GEN4_5_EXTRA,
        ratios=("1280:720", "720:1280"),
        durations=tuple(range(2, 11)),
        default_duration=None,
        prompt_required=True,
    ),
    "veo3.1": _Model(
        fields=_VEO,
        ratios=_VEO_RATIOS,
        durations=(4, 6, 8),
        default_duration=8,
        prompt_required=True,
        credits_per_second=40,
    ),
    "veo3.1_fast": _Model(
        fields=_VEO,
        ratios=_VEO_RATIOS,
        durations=(4, 6, 8),
        default_duration=8,
        prompt_required=True,
        credits_per_second=15,
    ),
}
# runwayml 5.24.0, types/image_to_video_create_params.py: `Gen4_5`, `Gen4Turbo`, `Veo3_1`,
# `Veo3_1Fast` (`promptImage` is Required in each; gen4.5 also requires `promptText`).
IMAGE_TO_VIDEO = {
    "gen4.5": _Model(
        fields=_COMMON_GEN4 | _GEN4_5_EXTRA | {"promptImage"},
        ratios=_GEN4_IMAGE_RATIOS,
        durations=tuple(range(2, 11)),
        default_duration=None,
        prompt_required=True,
    ),
    "gen4_turbo": _Model(
        fields=_COMMON_GEN4 | {"promptImage"},
        ratios=_GEN4_IMAGE_RATIOS,
        durations=tuple(range(2, 11)),
        default_duration=10,
        prompt_required=False,
        credits_per_second=5,
    ),
    "veo3.1": _Model(
        fields=_VEO | {"promptImage"},
        ratios=_VEO_RATIOS,
        durations=(4, 6, 8),
        default_duration=8,
        prompt_required=False,
        positions=("first", "last"),
        credits_per_second=40,
    ),
    "veo3.1_fast": _Model(
        fields=_VEO | {"promptImage"},
        ratios=_VEO_RATIOS,
        durations=(4, 6, 8),
        default_duration=8,
        prompt_required=False,
        positions=("first", "last"),
        credits_per_second=15,
    ),
}
# types/text_to_video_create_params.py `Gen4_5`: `outputFormat` / `proresProfile` Literals.
OUTPUT_FORMATS = (
    "mp4",
    "prores",
    "png_sequence",
    "hdr10",
    "hlg",
    "sdr_rec709_10bit",
    "hdr_pq_12bit_master",
    "hdr_prores",
    "hdr_png_sequence",
    "hdr_exr_sequence",
    "hdr_exr_acescg_sequence_1_3",
    "hdr_exr_acescg_sequence_2_0",
)
PRORES_PROFILES = ("422", "4444", "422 Proxy", "422 LT", "422 HQ", "4444 XQ")

_STATUS = {
    TaskState.QUEUED: "PENDING",
    TaskState.RUNNING: "RUNNING",
    TaskState.SUCCEEDED: "SUCCEEDED",
    TaskState.FAILED: "FAILED",
    TaskState.CANCELLED: "CANCELLED",
}
_FAILURE_CODES = {
    FailureKind.CONTENT_REFUSED: "SAFETY.INPUT.TEXT",
    FailureKind.INTERNAL: "INTERNAL.BAD_OUTPUT.CODE01",
}


@dataclass(frozen=True)
class _Create:
    model: str
    prompt: str
    ratio: str
    duration: int
    credits: int
    prompt_image: Any = None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _invalid(exc: Invalid) -> JSONResponse:
    """Runway's body validation answer: a summary plus one issue per bad field."""
    issue = {"path": exc.field.split("."), "message": exc.message}
    body = {"error": f"{exc.field}: {exc.message}", "issues": [issue]}
    return JSONResponse(body, status_code=400)


def _fault(fault: CreateFault) -> JSONResponse:
    headers = None if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    return _error(fault.status, fault.message, headers)


def _check_headers(request: Request) -> JSONResponse | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return _error(401, "Missing or invalid API key: send Authorization: Bearer <key>")
    if request.headers.get("x-runway-version") != API_VERSION:
        return _error(400, f"X-Runway-Version header must be {API_VERSION}")
    return None


def _check_uri(field: str, value: object) -> str:
    """An HTTPS URL, a `runway://` upload URI or a base64 image data URI of at most 5 MB."""
    if not isinstance(value, str):
        raise Invalid(field, "must be a string")
    if value.startswith(("https://", "runway://")):
        return value
    if not value.startswith("data:"):
        raise Invalid(field, "must be an HTTPS URL, a Runway upload URI or a data URI")
    if len(value) > MAX_DATA_URI_CHARS:
        raise Invalid(field, "data URIs must be at most 5MB")
    header, _, payload = value.partition(",")
    media_type = header.removeprefix("data:").removesuffix(";base64")
    if not header.endswith(";base64") or media_type not in IMAGE_TYPES:
        raise Invalid(field, f"data URIs must be base64 images of type {', '.join(IMAGE_TYPES)}")
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(field, "is not valid base64") from None
    return value


def _check_prompt_image(value: object, rule: _Model) -> None:
    if not isinstance(value, list):
        _check_uri("promptImage", value)
        return
    if not value:
        raise Invalid("promptImage", "must not be empty")
    positions: list[str] = []
    for index, item in enumerate(value):
        where = f"promptImage.{index}"
        if not isinstance(item, dict) or set(item) != {"uri", "position"}:
            raise Invalid(where, "must be an object with exactly uri and position")
        _check_uri(f"{where}.uri", item["uri"])
        if item["position"] not in rule.positions:
            raise Invalid(f"{where}.position", f"must be one of {', '.join(rule.positions)}")
        positions.append(item["position"])
    if len(set(positions)) != len(positions) or "first" not in positions:
        raise Invalid("promptImage", "needs one first frame and at most one last frame")


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    if name in body and body[name] not in allowed:
        raise Invalid(name, f"must be one of {', '.join(allowed)}")


def _validate(body: Any, *, image: bool) -> _Create:
    if not isinstance(body, dict):
        raise Invalid("body", "must be a JSON object")
    table = IMAGE_TO_VIDEO if image else TEXT_TO_VIDEO
    model = body.get("model")
    if not isinstance(model, str) or model not in table:
        endpoint = "image_to_video" if image else "text_to_video"
        raise Invalid("model", f"must be one of {', '.join(table)} for {endpoint}")
    rule = table[model]
    if unknown := sorted(set(body) - rule.fields):
        raise Invalid(unknown[0], f"is not a parameter of {model}")

    prompt = body.get("promptText")
    if prompt is None and not rule.prompt_required:
        prompt = ""
    if not isinstance(prompt, str) or (rule.prompt_required and not prompt.strip()):
        raise Invalid("promptText", "required, a non-empty string")
    if len(prompt.encode("utf-16-le")) // 2 > MAX_PROMPT_UTF16_UNITS:
        raise Invalid("promptText", f"must be at most {MAX_PROMPT_UTF16_UNITS} characters")
    if image:
        if "promptImage" not in body:
            raise Invalid("promptImage", "required")
        _check_prompt_image(body["promptImage"], rule)

    ratio = body.get("ratio")
    if ratio not in rule.ratios:
        raise Invalid("ratio", f"must be one of {', '.join(rule.ratios)} for {model}")
    duration = body.get("duration", rule.default_duration)
    if duration is None:
        raise Invalid("duration", "required")
    if not isinstance(duration, int) or isinstance(duration, bool):
        raise Invalid("duration", "must be an integer number of seconds")
    if duration not in rule.durations:
        allowed = ", ".join(str(d) for d in rule.durations)
        raise Invalid("duration", f"must be one of {allowed} for {model}")

    seed = body.get("seed")
    if seed is not None and (
        not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED
    ):
        raise Invalid("seed", f"must be an integer from 0 to {MAX_SEED}")
    if not isinstance(body.get("audio", False), bool):
        raise Invalid("audio", "must be a boolean")
    if not isinstance(body.get("negativePrompt", ""), str):
        raise Invalid("negativePrompt", "must be a string")
    _choice(body, "outputFormat", OUTPUT_FORMATS)
    _choice(body, "proresProfile", PRORES_PROFILES)
    moderation = body.get("contentModeration", {})
    if not isinstance(moderation, dict) or set(moderation) - {"publicFigureThreshold"}:
        raise Invalid("contentModeration", "may hold only publicFigureThreshold")
    _choice(moderation, "publicFigureThreshold", ("auto", "low"))
    return _Create(
        model=model,
        prompt=prompt,
        ratio=ratio,
        duration=duration,
        credits=rule.credits_per_second * duration,
        prompt_image=body.get("promptImage"),
    )


async def _first_image_frame(prompt_image: Any) -> int:
    """Where an image-to-video render starts: on the first image's frame, when it is one of
    ours (a continuation from an earlier video's last frame); else at frame 0."""
    uri = prompt_image
    if isinstance(prompt_image, list):
        uri = next(item["uri"] for item in prompt_image if item["position"] == "first")
    if not isinstance(uri, str) or uri.startswith("runway://"):
        return 0
    try:
        return image_phase(await load_image("promptImage", uri))
    except (Invalid, OSError, ValueError):
        return 0


def task_body(task: Task, output_url: Callable[[Task], str]) -> dict[str, Any]:
    """`GET /v1/tasks/{id}`: runwayml 5.24.0 types/task_retrieve_response.py (`Pending`,
    `Running`, `Succeeded`, `Failed`, `Cancelled`)."""
    snap = task.snapshot()
    credits: int = task.details["credits"]
    body: dict[str, Any] = {
        "id": task.id,
        "status": _STATUS[snap.state],
        "createdAt": iso_utc(task.created_at),
    }
    if snap.state in (TaskState.QUEUED, TaskState.RUNNING):
        body["estimatedCost"] = {"credits": credits}
    else:  # a failed or cancelled task is refunded in full
        body["cost"] = {"credits": credits if snap.state is TaskState.SUCCEEDED else 0}
    if snap.state is TaskState.RUNNING:
        body["progress"] = snap.progress
    elif snap.state is TaskState.SUCCEEDED:
        body["output"] = [output_url(task)]
    elif snap.state is TaskState.FAILED and snap.failure is not None:
        body["failure"] = snap.message
        body["failureCode"] = _FAILURE_CODES[snap.failure]
    return body


def build_router(store: TaskStore) -> APIRouter:
    router = APIRouter(prefix="/runway", tags=["runway"])

    async def create(request: Request, *, image: bool) -> Response:
        if (refusal := _check_headers(request)) is not None:
            return refusal
        if (fault := store.begin_create(PROVIDER)) is not None:
            return _fault(fault)
        try:
            body = await request.json()
        except ValueError:
            return _invalid(Invalid("body", "must be valid JSON"))
        try:
            spec = _validate(body, image=image)
            directives = parse_directives(spec.prompt)
        except DirectiveError as exc:
            return _invalid(Invalid("promptText", str(exc)))
        except Invalid as exc:
            return _invalid(exc)
        if (fault := store.directive_fault(PROVIDER, spec.prompt, directives)) is not None:
            return _fault(fault)
        await asyncio.sleep(directives.create_delay)
        start = await _first_image_frame(spec.prompt_image) if image else 0
        width, height = (int(side) for side in spec.ratio.split(":"))
        task = store.submit(
            provider=PROVIDER,
            model=spec.model,
            prompt=spec.prompt,
            duration=spec.duration,
            ratio=spec.ratio,
            size=scaled_size(width, height, store.config.render_scale),
            directives=directives,
            details={"credits": spec.credits, "image": image},
            start_frame=start,
        )
        # types/text_to_video_create_response.py: `id` and `estimatedCost` are required.
        return JSONResponse({"id": task.id, "estimatedCost": {"credits": spec.credits}})

    @router.post("/v1/text_to_video")
    async def text_to_video(request: Request) -> Response:
        return await create(request, image=False)

    @router.post("/v1/image_to_video")
    async def image_to_video(request: Request) -> Response:
        return await create(request, image=True)

    @router.get("/v1/tasks/{task_id}")
    async def get_task(task_id: str, request: Request) -> Response:
        if (refusal := _check_headers(request)) is not None:
            return refusal
        task = store.get(PROVIDER, task_id)
        if task is None:
            return _error(404, "Task not found")
        if task.take_poll_fault():
            return _error(502, "Bad gateway")

        def output_url(done: Task) -> str:
            url = request.url_for("runway_output", task_id=done.id)
            return str(url.include_query_params(**signed_query(store, done)))

        return JSONResponse(task_body(task, output_url))

    @router.delete("/v1/tasks/{task_id}", status_code=204)
    async def cancel_task(task_id: str, request: Request) -> Response:
        if (refusal := _check_headers(request)) is not None:
            return refusal
        task = store.get(PROVIDER, task_id)
        if task is None:
            return _error(404, "Task not found")
        task.cancel()
        return Response(status_code=204)

    @router.get("/files/{task_id}.mp4", name="runway_output")
    async def output(task_id: str, exp: str = "", sig: str = "") -> Response:
        return serve_output(store, store.get(PROVIDER, task_id), exp, sig)

    return router
