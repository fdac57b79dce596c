"""Replicate predictions (`POST /v1/models/{owner}/{name}/predictions`, `/v1/predictions/{id}`).

Replicate deletes output files about an hour after a prediction completes. Nothing to do
here beyond that: the store step downloads the video as soon as the job succeeds.

`GET /v1/predictions` lists predictions newest first, a page at a time (`next` is the URL of
the following page), each with its model and `input` but not its webhook: a lost submit's
prediction is found by model and input, so an identical request of another job created in
the same seconds could be taken for it (both jobs then get one video).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime
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
from providers.catalog import route_family
from providers.errors import InvalidProviderRequestError
from providers.families import Unexpressible, input_body
from providers.http import HttpAdapter, ProviderHttp, classify_failure, progress_from_logs
from providers.lookup import MAX_PAGES, created_time, sent_as
from reelay.jobs import JobSpec, Route

CONTENT_FLAGGED = "E005"  # Replicate's error code for input or output flagged as sensitive

_STATES = {
    "starting": TaskState.QUEUED,
    "processing": TaskState.RUNNING,
    "succeeded": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "canceled": TaskState.CANCELLED,
    "cancelled": TaskState.CANCELLED,
}


def replicate_input(job: JobSpec, route: Route, image: SourceImage | None) -> dict[str, Any]:
    """The model's `input`, spelled by the route's family (`providers.families`)."""
    model = route.upstream_model
    family = route_family(route)
    if family is None or family.adapter != "replicate":
        raise InvalidProviderRequestError(
            f"no Replicate input mapping for {model}", provider="replicate"
        )
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
            f"Replicate {model} cannot make {exc}", provider="replicate"
        ) from None


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
        self._api_host = httpx.URL(base_url).host
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

    async def find_submitted(
        self,
        job: JobSpec,
        route: Route,
        *,
        since: datetime,
        image: SourceImage | None = None,
        callback_url: str | None = None,
    ) -> str | None:
        expected = replicate_input(job, route, image)
        url = "/v1/predictions"
        for _ in range(MAX_PAGES):
            page = self._http.json_object(await self._http.request("GET", url))
            predictions = [p for p in page.get("results") or [] if isinstance(p, dict)]
            for prediction in predictions:
                created = created_time(prediction)
                if created is None or created < since:
                    continue
                if (
                    prediction.get("model") == route.upstream_model
                    and sent_as(expected, prediction.get("input"), image)
                    and isinstance(prediction.get("id"), str)
                ):
                    return str(prediction["id"])
            oldest = created_time(predictions[-1]) if predictions else None
            following = page.get("next")
            if not isinstance(following, str) or (oldest is not None and oldest < since):
                return None
            if httpx.URL(following).host != self._api_host:
                return None  # our key goes to the API's own host only
            url = following
        return None

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
