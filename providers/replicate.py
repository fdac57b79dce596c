"""Replicate predictions (`POST /v1/models/{owner}/{name}/predictions`, `/v1/predictions/{id}`).

Replicate deletes output files about an hour after a prediction completes. Nothing to do
here beyond that: the store step downloads the video as soon as the job succeeds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from providers.base import (
    CallbackEvent,
    CallbackRejected,
    FailureKind,
    ProviderTaskStatus,
    SourceImage,
    TaskState,
)
from providers.errors import InvalidProviderRequestError
from providers.http import HttpAdapter, ProviderHttp, classify_failure, progress_from_logs
from reelay.jobs import JobSpec, Route

WIDE_SQUARE = frozenset({"16:9", "9:16", "1:1"})
SEEDANCE_RATIOS = frozenset({"16:9", "4:3", "1:1", "3:4", "9:16", "21:9"})
# Wan 2.5 text-to-video takes its frame as "W*H".
WAN_SIZES = {
    ("16:9", "480p"): "832*480",
    ("9:16", "480p"): "480*832",
    ("16:9", "720p"): "1280*720",
    ("9:16", "720p"): "720*1280",
    ("16:9", "1080p"): "1920*1080",
    ("9:16", "1080p"): "1080*1920",
}
CONTENT_FLAGGED = "E005"  # Replicate's error code for input or output flagged as sensitive

_STATES = {
    "starting": TaskState.QUEUED,
    "processing": TaskState.RUNNING,
    "succeeded": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "canceled": TaskState.CANCELLED,
    "cancelled": TaskState.CANCELLED,
}


def _invalid(model: str, what: str) -> InvalidProviderRequestError:
    return InvalidProviderRequestError(
        f"Replicate {model} cannot make {what}", provider="replicate"
    )


def _pick(model: str, allowed: Iterable[Any], value: Any, what: str) -> Any:
    if value not in allowed:
        raise _invalid(model, f"{what} {value}")
    return value


def replicate_input(job: JobSpec, route: Route, image: SourceImage | None) -> dict[str, Any]:
    """The model's `input`, by family (each Replicate model names its own fields)."""
    model = route.upstream_model
    seconds = route.clip_seconds or job.duration_seconds
    body: dict[str, Any] = {"prompt": job.prompt}
    image_url = image.url if image else None
    if model.startswith("kwaivgi/kling"):
        body["duration"] = _pick(model, (5, 10), seconds, "seconds")
        if image_url is None:
            body["aspect_ratio"] = _pick(model, WIDE_SQUARE, job.aspect_ratio, "aspect ratio")
        if "v2.6" in model:
            body["generate_audio"] = job.audio  # *unconfirmed* field name
        _optional(body, start_image=image_url, negative_prompt=job.negative_prompt)
    elif model.startswith("minimax/hailuo"):
        body["duration"] = _pick(model, (6, 10), seconds, "seconds")
        body["resolution"] = _pick(model, ("512p", "768p", "1080p"), job.resolution, "resolution")
        body["prompt_optimizer"] = job.enhance_prompt
        _optional(body, first_frame_image=image_url)
    elif model.startswith("bytedance/seedance"):
        body["duration"] = _pick(model, range(2, 13), seconds, "seconds")
        body["resolution"] = _pick(model, ("480p", "720p", "1080p"), job.resolution, "resolution")
        if image_url is None:
            body["aspect_ratio"] = _pick(model, SEEDANCE_RATIOS, job.aspect_ratio, "aspect ratio")
        if "1.5" in model:
            body["generate_audio"] = job.audio  # *unconfirmed* field name
        _optional(body, image=image_url, seed=job.seed)
    elif model.startswith("wan-video/wan"):
        body["duration"] = _pick(model, (5, 10), seconds, "seconds")
        body["enable_prompt_expansion"] = job.enhance_prompt
        if "-i2v" in model:
            body["resolution"] = _pick(
                model, ("480p", "720p", "1080p"), job.resolution, "resolution"
            )
        else:
            frame = (job.aspect_ratio, job.resolution)
            body["size"] = WAN_SIZES[_pick(model, WAN_SIZES, frame, "frame")]
        _optional(body, image=image_url, negative_prompt=job.negative_prompt, seed=job.seed)
    else:
        raise InvalidProviderRequestError(
            f"no Replicate input mapping for {model}", provider="replicate"
        )
    return body


