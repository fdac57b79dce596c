"""What the Luma, Gemini, fal and Replicate routers share: typed reads of a request body,
source images, output URLs, progress logs, and placing a task in the store.

Routers raise `Invalid` (a field is wrong) or `Rejected` (any other error answer) and render
them in their provider's own error shape.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Response

from emulator.directives import DirectiveError, parse_directives
from emulator.downloads import serve_output, signed_query
from emulator.render import image_phase, scaled_size
from emulator.states import TaskState
from emulator.tasks import CreateFault, Snapshot, Task, TaskStore

IMAGE_FETCH_SECONDS = 10.0


class Invalid(ValueError):
    """A request field the provider would refuse."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Rejected(Exception):
    """Any other error answer (auth, outage, rate limit, not found)."""

    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    @classmethod
    def of(cls, fault: CreateFault) -> Rejected:
        return cls(fault.status, fault.message, retry_after=fault.retry_after)

    def headers(self) -> dict[str, str] | None:
        return None if self.retry_after is None else {"Retry-After": str(self.retry_after)}


def check_outage(store: TaskStore, provider: str) -> None:
    if (fault := store.begin_create(provider)) is not None:
        raise Rejected.of(fault)


class Body:
    """Typed reads of one JSON object; `where` prefixes field names in messages."""

    def __init__(self, data: Any, where: str = "") -> None:
        if not isinstance(data, dict):
            raise Invalid(where or "body", "must be a JSON object")
        self.data = data
        self._where = where

    def _name(self, name: str) -> str:
        return f"{self._where}.{name}" if self._where else name

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def text(
        self,
        name: str,
        *,
        default: str | None = None,
        choices: Iterable[str] | None = None,
        required: bool = False,
    ) -> str | None:
        value = self.data.get(name, default)
        if value is None:
            if required:
                raise Invalid(self._name(name), "required")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            raise Invalid(self._name(name), "must be a non-empty string")
        allowed = list(choices) if choices is not None else None
        if allowed is not None and value not in allowed:
            raise Invalid(self._name(name), f"must be one of {', '.join(allowed)}")
        return value

    def integer(
        self,
        name: str,
        *,
        default: int | None = None,
        choices: Iterable[int] | None = None,
        between: tuple[int, int] | None = None,
    ) -> int | None:
        value = self.data.get(name, default)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(self._name(name), "must be an integer")
        allowed = list(choices) if choices is not None else None
        if allowed is not None and value not in allowed:
            raise Invalid(self._name(name), f"must be one of {', '.join(map(str, allowed))}")
        if between is not None and not between[0] <= value <= between[1]:
            raise Invalid(self._name(name), f"must be from {between[0]} to {between[1]}")
        return value

    def flag(self, name: str) -> bool:
        value = self.data.get(name, False)
        if not isinstance(value, bool):
            raise Invalid(self._name(name), "must be a boolean")
        return value

    def child(self, name: str) -> Body | None:
        value = self.data.get(name)
        return None if value is None else Body(value, self._name(name))


def decode_base64(field: str, value: str) -> bytes:
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(field, "is not valid base64") from None
    if not data:
        raise Invalid(field, "is empty")
    return data


async def load_image(field: str, ref: str, *, data_uri: bool = True) -> bytes:
    """The image behind an http(s) URL (fetched, to prove it is reachable) or a data URI."""
    if ref.startswith("data:") and data_uri:
        header, _, payload = ref.partition(",")
        if not header.endswith(";base64"):
            raise Invalid(field, "data URIs must be base64-encoded")
        return decode_base64(field, payload)
    if not ref.startswith(("http://", "https://")):
        raise Invalid(field, "must be an http(s) URL" + (" or a data URI" if data_uri else ""))
    try:
        async with httpx.AsyncClient(timeout=IMAGE_FETCH_SECONDS) as http:
            response = await http.get(ref, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise Invalid(field, f"could not fetch the image: {exc!r}") from None
    if not response.is_success or not response.content:
        raise Invalid(field, f"could not fetch the image: HTTP {response.status_code}")
    return response.content


async def place(
    store: TaskStore,
    provider: str,
    *,
    model: str,
    prompt: str,
    seconds: int,
    aspect_ratio: str,
    frame: tuple[int, int],
    image: bytes | None,
    callback_url: str | None = None,
    continues: Task | None = None,
    task_id: str | None = None,
) -> Task:
    """Apply the prompt's directives (maybe an injected error answer), then accept the task.

    `frame` is the full-size video the provider would make; the emulator renders it scaled.
    A continuation (`continues`: Veo extension, Luma generation keyframe) picks the motion
    up where that task's video ended; an image-to-video task starts on its image's frame."""
    try:
        directives = parse_directives(prompt)
    except DirectiveError as exc:
        raise Invalid("prompt", str(exc)) from None
    if (fault := store.directive_fault(provider, prompt, directives)) is not None:
        raise Rejected.of(fault)
    width, height = frame
    start = 0
    if continues is not None:
        start = continues.next_frame
    elif image is not None:
        try:
            start = image_phase(image)
        except (OSError, ValueError):
            start = 0  # not one of our frames: any picture is a fine first image
    details: dict[str, Any] = {"image": image is not None, "size": f"{width}x{height}"}
    if continues is not None:
        details["continues"] = continues.id
    return store.submit(
        provider=provider,
        model=model,
        prompt=prompt,
        duration=seconds,
        ratio=aspect_ratio,
        size=scaled_size(width, height, store.config.render_scale),
        directives=directives,
        details=details,
        callback_url=callback_url,
        start_frame=start,
        task_id=task_id,
    )


def output_url(store: TaskStore, task: Task, base_url: str) -> str:
    """The task's signed, expiring MP4 URL (served by `add_file_route`)."""
    query = urlencode(signed_query(store, task))
    return f"{base_url.rstrip('/')}/{task.provider}/files/{task.id}.mp4?{query}"


def add_file_route(router: APIRouter, store: TaskStore, provider: str) -> None:
    @router.get("/files/{task_id}.mp4", include_in_schema=False)
    async def output(task_id: str, exp: str = "", sig: str = "") -> Response:
        return serve_output(store, store.get(provider, task_id), exp, sig)


PROGRESS_STEPS = 10


def progress_logs(snap: Snapshot) -> list[str]:
    """tqdm lines, one per 10% reached (what fal and Replicate stream as logs), in the form
    `replicate.Prediction.Progress.parse` reads: ` 40%|████      | 4/10 [...]`."""
    if snap.state is TaskState.QUEUED:
        return []
    done = PROGRESS_STEPS
    if snap.state is not TaskState.SUCCEEDED:
        done = int((snap.progress or 0) * PROGRESS_STEPS)
    return [
        f"{step * 100 // PROGRESS_STEPS:3d}%|{'█' * step:<{PROGRESS_STEPS}}| "
        f"{step}/{PROGRESS_STEPS} [00:{step:02d}<00:00,  1.00it/s]"
        for step in range(done + 1)
    ]
