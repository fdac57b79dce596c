"""fal.ai's queue (`POST /{model_id}`, then the status/response/cancel URLs it returns).

The task handle is compact JSON holding the request id and those three URLs, used as given
(fal's URLs drop the model path after `owner/app`, so they cannot be rebuilt reliably).
Each model family takes its own input JSON, spelled from `providers.families`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel, ValidationError

from providers.base import (
    CallbackEvent,
    CallbackRejected,
    FailureKind,
    ProviderTaskStatus,
    SourceImage,
    TaskState,
)
from providers.catalog import route_family
from providers.errors import InvalidProviderRequestError
from providers.families import Unexpressible, input_body
from providers.http import (
    HttpAdapter,
    ProviderHttp,
    classify_failure,
    detail_text,
    progress_from_logs,
    raise_for_status,
)
from reelay.jobs import JobSpec, Route


class FalHandle(BaseModel):
    """The opaque task handle: fal's request id and the URLs its submit answer gave."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str

    def encode(self) -> str:
        return self.model_dump_json()

    @classmethod
    def decode(cls, task_id: str) -> FalHandle:
        try:
            return cls.model_validate_json(task_id)
        except ValidationError:
            raise InvalidProviderRequestError(
                f"not a fal task handle: {task_id[:80]!r}", provider="fal"
            ) from None


def fal_input(job: JobSpec, route: Route, image: SourceImage | None) -> dict[str, Any]:
    """The model's input JSON, spelled by the route's family (`providers.families`)."""
    model = route.upstream_model
    family = route_family(route)
    if family is None or family.adapter != "fal":
        raise InvalidProviderRequestError(f"no fal input mapping for {model}", provider="fal")
    try:
        return input_body(
            family,
            prompt=job.prompt,
            seconds=route.clip_seconds or job.duration_seconds,
            resolution=job.resolution,
            aspect_ratio=job.aspect_ratio,
            image_url=image.url if image else None,
            audio=job.audio,
            enhance_prompt=job.enhance_prompt,
            negative_prompt=job.negative_prompt,
            seed=job.seed,
        )
    except Unexpressible as exc:
        raise InvalidProviderRequestError(
            f"fal {model} cannot make {exc}", provider="fal"
        ) from None


def _failure_kind(text: str, types: Iterable[str]) -> FailureKind:
    joined = " ".join(types)
    if "content_policy" in joined:
        return FailureKind.CONTENT_REFUSED
    return classify_failure(text, joined)


def parse_status(body: dict[str, Any]) -> ProviderTaskStatus | None:
    """A status answer in Reelay's words; None when COMPLETED cleanly (fetch the result)."""
    raw = str(body.get("status", "")).upper()
    if raw == "IN_QUEUE":
        return ProviderTaskStatus(state=TaskState.QUEUED)
    if raw != "COMPLETED":
        logs = body.get("logs") or []
        text = "\n".join(str(e.get("message", "")) for e in logs if isinstance(e, dict))
        return ProviderTaskStatus(state=TaskState.RUNNING, progress=progress_from_logs(text))
    error, error_type = body.get("error"), str(body.get("error_type") or "")
    if not error and not error_type:
        return None
    if "cancel" in error_type:
        return ProviderTaskStatus(state=TaskState.CANCELLED)
    message = detail_text(error) or error_type
    return ProviderTaskStatus(
        state=TaskState.FAILED, failure=message, failure_kind=_failure_kind(message, [error_type])
    )


def parse_result(status_code: int, body: dict[str, Any]) -> ProviderTaskStatus:
    """A result answer: `video.url`, or a failure in `detail` (string or typed items)."""
    if 200 <= status_code < 300:
        video = body.get("video")
        url = video.get("url") if isinstance(video, dict) else None
        if isinstance(url, str) and url:
            return ProviderTaskStatus(state=TaskState.SUCCEEDED, progress=1.0, output_url=url)
        return ProviderTaskStatus(
            state=TaskState.FAILED,
            failure="fal returned a result without a video",
            failure_kind=FailureKind.INTERNAL,
        )
    detail = body.get("detail")
    items = detail if isinstance(detail, list) else []
    types = [str(item.get("type", "")) for item in items if isinstance(item, dict)]
    message = detail_text(detail) or f"fal request failed ({status_code})"
    kind = _failure_kind(message, types)
    if kind is FailureKind.INTERNAL and status_code in (400, 422):
        kind = FailureKind.INVALID_REQUEST
    return ProviderTaskStatus(state=TaskState.FAILED, failure=message, failure_kind=kind)


