"""fal.ai's queue under `/fal`, as /work/shared/PROVIDERS.md describes it.

Submit `POST /fal/{model_id}` (`?fal_webhook=`); the answer's status, response and cancel
URLs drop the model path after `owner/app`. Status words IN_QUEUE / IN_PROGRESS / COMPLETED
with `queue_position` and `logs` (always present, null unless `?logs=1`: fal-client 1.0.3
`_BaseRequestHandle._parse_status` reads `data["logs"]`); a refusal is a 422 result with a
typed `detail`; webhooks are signed with Ed25519 (key = sha256 of the configured seed).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
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

PROVIDER = "fal"
USER_ID = "emulator-user"
WIDE_SQUARE = ("16:9", "9:16", "1:1")
PIKA_RATIOS = ("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")
SEEDANCE_RATIOS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")
SHORT_SIDES = {"480p": 480, "580p": 580, "720p": 720, "1080p": 1080}


@dataclass(frozen=True)
class _Order:
    seconds: int
    ratio: str
    short_side: int
    image_field: str | None  # the required image field of an image-to-video model


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _invalid(exc: Invalid) -> JSONResponse:
    loc = ["body", *exc.field.split(".")]
    return _error(422, [{"loc": loc, "msg": exc.message, "type": "value_error"}])


def _authorized(request: Request) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "key" or not key.strip():
        raise Rejected(401, "Missing or invalid credentials: send Authorization: Key <key>")


def _app(model: str) -> str:
    """`owner/app`: what the request URLs keep of a model id."""
    return "/".join(model.split("/")[:2])


def _order(model: str, body: Body) -> _Order:
    """Validate one family's input (the family follows from the model id)."""
    i2v = "image-to-video" in model
    if "kling-video/" in model:
        modern = "/v3/" in model or "/v2.6/" in model
        lengths = range(3, 16) if "/v3/" in model else (5, 10)
        seconds = int(body.text("duration", default="5", choices=map(str, lengths)) or 5)
        ratio = body.text("aspect_ratio", default="16:9", choices=WIDE_SQUARE) or "16:9"
        body.text("negative_prompt")
        if modern:
            body.flag("generate_audio")
        image = ("start_image_url" if modern else "image_url") if i2v else None
        return _Order(seconds, ratio, 1080, image)
    if "/hailuo" in model:
        seconds = int(body.text("duration", default="6", choices=("6", "10")) or 6)
        resolution = body.text("resolution", default="768P", choices=("512P", "768P", "1080P"))
        if resolution == "1080P" and seconds != 6:
            raise Invalid("duration", "must be 6 at 1080P")
        body.flag("prompt_optimizer")
        return _Order(
            seconds, "16:9", int((resolution or "768P")[:-1]), "image_url" if i2v else None
        )
    if "/pika/" in model:
        seconds = body.integer("duration", default=5, choices=(5, 10)) or 5
        resolution = body.text("resolution", default="720p", choices=("720p", "1080p")) or "720p"
        ratio = body.text("aspect_ratio", default="16:9", choices=PIKA_RATIOS) or "16:9"
        body.text("negative_prompt")
        body.integer("seed")
        return _Order(seconds, ratio, SHORT_SIDES[resolution], "image_url" if i2v else None)
    if "/seedance/" in model:
        seconds = int(body.text("duration", default="5", choices=map(str, range(2, 16))) or 5)
        resolution = body.text("resolution", default="1080p", choices=("480p", "720p", "1080p"))
        ratio = body.text("aspect_ratio", default="16:9", choices=SEEDANCE_RATIOS) or "16:9"
        body.integer("seed")
        body.flag("generate_audio")
        body.flag("camera_fixed")
        short_side = SHORT_SIDES[resolution or "1080p"]
        return _Order(seconds, ratio, short_side, "image_url" if i2v else None)
    if model.startswith(("fal-ai/wan", "wan/")):
        return _wan_order(model, body, i2v)
    raise Rejected(404, f"Application '{_app(model)}' not found")


