"""Luma Dream Machine under `/luma/dream-machine/v1`, as strict as the `lumaai` SDK's types.

Generations report no progress; a deleted generation is gone (404, and no longer listed).
Callbacks carry the whole generation, unsigned. A create body may hold only the fields of
lumaai 1.21.0 `GenerationCreateParams` (model required); the generation echoes it as its
`request`. `GET /generations?limit=&offset=` lists them newest first as lumaai's
`GenerationListResponse` (`generations`, `count`, `has_more`, `limit`, `offset`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.callbacks import Builder, Delivery
from emulator.protocol import (
    Body,
    Invalid,
    Rejected,
    add_file_route,
    check_outage,
    load_image,
    output_url,
    place,
)
from emulator.render import frame_size
from emulator.states import TaskState
from emulator.tasks import Task, TaskStore, iso_utc

PROVIDER = "luma"
MAX_PROMPT_CHARS = 5000
LIST_LIMIT = 10  # generations per page when `limit` is not given
MAX_LIST_LIMIT = 100
# lumaai 1.21.0 types/generation_create_params.py `GenerationCreateParams` (the video
# generation body) and types/generation.py `RequestGenerationRequest` (its echo).
FIELDS = frozenset(
    {
        "model",
        "prompt",
        "aspect_ratio",
        "resolution",
        "duration",
        "loop",
        "keyframes",
        "callback_url",
        "concepts",
        "generation_type",
    }
)


@dataclass(frozen=True)
class _Model:
    aspect_ratios: tuple[str, ...]
    short_sides: dict[str, int]  # resolution -> pixels on the short side
    durations: dict[str, int]


_RAY_ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
_RAY_RESOLUTIONS = {"540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}
_RAY_DURATIONS = {"5s": 5, "9s": 9}
# `model: Literal["ray-2", "ray-flash-2"]`; the SDK types both models' `aspect_ratio`,
# `resolution` ("540p" | "720p" | "1080p" | "4k") and `duration` ("5s" | "9s") alike.
MODELS = {
    "ray-2": _Model(_RAY_ASPECT_RATIOS, _RAY_RESOLUTIONS, _RAY_DURATIONS),
    "ray-flash-2": _Model(_RAY_ASPECT_RATIOS, _RAY_RESOLUTIONS, _RAY_DURATIONS),
}

_STATES = {
    TaskState.QUEUED: "queued",
    TaskState.RUNNING: "dreaming",
    TaskState.SUCCEEDED: "completed",
    TaskState.FAILED: "failed",
}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _authorized(request: Request) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Rejected(401, "Invalid authentication credentials")


def generation(store: TaskStore, task: Task, base_url: str) -> dict[str, Any]:
    snap = task.snapshot()
    body: dict[str, Any] = {
        "id": task.id,
        "generation_type": "video",
        "state": _STATES.get(snap.state, "failed"),
        "failure_reason": None,
        "created_at": iso_utc(task.created_at),
        "assets": None,
        "model": task.model,
        "request": task.echo,
    }
    if snap.state is TaskState.SUCCEEDED:
        body["assets"] = {"video": output_url(store, task, base_url)}
    elif snap.state is TaskState.FAILED:
        body["failure_reason"] = snap.message
    return body


async def _keyframes(store: TaskStore, keyframes: Body | None) -> tuple[bytes | None, Task | None]:
    """The start image and the generation continued, from `keyframes.frame0` (an end frame,
    `frame1`, is checked but does not move the start)."""
    image: bytes | None = None
    continues: Task | None = None
    if keyframes is None:
        return image, continues
    if unknown := sorted(set(keyframes.data) - {"frame0", "frame1"}):
        raise Invalid(f"keyframes.{unknown[0]}", "is not a keyframe")
    for name in ("frame0", "frame1"):
        if (frame := keyframes.child(name)) is None:
            continue
        kind = frame.text("type", required=True, choices=("image", "generation"))
        reference = "id" if kind == "generation" else "url"
        if set(frame.data) != {"type", reference}:
            raise Invalid(f"keyframes.{name}", f"must hold exactly type and {reference}")
        if kind == "generation":
            # Extending an earlier generation: it must be ours and finished.
            previous = store.get(PROVIDER, frame.text("id", required=True) or "")
            if previous is None or previous.output_path() is None:
                raise Invalid(f"keyframes.{name}.id", "is not a completed generation")
            continues = previous if name == "frame0" else continues
            continue
        url = frame.text("url", required=True) or ""
        picture = await load_image(f"keyframes.{name}.url", url, data_uri=False)
        image = picture if name == "frame0" else image
    return image, continues


async def _create(store: TaskStore, request: Request) -> Task:
    _authorized(request)
    check_outage(store, PROVIDER)
    try:
        data = await request.json()
    except ValueError:
        raise Invalid("body", "must be valid JSON") from None
    body = Body(data)
    if unknown := sorted(set(body.data) - FIELDS):
        raise Invalid(unknown[0], "is not a field of a video generation request")
    model = body.text("model", required=True, choices=MODELS) or ""
    rule = MODELS[model]
    body.text("generation_type", choices=("video",))
    prompt = body.text("prompt", required=not body.has("keyframes")) or ""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise Invalid("prompt", f"must be at most {MAX_PROMPT_CHARS} characters")
    ratio = body.text("aspect_ratio", default="16:9", choices=rule.aspect_ratios) or "16:9"
    resolution = body.text("resolution", default="720p", choices=rule.short_sides) or "720p"
    duration = body.text("duration", default="5s", choices=rule.durations) or "5s"
    body.flag("loop")
    callback_url = body.text("callback_url")
    concepts = body.data.get("concepts", [])
    if not isinstance(concepts, list) or not all(
        isinstance(c, dict) and set(c) == {"key"} and isinstance(c["key"], str) for c in concepts
    ):
        raise Invalid("concepts", "must be a list of {key}")
    image, continues = await _keyframes(store, body.child("keyframes"))
    task = await place(
        store,
        PROVIDER,
        model=model,
        prompt=prompt,
        seconds=rule.durations[duration],
        aspect_ratio=ratio,
        frame=frame_size(ratio, rule.short_sides[resolution]),
        image=image,
        callback_url=callback_url,
        continues=continues,
    )
    task.echo = data
    return task


def _count(request: Request, name: str, default: int, *, low: int, high: int | None = None) -> int:
    """A whole-number query parameter within [low, high]."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) else None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise Rejected(400, f"{name} must be a whole number {bounds}")
    return value


