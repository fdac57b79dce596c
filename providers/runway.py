"""Runway's task API (`/v1/text_to_video`, `/v1/tasks/{id}`)."""

from __future__ import annotations

import base64
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
from providers.errors import InvalidProviderRequestError
from providers.families import FAMILIES, Family
from providers.http import HttpAdapter, ProviderHttp
from reelay.jobs import JobSpec, Route

API_VERSION = "2024-11-06"
MAX_DATA_URI_BYTES = 3_500_000  # ~5 MB once base64-encoded

FAMILY = FAMILIES["runway-gen4.5"]

_STATES = {
    "PENDING": TaskState.QUEUED,
    "THROTTLED": TaskState.QUEUED,
    "RUNNING": TaskState.RUNNING,
    "SUCCEEDED": TaskState.SUCCEEDED,
    "FAILED": TaskState.FAILED,
    "CANCELLED": TaskState.CANCELLED,
}


def runway_ratio(
    aspect_ratio: str, resolution: str, family: Family, *, with_image: bool = False
) -> str:
    """Runway's pixel `ratio` for a frame, from the model family's table."""
    ratio = family.frame(aspect_ratio, resolution, with_image=with_image)
    if ratio is None:
        raise InvalidProviderRequestError(
            f"Runway has no ratio for {aspect_ratio} at {resolution}", provider="runway"
        )
    return ratio


def prompt_image(image: SourceImage) -> str:
    """Runway fetches HTTPS URLs itself and takes nothing else but a data URI (up to about
    5 MB encoded): a plain-http or local bucket's image goes inline, or is refused."""
    if image.url.startswith("https://"):
        return image.url
    if len(image.data) > MAX_DATA_URI_BYTES:
        raise InvalidProviderRequestError(
            f"Runway takes an image over {MAX_DATA_URI_BYTES / 1_000_000:g} MB only from an "
            "HTTPS URL, and the image store is not served over HTTPS",
            provider="runway",
        )
    return f"data:{image.content_type};base64,{base64.b64encode(image.data).decode()}"


def parse_task(body: dict[str, Any]) -> ProviderTaskStatus:
    """Translate a `GET /v1/tasks/{id}` body."""
    raw = str(body.get("status", "")).upper()
    state = _STATES.get(raw, TaskState.RUNNING)
    progress = body.get("progress")
    status = ProviderTaskStatus(
        state=state, progress=float(progress) if isinstance(progress, int | float) else None
    )
    if state is TaskState.SUCCEEDED:
        output = body.get("output") or []
        status.output_url = output[0] if isinstance(output, list) and output else None
        status.progress = 1.0
        if status.output_url is None:
            status.state = TaskState.FAILED
            status.failure = "Runway reported success without an output URL"
            status.failure_kind = FailureKind.INTERNAL
    elif state is TaskState.FAILED:
        code = str(body.get("failureCode") or "")
        status.failure = str(body.get("failure") or code or "Runway task failed")
        if code.startswith("SAFETY"):
            status.failure_kind = FailureKind.CONTENT_REFUSED
        elif code.startswith("INPUT"):
            status.failure_kind = FailureKind.INVALID_REQUEST
        else:
            status.failure_kind = FailureKind.INTERNAL
    return status


def task_request(
    job: JobSpec, route: Route, image: SourceImage | None
) -> tuple[str, dict[str, Any]]:
    """The create call: `/v1/text_to_video` or `/v1/image_to_video`, and its body."""
    family = route_family(route) or FAMILY
    with_image = image is not None
    body: dict[str, Any] = {
        "model": route.upstream_model,
        "promptText": job.prompt,
        "ratio": runway_ratio(job.aspect_ratio, job.resolution, family, with_image=with_image),
        "duration": route.clip_seconds or job.duration_seconds,
    }
    if job.seed is not None:
        body["seed"] = job.seed
    if family.audio:  # the Veo models on Runway
        if job.negative_prompt:
            body["negativePrompt"] = job.negative_prompt
        body["audio"] = job.audio
    if image is None:
        return "/v1/text_to_video", body
    return "/v1/image_to_video", {**body, "promptImage": prompt_image(image)}


class RunwayAdapter(HttpAdapter):
    name = "runway"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = ProviderHttp(
            self.name,
            base_url,
            {"Authorization": f"Bearer {api_key}", "X-Runway-Version": API_VERSION},
            timeout=timeout,
            transport=transport,
        )

    async def submit(
        self,
        job: JobSpec,
        route: Route,
        *,
        image: SourceImage | None = None,
        callback_url: str | None = None,
    ) -> str:
        path, body = task_request(job, route, image)
        response = await self._http.request("POST", path, json=body)
        task_id = self._http.json_object(response).get("id")
        if not isinstance(task_id, str) or not task_id:
            raise InvalidProviderRequestError("Runway returned no task id", provider=self.name)
        return task_id

    async def poll(self, route: Route, task_id: str) -> ProviderTaskStatus:
        response = await self._http.request("GET", f"/v1/tasks/{task_id}")
        return parse_task(self._http.json_object(response))

    async def cancel(self, route: Route, task_id: str) -> None:
        try:
            await self._http.request("DELETE", f"/v1/tasks/{task_id}")
        except InvalidProviderRequestError:
            return  # already finished or gone: nothing left to stop

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        raise CallbackRejected("Runway sends no callbacks")