def _wan_order(model: str, body: Body, i2v: bool) -> _Order:
    if "/v2.2" in model:
        fps = body.integer("frames_per_second", default=16, between=(4, 60)) or 16
        frames = body.integer("num_frames", default=81, between=(17, 161)) or 81
        seconds = max(1, round((frames - 1) / fps))
        resolutions: tuple[str, ...] = ("480p", "580p", "720p")
    else:
        seconds = int(body.text("duration", default="5", choices=("5", "10", "15")) or 5)
        resolutions = ("480p", "720p", "1080p")
    resolution = body.text("resolution", default="720p", choices=resolutions) or "720p"
    ratio = body.text("aspect_ratio", default="16:9", choices=("auto", *WIDE_SQUARE)) or "16:9"
    body.text("negative_prompt")
    body.integer("seed")
    body.flag("enable_prompt_expansion")
    ratio = "16:9" if ratio == "auto" else ratio
    return _Order(seconds, ratio, SHORT_SIDES[resolution], "image_url" if i2v else None)


def _urls(task: Task, base_url: str) -> dict[str, str]:
    root = f"{base_url.rstrip('/')}/{PROVIDER}/{_app(task.model)}/requests/{task.id}"
    return {"status_url": f"{root}/status", "response_url": root, "cancel_url": f"{root}/cancel"}


def _queue_position(store: TaskStore, task: Task) -> int:
    return sum(
        1
        for other in store.tasks(PROVIDER)
        if other.created_at < task.created_at and other.snapshot().state is TaskState.QUEUED
    )


def status_body(
    store: TaskStore, task: Task, base_url: str, *, logs: bool
) -> tuple[int, dict[str, Any]]:
    snap = task.snapshot()
    urls = _urls(task, base_url)
    body: dict[str, Any] = {
        "request_id": task.id,
        "response_url": urls["response_url"],
        "status_url": urls["status_url"],
        "cancel_url": urls["cancel_url"],
        "logs": None,
    }
    if snap.state is TaskState.QUEUED:
        return 202, {"status": "IN_QUEUE", **body, "queue_position": _queue_position(store, task)}
    if logs:
        stamp = iso_utc(time.time())
        body["logs"] = [
            {"message": line, "level": "INFO", "source": "user", "timestamp": stamp}
            for line in progress_logs(snap)
        ]
    if snap.state is TaskState.RUNNING:
        return 202, {"status": "IN_PROGRESS", **body}
    body["metrics"] = {"inference_time": task.generation_seconds}
    if snap.state is TaskState.CANCELLED:
        body.update(error="Request cancelled", error_type="client_cancelled")
    elif snap.failure is FailureKind.INTERNAL:
        body.update(error=snap.message, error_type="runner_server_error")
    return 200, {"status": "COMPLETED", **body}


def result_body(store: TaskStore, task: Task, base_url: str) -> tuple[int, dict[str, Any]]:
    snap = task.snapshot()
    if snap.state is TaskState.SUCCEEDED:
        path = task.output_path()
        video = {
            "url": output_url(store, task, base_url),
            "content_type": "video/mp4",
            "file_name": f"{task.id}.mp4",
            "file_size": path.stat().st_size if path else 0,
        }
        return 200, {"video": video, "seed": 42}
    if snap.state is TaskState.CANCELLED:
        return 400, {"detail": "Request was cancelled"}
    if snap.failure is FailureKind.CONTENT_REFUSED:
        item = {"loc": ["body", "prompt"], "msg": snap.message, "type": "content_policy_violation"}
        return 422, {"detail": [item]}
    if snap.state is TaskState.FAILED:
        return 500, {"detail": snap.message}
    return 400, {"detail": "Request is still in progress"}


