"""Replicate's predictions API under `/replicate`, as /work/shared/PROVIDERS.md describes it.

Statuses starting / processing / succeeded / failed / canceled with tqdm `logs`; every
prediction carries each field replicate 1.0.7 `replicate.prediction.Prediction` requires
(its Optional fields have no defaults: `started_at`, `completed_at`, `metrics` are null
until known); errors are problem JSON (`title`, `detail`, `status`, and `invalid_fields` on
a 422); a throttled create answers 429 with Retry-After; the `completed` webhook is signed
per Standard Webhooks. `GET /v1/predictions` lists predictions newest first, `LIST_PAGE` a
page, as replicate 1.0.7's `Page` (`results`, and `next` / `previous`: the URL of the page
after / before, with an opaque `cursor`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
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
    progress_logs,
)
from emulator.render import frame_size
from emulator.states import FailureKind, TaskState
from emulator.tasks import Task, TaskStore, iso_utc

PROVIDER = "replicate"
WIDE_SQUARE = ("16:9", "9:16", "1:1")
SEEDANCE_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
SHORT_SIDES = {"480p": 480, "512p": 512, "720p": 720, "768p": 768, "1080p": 1080}
WAN_SIZES = ("832*480", "480*832", "1280*720", "720*1280", "1920*1080", "1080*1920")
WEBHOOK_EVENTS = ("start", "output", "logs", "completed")
MAX_WAIT_SECONDS = 60.0
LIST_PAGE = 100
FLAGGED = "The input or output was flagged as sensitive. Please try again with different inputs."
_STATUS = {
    TaskState.QUEUED: "starting",
    TaskState.RUNNING: "processing",
    TaskState.SUCCEEDED: "succeeded",
    TaskState.FAILED: "failed",
    TaskState.CANCELLED: "canceled",
}


@dataclass(frozen=True)
class _Order:
    seconds: int
    ratio: str
    frame: tuple[int, int]
    image_field: str
    image_required: bool = False


def _problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"title": title, "detail": detail, "status": status}
    return JSONResponse(body, status_code=status, headers=headers)


def _rejection(exc: Rejected) -> JSONResponse:
    if exc.status == 429:
        seconds = exc.retry_after or 1
        detail = f"Request was throttled. Expected available in {seconds} second(s)."
        return _problem(429, "Request was throttled", detail, exc.headers())
    return _problem(exc.status, "Error", exc.message, exc.headers())


def _invalid(exc: Invalid) -> JSONResponse:
    body = {
        "title": "Input validation failed",
        "detail": f"- {exc.field}: {exc.message}",
        "status": 422,
        "invalid_fields": [{"type": "invalid", "field": exc.field, "description": exc.message}],
    }
    return JSONResponse(body, status_code=422)


def _authorized(request: Request) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token") or not key.strip():
        raise Rejected(401, "You did not pass a valid authentication token")


def _order(model: str, inp: Body) -> _Order:
    """Validate one family's input (the family follows from `owner/name`)."""
    if model.startswith("kwaivgi/kling"):
        seconds = inp.integer("duration", default=5, choices=(5, 10)) or 5
        ratio = inp.text("aspect_ratio", default="16:9", choices=WIDE_SQUARE) or "16:9"
        inp.text("negative_prompt")
        inp.flag("generate_audio")
        required = model == "kwaivgi/kling-v2.1"  # the non-master 2.1 is image-to-video only
        return _Order(seconds, ratio, frame_size(ratio, 1080), "start_image", required)
    if model.startswith("minimax/hailuo"):
        seconds = inp.integer("duration", default=6, choices=(6, 10)) or 6
        resolution = inp.text("resolution", default="768p", choices=("512p", "768p", "1080p"))
        if resolution == "1080p" and seconds != 6:
            raise Invalid("input.duration", "must be 6 at 1080p")
        inp.flag("prompt_optimizer")
        frame = frame_size("16:9", SHORT_SIDES[resolution or "768p"])
        return _Order(seconds, "16:9", frame, "first_frame_image", model.endswith("-fast"))
    if model.startswith("bytedance/seedance"):
        seconds = inp.integer("duration", default=5, between=(2, 12)) or 5
        resolution = inp.text("resolution", default="1080p", choices=("480p", "720p", "1080p"))
        ratio = inp.text("aspect_ratio", default="16:9", choices=SEEDANCE_RATIOS) or "16:9"
        inp.integer("seed")
        inp.flag("generate_audio")
        inp.flag("camera_fixed")
        return _Order(
            seconds, ratio, frame_size(ratio, SHORT_SIDES[resolution or "1080p"]), "image"
        )
    if model.startswith("wan-video/wan"):
        seconds = inp.integer("duration", default=5, choices=(5, 10)) or 5
        inp.text("negative_prompt")
        inp.integer("seed")
        inp.flag("enable_prompt_expansion")
        if "-i2v" in model:
            resolution = inp.text("resolution", default="720p", choices=("480p", "720p", "1080p"))
            frame = frame_size("16:9", SHORT_SIDES[resolution or "720p"])
            return _Order(seconds, "16:9", frame, "image", image_required=True)
        size = inp.text("size", default="1280*720", choices=WAN_SIZES) or "1280*720"
        width, height = (int(side) for side in size.split("*"))
        return _Order(seconds, "16:9" if width > height else "9:16", (width, height), "image")
    raise Rejected(404, "The requested resource could not be found.")


