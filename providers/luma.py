"""Luma Dream Machine (`/generations/video`, `/generations/{id}`, `/generations`).

Luma's callbacks are unsigned: the gateway authenticates them by the per-job token in the
callback URL (checked outside the adapter), so `verify_callback` only parses the body.
A generation echoes its create body as `request`, and `GET /generations` lists them newest
first, so a lost submit's generation is found by that echo: with a callback URL (it names the
job) by model and callback URL; without one, any generation of the same request in the window.
"""

from __future__ import annotations

import hashlib
import json
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
from providers.families import FAMILIES
from providers.http import HttpAdapter, ProviderHttp, classify_failure
from providers.lookup import MAX_PAGES, created_time, sent_as
from reelay.jobs import JobSpec, Route

FAMILY = FAMILIES["luma-ray"]
LIST_LIMIT = 20  # generations per `GET /generations` page

_STATES = {
    "queued": TaskState.QUEUED,
    "dreaming": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
}


def generation_body(
    job: JobSpec, route: Route, image: SourceImage | None, callback_url: str | None
) -> dict[str, Any]:
    """The `POST /generations/video` body. Luma has no seed, negative prompt, audio or
    prompt-enhancement switch, so those job fields are not sent."""
    seconds = route.clip_seconds or job.duration_seconds
    family = route_family(route) or FAMILY
    why = family.refusal(seconds, job.resolution, job.aspect_ratio, with_image=image is not None)
    if why is not None:
        raise _invalid(why)
    body: dict[str, Any] = {
        "model": route.upstream_model,
        "prompt": job.prompt,
        "aspect_ratio": job.aspect_ratio,
        "resolution": job.resolution,
        "duration": family.write_seconds(seconds),
    }
    if job.continue_from is not None:
        # Extending an earlier generation: it becomes the first keyframe.
        body["keyframes"] = {"frame0": {"type": "generation", "id": job.continue_from}}
    elif image is not None:
        # Luma fetches keyframes itself: they must be public (here: presigned) URLs.
        body["keyframes"] = {"frame0": {"type": "image", "url": image.url}}
    if callback_url:
        body["callback_url"] = callback_url
    return body


def _invalid(what: str) -> InvalidProviderRequestError:
    return InvalidProviderRequestError(f"Luma cannot make {what}", provider="luma")


def parse_generation(body: dict[str, Any]) -> ProviderTaskStatus:
    """Translate a generation object (also the callback body)."""
    state = _STATES.get(str(body.get("state", "")).lower(), TaskState.RUNNING)
    status = ProviderTaskStatus(state=state)
    if state is TaskState.SUCCEEDED:
        assets = body.get("assets")
        video = assets.get("video") if isinstance(assets, dict) else None
        if isinstance(video, str) and video:
            status.output_url, status.progress = video, 1.0
        else:
            status.state = TaskState.FAILED
            status.failure = "Luma reported completion without a video asset"
            status.failure_kind = FailureKind.INTERNAL
    elif state is TaskState.FAILED:
        reason = str(body.get("failure_reason") or "Luma generation failed")
        status.failure, status.failure_kind = reason, classify_failure(reason)
    return status


class LumaAdapter(HttpAdapter):
    name = "luma"

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
            {"Authorization": f"Bearer {api_key}"},
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
        body = generation_body(job, route, image, callback_url)
        response = await self._http.request("POST", "/generations/video", json=body)
        generation_id = self._http.json_object(response).get("id")
        if not isinstance(generation_id, str) or not generation_id:
            raise InvalidProviderRequestError("Luma returned no generation id", provider=self.name)
        return generation_id

    async def find_submitted(
        self,
        job: JobSpec,
        route: Route,
        *,
        since: datetime,
        image: SourceImage | None = None,
        callback_url: str | None = None,
    ) -> str | None:
        expected = generation_body(job, route, image, callback_url)
        if callback_url:
            # The job's own callback URL names it: Luma may echo the rest (a keyframe it
            # copied) in its own words.
            expected = {"model": expected["model"], "callback_url": callback_url}
        for page in range(MAX_PAGES):
            params = {"limit": LIST_LIMIT, "offset": page * LIST_LIMIT}
            response = await self._http.request("GET", "/generations", params=params)
            body = self._http.json_object(response)
            generations = [g for g in body.get("generations") or [] if isinstance(g, dict)]
            for generation in generations:
                created = created_time(generation)
                if created is None or created < since:
                    continue
                if sent_as(expected, generation.get("request"), image) and isinstance(
                    generation.get("id"), str
                ):
                    return str(generation["id"])
            oldest = created_time(generations[-1]) if generations else None
            more = body.get("has_more") is not False and len(generations) == LIST_LIMIT
            if not more or (oldest is not None and oldest < since):
                return None
        return None

    async def poll(self, route: Route, task_id: str) -> ProviderTaskStatus:
        response = await self._http.request("GET", f"/generations/{task_id}")
        return parse_generation(self._http.json_object(response))

    async def cancel(self, route: Route, task_id: str) -> None:
        """Luma stops a generation only by deleting it."""
        try:
            await self._http.request("DELETE", f"/generations/{task_id}")
        except InvalidProviderRequestError:
            return  # already gone

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackEvent:
        try:
            generation = json.loads(body)
        except ValueError:
            raise CallbackRejected("Luma callback is not JSON") from None
        if not isinstance(generation, dict) or not isinstance(generation.get("id"), str):
            raise CallbackRejected("Luma callback is not a generation object")
        # Luma posts on every state change; each body is its own event.
        return CallbackEvent(event_id=hashlib.sha256(body).hexdigest(), task_id=generation["id"])