def build_router(store: TaskStore) -> APIRouter:
    router = APIRouter(prefix=f"/{PROVIDER}", tags=[PROVIDER])
    api = "/dream-machine/v1"

    def callback(base_url: str) -> Builder:
        def build(task: Task) -> Delivery | None:
            if task.cancelled:
                return None  # deleted: nothing to report
            return Delivery(json.dumps(generation(store, task, base_url)).encode())

        return build

    async def create(request: Request) -> Response:
        try:
            task = await _create(store, request)
        except Invalid as exc:
            return _error(400, str(exc))
        except Rejected as exc:
            return _error(exc.status, exc.message, exc.headers())
        if task.callback_url:
            store.callbacks.schedule(task, callback(str(request.base_url)))
        return JSONResponse(generation(store, task, str(request.base_url)), status_code=201)

    router.add_api_route(f"{api}/generations/video", create, methods=["POST"])
    router.add_api_route(f"{api}/generations", create, methods=["POST"])  # older docs

    def live(request: Request, generation_id: str) -> Task:
        _authorized(request)
        task = store.get(PROVIDER, generation_id)
        if task is None or task.cancelled:
            raise Rejected(404, "Generation not found")
        return task

    @router.get(api + "/generations/{generation_id}")
    async def get_generation(generation_id: str, request: Request) -> Response:
        try:
            task = live(request, generation_id)
        except Rejected as exc:
            return _error(exc.status, exc.message)
        if task.take_poll_fault():
            return _error(502, "Bad gateway")
        return JSONResponse(generation(store, task, str(request.base_url)))

    @router.get(api + "/generations")
    async def list_generations(request: Request) -> Response:
        try:
            _authorized(request)
            limit = _count(request, "limit", LIST_LIMIT, low=1, high=MAX_LIST_LIMIT)
            offset = _count(request, "offset", 0, low=0)
        except Rejected as exc:
            return _error(exc.status, exc.message)
        live = [task for task in reversed(store.tasks(PROVIDER)) if not task.cancelled]
        page = live[offset : offset + limit]
        base_url = str(request.base_url)
        return JSONResponse(
            {
                "generations": [generation(store, task, base_url) for task in page],
                "count": len(page),
                "has_more": offset + limit < len(live),
                "limit": limit,
                "offset": offset,
            }
        )

    @router.delete(api + "/generations/{generation_id}", status_code=204)
    async def delete_generation(generation_id: str, request: Request) -> Response:
        try:
            task = live(request, generation_id)
        except Rejected as exc:
            return _error(exc.status, exc.message)
        task.cancelled = True  # deleted, even when finished: it answers 404 from now on
        return Response(status_code=204)

    @router.get(api + "/credits")
    async def credits(request: Request) -> Response:
        try:
            _authorized(request)
        except Rejected as exc:
            return _error(exc.status, exc.message)
        return JSONResponse({"credit_balance": 1_000_000.0})

    add_file_route(router, store, PROVIDER)
    return router