def prediction(store: TaskStore, task: Task, base_url: str) -> dict[str, Any]:
    snap = task.snapshot()
    root = f"{base_url.rstrip('/')}/{PROVIDER}/v1/predictions/{task.id}"
    body: dict[str, Any] = {
        "id": task.id,
        "model": task.model,
        "version": "emulator",
        "input": task.echo.get("input", {}),
        "logs": "\n".join(progress_logs(snap)),
        "output": None,
        "data_removed": False,
        "error": None,
        "status": _STATUS[snap.state],
        "created_at": iso_utc(task.created_at),
        "started_at": None,
        "completed_at": None,
        "metrics": None,
        "urls": {"get": root, "cancel": f"{root}/cancel"},
    }
    if snap.state is not TaskState.QUEUED:
        body["started_at"] = iso_utc(task.created_at + task.queue_seconds)
    if task.terminal:
        body["completed_at"] = iso_utc(min(time.time(), task.ends_at))
        body["metrics"] = {"predict_time": task.generation_seconds}
    if snap.state is TaskState.SUCCEEDED:
        body["output"] = output_url(store, task, base_url)
    elif snap.failure is FailureKind.CONTENT_REFUSED:
        body["error"] = f"{FLAGGED} (E005)"
    elif snap.state is TaskState.FAILED:
        body["error"] = snap.message
    return body


def webhook_builder(store: TaskStore, base_url: str) -> Builder:
    secret = store.config.replicate_webhook_secret.get_secret_value()
    key = base64.b64decode(secret.removeprefix("whsec_"))

    def build(task: Task) -> Delivery:
        body = json.dumps(prediction(store, task, base_url)).encode()
        msg_id, timestamp = f"msg_{task.id}", str(int(time.time()))
        digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
        }
        return Delivery(body, headers)

    return build


async def _create(store: TaskStore, request: Request, model: str) -> tuple[Task, list[str]]:
    _authorized(request)
    check_outage(store, PROVIDER)
    try:
        body = Body(await request.json())
    except ValueError:
        raise Invalid("body", "must be valid JSON") from None
    inp = body.child("input")
    if inp is None:
        raise Invalid("input", "required")
    prompt = inp.text("prompt", required=True) or ""
    order = _order(model, inp)
    image_ref = inp.text(order.image_field, required=order.image_required)
    image: bytes | None = None
    if image_ref is not None:
        image = await load_image(f"input.{order.image_field}", image_ref)
    webhook = body.text("webhook")
    events = body.data.get("webhook_events_filter", list(WEBHOOK_EVENTS))
    if not isinstance(events, list) or not set(events) <= set(WEBHOOK_EVENTS):
        raise Invalid("webhook_events_filter", f"must list events of {', '.join(WEBHOOK_EVENTS)}")
    task = await place(
        store,
        PROVIDER,
        model=model,
        prompt=prompt,
        seconds=order.seconds,
        aspect_ratio=order.ratio,
        frame=order.frame,
        image=image,
        callback_url=webhook,
    )
    task.echo = body.data
    return task, events