def webhook_builder(store: TaskStore, base_url: str) -> Builder:
    seed = store.config.fal_signing_seed.get_secret_value().encode()
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())

    def build(task: Task) -> Delivery:
        code, payload = result_body(store, task, base_url)
        ok = 200 <= code < 300
        body = json.dumps(
            {
                "request_id": task.id,
                "gateway_request_id": task.id,
                "status": "OK" if ok else "ERROR",
                "payload": payload,
                "error": None if ok else f"Invalid status code: {code}",
            }
        ).encode()
        timestamp = str(int(time.time()))
        message = "\n".join([task.id, USER_ID, timestamp, hashlib.sha256(body).hexdigest()])
        headers = {
            "X-Fal-Webhook-Request-Id": task.id,
            "X-Fal-Webhook-User-Id": USER_ID,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": key.sign(message.encode()).hex(),
        }
        return Delivery(body, headers)

    return build


async def _submit(store: TaskStore, request: Request, model: str) -> Task:
    _authorized(request)
    check_outage(store, PROVIDER)
    try:
        body = Body(await request.json())
    except ValueError:
        raise Invalid("body", "must be valid JSON") from None
    prompt = body.text("prompt", required=True) or ""
    order = _order(model, body)
    image: bytes | None = None
    if order.image_field is not None:
        ref = body.text(order.image_field, required=True) or ""
        image = await load_image(order.image_field, ref)
    task = await place(
        store,
        PROVIDER,
        model=model,
        prompt=prompt,
        seconds=order.seconds,
        aspect_ratio=order.ratio,
        frame=frame_size(order.ratio, order.short_side),
        image=image,
        callback_url=request.query_params.get("fal_webhook"),
    )
    task.echo = body.data
    return task


def build_router(store: TaskStore) -> APIRouter:
    router = APIRouter(prefix=f"/{PROVIDER}", tags=[PROVIDER])
    add_file_route(router, store, PROVIDER)

    def find(request: Request, owner: str, app: str, request_id: str) -> Task:
        _authorized(request)
        task = store.get(PROVIDER, request_id)
        if task is None or _app(task.model) != f"{owner}/{app}":
            raise Rejected(404, "Request not found")
        return task

    @router.get("/{owner}/{app}/requests/{request_id}/status")
    async def status(owner: str, app: str, request_id: str, request: Request) -> Response:
        try:
            task = find(request, owner, app, request_id)
        except Rejected as exc:
            return _error(exc.status, exc.message)
        if task.take_poll_fault():
            return _error(502, "Bad gateway")
        logs = request.query_params.get("logs") in ("1", "true")
        code, body = status_body(store, task, str(request.base_url), logs=logs)
        return JSONResponse(body, status_code=code)

    @router.get("/{owner}/{app}/requests/{request_id}")
    async def result(owner: str, app: str, request_id: str, request: Request) -> Response:
        try:
            task = find(request, owner, app, request_id)
        except Rejected as exc:
            return _error(exc.status, exc.message)
        code, body = result_body(store, task, str(request.base_url))
        return JSONResponse(body, status_code=code)

    @router.put("/{owner}/{app}/requests/{request_id}/cancel")
    async def cancel(owner: str, app: str, request_id: str, request: Request) -> Response:
        try:
            task = find(request, owner, app, request_id)
        except Rejected as exc:
            return JSONResponse({"status": "NOT_FOUND"}, status_code=exc.status)
        if task.terminal:
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        task.cancel()
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    @router.post("/{model_id:path}")
    async def submit(model_id: str, request: Request) -> Response:
        try:
            task = await _submit(store, request, model_id)
        except Invalid as exc:
            return _invalid(exc)
        except Rejected as exc:
            return _error(exc.status, exc.message, exc.headers())
        base_url = str(request.base_url)
        if task.callback_url:
            store.callbacks.schedule(task, webhook_builder(store, base_url))
        body = {
            "request_id": task.id,
            "gateway_request_id": task.id,
            "status": "IN_QUEUE",
            "queue_position": _queue_position(store, task),
            **_urls(task, base_url),
        }
        return JSONResponse(body)

    return router
