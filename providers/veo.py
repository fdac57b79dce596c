"""Google Veo through the Gemini API: `models/{model}:predictLongRunning` starts a
long-running operation, whose name is the task handle; `GET /{name}` polls it. What Veo's
two platforms share (the common body, operation states, Google's errors) is here too;
Vertex AI's adapter is `providers.vertex`.

The body is what `google-genai` 2.x sends for the Gemini Developer API (checked in
tests/test_sdk_contract.py): no `generateAudio` and no `seed`, which that API refuses
(Veo 3 there always makes sound; a seed is a Vertex AI parameter)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
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
from providers.errors import InvalidProviderRequestError, RetryableProviderError
from providers.families import FAMILIES, Family
from providers.http import HttpAdapter, ProviderHttp, classify_failure, raise_for_status
from reelay.jobs import JobSpec, Route

FAMILY = FAMILIES["veo-3"]
_GRPC_CANCELLED = 1
_GRPC_INVALID = frozenset({3, 9, 11})  # INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


def veo_family(route: Route) -> Family:
    return route_family(route) or FAMILY


def makes_audio(model: str) -> bool:
    return veo_family(Route(adapter="gemini", upstream_model=model)).audio


def predict_body(
    job: JobSpec, route: Route, image: SourceImage | None, *, provider: str = "gemini"
) -> dict[str, Any]:
    """The request both platforms take alike (each adds its own fields)."""
    family = veo_family(route)
    why = family.frame_refusal(job.resolution, job.aspect_ratio, with_image=image is not None)
    if why is not None:
        raise InvalidProviderRequestError(f"Veo cannot make {why}", provider=provider)
    instance: dict[str, Any] = {"prompt": job.prompt}
    if image is not None:
        instance["image"] = {
            "bytesBase64Encoded": base64.b64encode(image.data).decode(),
            "mimeType": image.content_type,
        }
    parameters: dict[str, Any] = {
        "aspectRatio": job.aspect_ratio,
        "durationSeconds": route.clip_seconds or job.duration_seconds,
        "sampleCount": 1,
    }
    if family.audio:
        parameters["resolution"] = job.resolution  # Veo 2 makes 720p only and takes no field
    if job.negative_prompt:
        parameters["negativePrompt"] = job.negative_prompt
    if job.enhance_prompt:
        parameters["enhancePrompt"] = True
    return {"instances": [instance], "parameters": parameters}


def retry_delay(response: httpx.Response) -> float | None:
    """Google's 429s carry `google.rpc.RetryInfo` (`"retryDelay": "1.5s"`) in the error
    details rather than a Retry-After header."""
    try:
        details = response.json()["error"]["details"]
    except (ValueError, KeyError, TypeError):
        return None
    for detail in details if isinstance(details, list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and (match := _DELAY.match(delay)):
            return float(match.group(1))
    return None


def operation_state(body: dict[str, Any]) -> ProviderTaskStatus | None:
    """A long-running operation still running, cancelled or failed; None once it has a
    result to read. Veo reports no progress while it runs (on either platform)."""
    if body.get("done") is not True:
        return ProviderTaskStatus(state=TaskState.RUNNING)
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), str(error.get("message") or "Veo generation failed")
    if code == _GRPC_CANCELLED:
        return ProviderTaskStatus(state=TaskState.CANCELLED)
    kind = classify_failure(message)
    if kind is FailureKind.INTERNAL and code in _GRPC_INVALID:
        kind = FailureKind.INVALID_REQUEST
    return ProviderTaskStatus(state=TaskState.FAILED, failure=message, failure_kind=kind)


def without_video(result: dict[str, Any]) -> ProviderTaskStatus:
    """A finished operation that holds no video: filtered by Veo's safety rules, or broken."""
    reasons = result.get("raiMediaFilteredReasons") or []
    if result.get("raiMediaFilteredCount") or reasons:
        text = "; ".join(str(r) for r in reasons) or "Veo's safety filters blocked the video"
        return ProviderTaskStatus(
            state=TaskState.FAILED, failure=text, failure_kind=FailureKind.CONTENT_REFUSED
        )
    return ProviderTaskStatus(
        state=TaskState.FAILED,
        failure="Veo finished without a video",
        failure_kind=FailureKind.INTERNAL,
    )


def parse_operation(body: dict[str, Any]) -> ProviderTaskStatus:
    """Translate a Gemini API operation."""
    if (state := operation_state(body)) is not None:
        return state
    response = body.get("response")
    result = response.get("generateVideoResponse") if isinstance(response, dict) else None
    result = result if isinstance(result, dict) else {}
    # `generatedSamples` per PROVIDERS.md; `generatedVideos` as the SDK names it (tolerated).
    samples = result.get("generatedSamples") or result.get("generatedVideos") or []
    video = samples[0].get("video") if samples and isinstance(samples[0], dict) else None
    uri = video.get("uri") if isinstance(video, dict) else None
    if isinstance(uri, str) and uri:
        return ProviderTaskStatus(state=TaskState.SUCCEEDED, progress=1.0, output_url=uri)
    return without_video(result)


class GoogleAdapter(HttpAdapter):
    """What Veo's two platforms share: Google's error details, operation cancel, no callbacks."""

    name: str

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self._http.send(method, url, **kwargs)
        try:
            raise_for_status(response, self.name)
        except RetryableProviderError as exc:
            if exc.retry_after is None:
                exc.retry_after = retry_delay(response)
            raise
        return response

    async def _start(self, path: str, body: dict[str, Any]) -> str:
        """Start a long-running operation; its name is the task handle."""
        response = await self._request("POST", path, json=body)
        name = self._http.json_object(response).get("name")
        if not isinstance(name, str) or not name:
            raise InvalidProviderRequestError("Veo returned no operation name", provider=self.name)
        return name

    async def cancel(self, route: Route, task_id: str) -> None:
        try:
            await self._request("POST", f"/{task_id}:cancel")
        except InvalidProviderRequestError:
            return  # finished, gone, or cancellation not supported for this operation

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        # PROVIDERS.md mentions Standard Webhooks for the Gemini API, details *unconfirmed*;
        # Vertex AI would publish to Pub/Sub. Reelay polls Veo and trusts no callback.
        raise CallbackRejected(f"Reelay takes no {self.name} callbacks")


class VeoAdapter(GoogleAdapter):
    name = "gemini"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        key = {"x-goog-api-key": api_key}
        # Video URIs are Gemini file downloads: they need the key (on Google's host only).
        self._http = ProviderHttp(
            self.name, base_url, key, timeout=timeout, transport=transport, download_headers=key
        )

    async def submit(
        self,
        job: JobSpec,
        route: Route,
        *,
        image: SourceImage | None = None,
        callback_url: str | None = None,
    ) -> str:
        body = predict_body(job, route, image)
        if job.continue_from is not None:
            # Video extension (*unconfirmed* field shape): the earlier output goes in as
            # `video.uri`, and Veo generates what follows it.
            earlier = await self.poll(route, job.continue_from)
            if earlier.output_url is None:
                raise InvalidProviderRequestError(
                    "the video to extend is not available", provider=self.name
                )
            body["instances"][0]["video"] = {"uri": earlier.output_url}
        return await self._start(f"/models/{route.upstream_model}:predictLongRunning", body)

    async def poll(self, route: Route, task_id: str) -> ProviderTaskStatus:
        response = await self._request("GET", f"/{task_id}")
        return parse_operation(self._http.json_object(response))