def public_key_hex_for_seed(seed: str) -> str:
    """The Ed25519 public key whose private key is sha256(seed): how the emulator signs."""
    private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())
    return private.public_key().public_bytes_raw().hex()


class FalAdapter(HttpAdapter):
    name = "fal"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        webhook_public_keys: Iterable[str] = (),
        callback_max_age_seconds: int = 300,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = ProviderHttp(
            self.name,
            base_url,
            {"Authorization": f"Key {api_key}"},
            timeout=timeout,
            transport=transport,
        )
        self._keys = [
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(k)) for k in webhook_public_keys
        ]
        self._max_age = callback_max_age_seconds

    async def submit(
        self,
        job: JobSpec,
        route: Route,
        *,
        image: SourceImage | None = None,
        callback_url: str | None = None,
    ) -> str:
        body = fal_input(job, route, image)
        params = {"fal_webhook": callback_url} if callback_url else None
        response = await self._http.request(
            "POST", f"/{route.upstream_model}", json=body, params=params
        )
        answer = self._http.json_object(response)
        try:
            return FalHandle.model_validate(answer).encode()
        except ValidationError:
            raise InvalidProviderRequestError(
                "fal's submit answer lacks request_id or the request URLs", provider=self.name
            ) from None

    async def poll(self, route: Route, task_id: str) -> ProviderTaskStatus:
        handle = FalHandle.decode(task_id)
        response = await self._http.request("GET", handle.status_url, params={"logs": "1"})
        status = parse_status(self._http.json_object(response))
        if status is not None:
            return status
        result = await self._http.send("GET", handle.response_url)
        body = _json_dict(result)
        if not result.is_success and ("detail" not in body or result.status_code in (408, 429)):
            raise_for_status(result, self.name)  # the gateway's error, not the model's
        return parse_result(result.status_code, body)

    async def cancel(self, route: Route, task_id: str) -> None:
        handle = FalHandle.decode(task_id)
        try:
            await self._http.request("PUT", handle.cancel_url)
        except InvalidProviderRequestError:
            return  # ALREADY_COMPLETED (400) or NOT_FOUND (404)

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        """fal's Ed25519 webhook signature over request id, user id, timestamp and the body's
        SHA-256, with a bound on the timestamp's age."""
        lower = {key.lower(): value for key, value in headers.items()}
        parts = [lower.get(f"x-fal-webhook-{n}") for n in ("request-id", "user-id", "timestamp")]
        signature = lower.get("x-fal-webhook-signature")
        request_id, user_id, timestamp = parts
        if not (request_id and user_id and timestamp and signature):
            raise CallbackRejected("fal webhook headers missing")
        try:
            age = abs(time.time() - int(timestamp))
            raw_signature = bytes.fromhex(signature)
        except ValueError:
            raise CallbackRejected("fal webhook timestamp or signature malformed") from None
        if age > self._max_age:
            raise CallbackRejected(f"fal webhook timestamp is {age:.0f} s off")
        message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()])
        if not any(_verifies(key, raw_signature, message.encode()) for key in self._keys):
            raise CallbackRejected("fal webhook signature does not verify")
        payload = _json_dict_bytes(body)
        if payload.get("request_id", request_id) != request_id:
            raise CallbackRejected("fal webhook body names another request")
        return CallbackEvent(event_id=f"{request_id}:{timestamp}", task_id=request_id)


def _verifies(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _json_dict(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _json_dict_bytes(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        raise CallbackRejected("fal webhook body is not JSON") from None
    if not isinstance(parsed, dict):
        raise CallbackRejected("fal webhook body is not a JSON object")
    return parsed