def _optional(body: dict[str, Any], **fields: Any) -> None:
    body.update({key: value for key, value in fields.items() if value is not None})


def parse_prediction(body: dict[str, Any]) -> ProviderTaskStatus:
    """Translate a prediction (also the webhook body)."""
    state = _STATES.get(str(body.get("status", "")).lower(), TaskState.RUNNING)
    status = ProviderTaskStatus(state=state)
    if state is TaskState.RUNNING:
        status.progress = progress_from_logs(str(body.get("logs") or ""))
    elif state is TaskState.SUCCEEDED:
        output = body.get("output")
        url = output[0] if isinstance(output, list) and output else output
        if isinstance(url, str) and url:
            status.output_url, status.progress = url, 1.0
        else:
            status.state = TaskState.FAILED
            status.failure = "Replicate reported success without an output"
            status.failure_kind = FailureKind.INTERNAL
    elif state is TaskState.FAILED:
        error = str(body.get("error") or "Replicate prediction failed")
        status.failure = error
        status.failure_kind = (
            FailureKind.CONTENT_REFUSED if CONTENT_FLAGGED in error else classify_failure(error)
        )
    return status


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks `whsec_<base64>` secret."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("a Replicate webhook secret looks like whsec_<base64>") from None


class ReplicateAdapter(HttpAdapter):
    name = "replicate"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        webhook_secret: str = "",
        callback_max_age_seconds: int = 300,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = ProviderHttp(
            self.name,
            base_url,
            {"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )
        self._webhook_key = webhook_key(webhook_secret) if webhook_secret else None
        self._max_age = callback_max_age_seconds

    async def submit(
        self,
        job: JobSpec,
        route: Route,
        *,
        image: SourceImage | None = None,
        callback_url: str | None = None,
    ) -> str:
        body: dict[str, Any] = {"input": replicate_input(job, route, image)}
        if callback_url:
            body["webhook"] = callback_url
            body["webhook_events_filter"] = ["completed"]
        path = f"/v1/models/{route.upstream_model}/predictions"
        response = await self._http.request("POST", path, json=body)
        prediction_id = self._http.json_object(response).get("id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise InvalidProviderRequestError(
                "Replicate returned no prediction id", provider=self.name
            )
        return prediction_id

    async def poll(self, route: Route, task_id: str) -> ProviderTaskStatus:
        response = await self._http.request("GET", f"/v1/predictions/{task_id}")
        return parse_prediction(self._http.json_object(response))

    async def cancel(self, route: Route, task_id: str) -> None:
        try:
            await self._http.request("POST", f"/v1/predictions/{task_id}/cancel")
        except InvalidProviderRequestError:
            return  # finished or gone

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        """Standard Webhooks: HMAC-SHA256 over `id.timestamp.body`, any `v1,` entry, fresh."""
        lower = {key.lower(): value for key, value in headers.items()}
        msg_id = lower.get("webhook-id")
        timestamp = lower.get("webhook-timestamp")
        signatures = lower.get("webhook-signature")
        if not (msg_id and timestamp and signatures):
            raise CallbackRejected("Standard Webhooks headers missing")
        if self._webhook_key is None:
            raise CallbackRejected("no Replicate webhook secret is configured")
        try:
            age = abs(time.time() - int(timestamp))
        except ValueError:
            raise CallbackRejected("webhook-timestamp is not a number") from None
        if age > self._max_age:
            raise CallbackRejected(f"webhook-timestamp is {age:.0f} s off")
        signed = f"{msg_id}.{timestamp}.".encode() + body
        expected = base64.b64encode(
            hmac.new(self._webhook_key, signed, hashlib.sha256).digest()
        ).decode()
        offered = [
            value
            for version, _, value in (e.partition(",") for e in signatures.split())
            if version == "v1"
        ]
        if not any(hmac.compare_digest(v.encode(), expected.encode()) for v in offered):
            raise CallbackRejected("webhook-signature does not match")
        try:
            prediction = json.loads(body)
        except ValueError:
            raise CallbackRejected("Replicate webhook body is not JSON") from None
        task_id = prediction.get("id") if isinstance(prediction, dict) else None
        return CallbackEvent(event_id=msg_id, task_id=task_id if isinstance(task_id, str) else None)