def _prefer_wait(header: str | None) -> float | None:
    """Seconds a create may block (`Prefer: wait` or `wait=N`, at most 60), else None."""
    if header is None or not header.strip().startswith("wait"):
        return None
    _, _, seconds = header.strip().partition("=")
    return min(float(seconds), MAX_WAIT_SECONDS) if seconds.isdigit() else MAX_WAIT_SECONDS


async def _blocking_answer(store: TaskStore, task: Task, base_url: str, wait: float) -> Response:
    """The create answer under `Prefer: wait`: held until the prediction ends or `wait` runs
    out; one still unfinished then reads `starting` (as Replicate answers, per replicate
    1.0.7 `run`)."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        if task.terminal:
            break
        await asyncio.sleep(min(left, 0.05))
    body = prediction(store, task, base_url)
    if not task.terminal:
        body["status"] = "starting"
    return JSONResponse(body, status_code=201)


def _cursor(direction: str, task_id: str) -> str:
    return f"{direction}:{task_id}".encode().hex()


def _page_start(newest_first: list[Task], cursor: str | None) -> int:
    """Where the page a cursor names begins: after, or a page before, the task it holds."""
    if cursor is None:
        return 0
    try:
        direction, _, task_id = bytes.fromhex(cursor).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        direction, task_id = "", ""
    ids = [task.id for task in newest_first]
    if direction not in ("after", "before") or task_id not in ids:
        raise Rejected(400, "Invalid cursor")
    at = ids.index(task_id)
    return at + 1 if direction == "after" else max(0, at - LIST_PAGE)


def build_router(store: TaskStore) -> APIRouter:
    router = APIRouter(prefix=f"/{PROVIDER}", tags=[PROVIDER])

    @router.post("/v1/models/{owner}/{name}/predictions")
    async def create(owner: str, name: str, request: Request) -> Response:
        try:
            task, events = await _create(store, request, f"{owner}/{name}")
        except Invalid as exc:
            return _invalid(exc)
        except Rejected as exc:
            return _rejection(exc)
        base_url = str(request.base_url)
        if task.callback_url and "completed" in events:
            store.callbacks.schedule(task, webhook_builder(store, base_url))
        if (wait := _prefer_wait(request.headers.get("prefer"))) is not None:
            return await _blocking_answer(store, task, base_url, wait)
        return JSONResponse(prediction(store, task, base_url), status_code=201)

    @router.get("/v1/predictions")
    async def list_predictions(request: Request, cursor: str | None = None) -> Response:
        try:
            _authorized(request)
            newest_first = list(reversed(store.tasks(PROVIDER)))
            start = _page_start(newest_first, cursor)
        except Rejected as exc:
            return _rejection(exc)
        base_url = str(request.base_url)
        page = newest_first[start : start + LIST_PAGE]
        url = f"{base_url.rstrip('/')}/{PROVIDER}/v1/predictions"
        following = preceding = None
        if start + LIST_PAGE < len(newest_first):
            following = f"{url}?cursor={_cursor('after', page[-1].id)}"
        if start > 0:
            preceding = f"{url}?cursor={_cursor('before', newest_first[start].id)}"
        return JSONResponse(
            {
                "previous": preceding,
                "next": following,
                "results": [prediction(store, task, base_url) for task in page],
            }
        )

    def find(request: Request, prediction_id: str) -> Task:
        _authorized(request)
        task = store.get(PROVIDER, prediction_id)
        if task is None:
            raise Rejected(404, "The requested resource could not be found.")
        return task

    @router.get("/v1/predictions/{prediction_id}")
    async def get_prediction(prediction_id: str, request: Request) -> Response:
        try:
            task = find(request, prediction_id)
        except Rejected as exc:
            return _rejection(exc)
        if task.take_poll_fault():
            return _problem(502, "Bad gateway", "Bad gateway")
        return JSONResponse(prediction(store, task, str(request.base_url)))

    @router.post("/v1/predictions/{prediction_id}/cancel")
    async def cancel_prediction(prediction_id: str, request: Request) -> Response:
        try:
            task = find(request, prediction_id)
        except Rejected as exc:
            return _rejection(exc)
        task.cancel()
        return JSONResponse(prediction(store, task, str(request.base_url)))

    add_file_route(router, store, PROVIDER)
    return router
