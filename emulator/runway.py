"""Runway's task API under `/runway`, as /work/shared/PROVIDERS.md describes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.directives import DirectiveError, parse_directives
from emulator.downloads import serve_output, signed_query
from emulator.protocol import Invalid, load_image
from emulator.render import image_phase, scaled_size
from emulator.states import FailureKind, TaskState
from emulator.tasks import CreateFault, TaskStore, iso_utc

PROVIDER = "runway"
API_VERSION = "2024-11-06"
RATIOS = ("1280:720", "720:1280", "1920:1080", "1080:1920", "960:960")
MAX_PROMPT_CHARS = 1000
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class _Model:
    durations: tuple[int, ...]
    text_to_video: bool = True


MODELS = {
    "gen4.5": _Model(durations=tuple(range(2, 11))),
    "gen4_turbo": _Model(durations=tuple(range(2, 11)), text_to_video=False),
    "veo3": _Model(durations=(8,)),
    "veo3.1": _Model(durations=(4, 6, 8)),
    "veo3.1_fast": _Model(durations=(4, 6, 8)),
}

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


class _InvalidRequest(ValueError):
    """A create body Runway would refuse; the message starts with the field name."""


@dataclass(frozen=True)
class _Create:
    model: str
    prompt: str
    ratio: str
    duration: int


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


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


def _is_image_uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://", "data:"))


def _is_prompt_image(value: object) -> bool:
    """A URI, or a non-empty list of `{uri, position: first|last}`; the image is not fetched."""
    if isinstance(value, list):
        return bool(value) and all(
            isinstance(item, dict)
            and _is_image_uri(item.get("uri"))
            and item.get("position", "first") in ("first", "last")
            for item in value
        )
    return _is_image_uri(value)


def _validate(body: Any, *, image: bool) -> _Create:
    if not isinstance(body, dict):
        raise _InvalidRequest("body: must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or model not in MODELS:
        raise _InvalidRequest(f"model: must be one of {', '.join(MODELS)}")
    rule = MODELS[model]
    if not image and not rule.text_to_video:
        raise _InvalidRequest(f"model: {model} supports image_to_video only")

    prompt = body.get("promptText")
    if prompt is None and image:
        prompt = ""  # optional for image_to_video
    if not isinstance(prompt, str) or not (prompt.strip() or image):
        raise _InvalidRequest("promptText: required, a non-empty string")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise _InvalidRequest(f"promptText: must be at most {MAX_PROMPT_CHARS} characters")
    if image and not _is_prompt_image(body.get("promptImage")):
        raise _InvalidRequest(
            "promptImage: required, an http(s) URL, a data URI or a list of {uri, position}"
        )

    ratio = body.get("ratio")
    if ratio not in RATIOS:
        raise _InvalidRequest(f"ratio: must be one of {', '.join(RATIOS)}")
    duration = body.get("duration")
    if not isinstance(duration, int) or isinstance(duration, bool):
        raise _InvalidRequest("duration: required, an integer number of seconds")
    if duration not in rule.durations:
        allowed = ", ".join(str(d) for d in rule.durations)
        raise _InvalidRequest(f"duration: must be one of {allowed} for {model}")

    seed = body.get("seed")
    if seed is not None and (
        not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED
    ):
        raise _InvalidRequest(f"seed: must be an integer from 0 to {MAX_SEED}")
    if not isinstance(body.get("audio", False), bool):
        raise _InvalidRequest("audio: must be a boolean")
    if not isinstance(body.get("negativePrompt", ""), str):
        raise _InvalidRequest("negativePrompt: must be a string")
    return _Create(model=model, prompt=prompt, ratio=ratio, duration=duration)


async def _first_image_frame(prompt_image: Any) -> int:
    """Where an image-to-video render starts: on the first image's frame, when it is one of
    ours (a continuation from an earlier video's last frame); else at frame 0."""
    uri = prompt_image
    if isinstance(prompt_image, list):
        firsts = [item["uri"] for item in prompt_image if item.get("position", "first") == "first"]
        uri = firsts[0] if firsts else None
    if not isinstance(uri, str):
        return 0
    try:
        return image_phase(await load_image("promptImage", uri))
    except (Invalid, OSError, ValueError):
        return 0


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
            return _error(400, "body: must be valid JSON")
        try:
            spec = _validate(body, image=image)
            directives = parse_directives(spec.prompt)
        except DirectiveError as exc:
            return _error(400, f"promptText: {exc}")
        except _InvalidRequest as exc:
            return _error(400, str(exc))
        if (fault := store.directive_fault(PROVIDER, spec.prompt, directives)) is not None:
            return _fault(fault)
        start = 0
        if image:
            start = await _first_image_frame(body.get("promptImage"))
        width, height = (int(side) for side in spec.ratio.split(":"))
        task = store.submit(
            provider=PROVIDER,
            model=spec.model,
            prompt=spec.prompt,
            duration=spec.duration,
            ratio=spec.ratio,
            size=scaled_size(width, height, store.config.render_scale),
            directives=directives,
            start_frame=start,
        )
        return JSONResponse({"id": task.id})

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
        snap = task.snapshot()
        body: dict[str, Any] = {
            "id": task.id,
            "status": _STATUS[snap.state],
            "createdAt": iso_utc(task.created_at),
        }
        if snap.state is TaskState.RUNNING:
            body["progress"] = snap.progress
        elif snap.state is TaskState.SUCCEEDED:
            url = request.url_for("runway_output", task_id=task.id)
            body["output"] = [str(url.include_query_params(**signed_query(store, task)))]
        elif snap.state is TaskState.FAILED and snap.failure is not None:
            body["failure"] = snap.message
            body["failureCode"] = _FAILURE_CODES[snap.failure]
        return JSONResponse(body)

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
