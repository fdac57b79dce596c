"""Luma Dream Machine under `/luma/dream-machine/v1`, as /work/shared/PROVIDERS.md describes it.

Generations report no progress; a deleted generation is gone (404). Callbacks carry the
whole generation, unsigned.
"""

from __future__ import annotations

import json
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
MODELS = ("ray-2", "ray-flash-2")
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
SHORT_SIDES = {"540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}
DURATIONS = {"5s": 5, "9s": 9}
MAX_PROMPT_CHARS = 5000

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


async def _create(store: TaskStore, request: Request) -> Task:
    _authorized(request)
    check_outage(store, PROVIDER)
    try:
        data = await request.json()
    except ValueError:
        raise Invalid("body", "must be valid JSON") from None
    body = Body(data)
    model = body.text("model", default="ray-2", choices=MODELS)
    prompt = body.text("prompt", required=True) or ""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise Invalid("prompt", f"must be at most {MAX_PROMPT_CHARS} characters")
    ratio = body.text("aspect_ratio", default="16:9", choices=ASPECT_RATIOS) or "16:9"
    resolution = body.text("resolution", default="720p", choices=SHORT_SIDES) or "720p"
    duration = body.text("duration", default="5s", choices=DURATIONS) or "5s"
    body.flag("loop")
    callback_url = body.text("callback_url")
    image: bytes | None = None
    continues: Task | None = None
    if (keyframes := body.child("keyframes")) is not None:
        for name in ("frame0", "frame1"):
            if (frame := keyframes.child(name)) is not None:
                kind = frame.text("type", required=True, choices=("image", "generation"))
                if kind == "generation":
                    # Extending an earlier generation: it must be ours and finished.
                    previous = store.get(PROVIDER, frame.text("id", required=True) or "")
                    if previous is None or previous.output_path() is None:
                        raise Invalid(f"keyframes.{name}.id", "is not a completed generation")
                    if name == "frame0":
                        continues = previous
                    continue
                url = frame.text("url", required=True) or ""
                picture = await load_image(f"keyframes.{name}.url", url, data_uri=False)
                if name == "frame0":  # the end frame (frame1) does not move the start
                    image = picture
    task = await place(
        store,
        PROVIDER,
        model=model or "ray-2",
        prompt=prompt,
        seconds=DURATIONS[duration],
        aspect_ratio=ratio,
        frame=frame_size(ratio, SHORT_SIDES[resolution]),
        image=image,
        callback_url=callback_url,
        continues=continues,
    )
    task.echo = data
    return task


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
