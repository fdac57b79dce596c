"""Signed, expiring output URLs and the file responses behind them (shared by all protocols).

A download can be told to misbehave: `truncate` announces the full Content-Length, sends half
the bytes and drops the connection; `slow` throttles the body to N bytes per second.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.responses import JSONResponse
from starlette.responses import FileResponse, Response
from starlette.types import Message, Receive, Scope, Send

from emulator.tasks import Task, TaskStore


class TruncatedDownload(Exception):
    """Raised on purpose to make the server drop a download half-way."""


def _signature(secret: str, task_id: str, exp: str) -> str:
    return hmac.new(secret.encode(), f"{task_id}:{exp}".encode(), hashlib.sha256).hexdigest()


def signed_query(store: TaskStore, task: Task) -> dict[str, str]:
    """`exp` and `sig` query parameters for the task's output URL."""
    exp = str(task.expires_at)
    secret = store.config.signing_secret.get_secret_value()
    return {"exp": exp, "sig": _signature(secret, task.id, exp)}


def serve_output(store: TaskStore, task: Task | None, exp: str, sig: str) -> Response:
    if task is None:
        return JSONResponse({"error": "Not found"}, status_code=404)
    secret = store.config.signing_secret.get_secret_value()
    if not hmac.compare_digest(sig, _signature(secret, task.id, exp)):
        return JSONResponse({"error": "Invalid signature"}, status_code=403)
    if int(exp) <= time.time():
        return JSONResponse({"error": "URL expired"}, status_code=403)
    return serve_file(store, task)


def serve_file(store: TaskStore, task: Task) -> Response:
    """The task's MP4 (404 until it exists), for a caller already authorized."""
    path = task.output_path()
    if path is None:
        return JSONResponse({"error": "Not found"}, status_code=404)

    return _FaultyFileResponse(
        path,
        truncate=task.take_truncation(),
        bytes_per_second=task.directives.slow,
        on_complete=lambda: store.record_download(task.id),
    )


class _FaultyFileResponse(FileResponse):
    """Starlette's FileResponse (so HTTP Range works) with its body sends filtered.

    `on_complete` runs just before the last body bytes go out, so a client that has the
    whole file already sees it counted."""

    def __init__(
        self,
        path: Path,
        *,
        truncate: bool,
        bytes_per_second: int | None,
        on_complete: Callable[[], None],
    ) -> None:
        super().__init__(path, media_type="video/mp4")
        self._truncate = truncate
        self._rate = bytes_per_second
        self._on_complete = on_complete

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        budget: int | None = None  # body bytes left before a truncated download stops
        is_file = False  # not an error answer such as a 416

        async def faulty_send(message: Message) -> None:
            nonlocal budget, is_file
            if message["type"] == "http.response.start":
                is_file = message["status"] in (200, 206)
                if is_file and self._truncate:
                    budget = int(dict(message["headers"])[b"content-length"]) // 2
                await send(message)
                return
            body: bytes = message.get("body", b"")
            if budget is not None and len(body) >= budget:
                await self._send_body(send, body[:budget], more_body=True)
                raise TruncatedDownload("download truncated on purpose")
            if budget is not None:
                budget -= len(body)
            more_body = message.get("more_body", False)
            if is_file and not more_body:
                self._on_complete()
            await self._send_body(send, body, more_body=more_body)

        await super().__call__(scope, receive, faulty_send)

    async def _send_body(self, send: Send, body: bytes, *, more_body: bool) -> None:
        if self._rate is None or not body:
            await send({"type": "http.response.body", "body": body, "more_body": more_body})
            return
        piece = max(1, self._rate // 10)
        for start in range(0, len(body), piece):
            chunk = body[start : start + piece]
            last = start + piece >= len(body)
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": more_body or not last}
            )
            await asyncio.sleep(len(chunk) / self._rate)


class _DropTruncationErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], TruncatedDownload))


_DROP_TRUNCATION_ERRORS = _DropTruncationErrors()


def quiet_truncation_logs() -> None:
    """Keep uvicorn from logging each deliberate truncation as an application error."""
    logging.getLogger("uvicorn.error").addFilter(_DROP_TRUNCATION_ERRORS)
