"""The HTTP protocol the API serves with: uvicorn's httptools protocol with a bounded head.

uvicorn bounds neither the size of a request head under httptools nor how long a head may
take to arrive, so a slow client (slowloris) could hold a connection open for ever and a
huge one could fill memory. Here a request head must be complete within
`HEAD_TIMEOUT_SECONDS` of the connection opening or of its first byte arriving, else the
connection is closed; a head above `MAX_HEAD_BYTES` is answered 431 and the connection
closed, a head llhttp cannot parse 400: each as the error of the route the request names, in
its dialect (`api.errors.refused_before_routing`), not uvicorn's plain text; so is the 503
(with `Retry-After`) of a request that arrives while the server is at its connection limit
(uvicorn's `limit_concurrency`). An idle
keep-alive connection is left to uvicorn's keep-alive timeout, which is longer than clients'
own idle expiry (httpx, Node: 5 s) so a client never reuses a connection the server is
closing at that moment.

httptools (llhttp, in C) rather than h11 (pure Python): it parses a request in a fraction of
the CPU, which a submit's latency and one API process's admission rate are made of.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import httptools
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.errors import refused_before_routing
from api.problem import APIError
from reelay.errors import ErrorCode

HEAD_TIMEOUT_SECONDS = 10.0
MAX_HEAD_BYTES = 32 * 1024
#: What a client refused at the connection limit is told to wait before trying again.
BUSY_RETRY_AFTER_SECONDS = 1


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing and the request is refused."""


class BoundedHeadProtocol(HttpToolsProtocol):
    _head_timer: asyncio.TimerHandle | None = None
    #: From the end of a request's message (or the connection's start) to the end of the
    #: next request's headers: the head timer runs from its first byte.
    _awaiting_head = True
    _head_bytes = 0
    _head_too_large = False

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # uvicorn would answer over the limit itself, in plain text: this class answers.
        self._capacity, self.limit_concurrency = self.limit_concurrency, None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head and self._head_timer is None:
            self._arm_head_timer()
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._cancel_head_timer()
        if not self._at_capacity():
            super().on_headers_complete()
            return
        self.logger.warning("Exceeded concurrency limit.")
        app, self.app = self.app, self._refuse_busy  # the request's cycle runs this instead
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def _at_capacity(self) -> bool:
        """uvicorn's `limit_concurrency` rule: connections or requests in progress at it."""
        return self._capacity is not None and (
            len(self.connections) >= self._capacity or len(self.tasks) >= self._capacity
        )

    async def _refuse_busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = APIError(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"the server is at its limit of {self._capacity} concurrent connections; "
            f"retry in {BUSY_RETRY_AFTER_SECONDS} s",
            headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS), "Connection": "close"},
        )
        await refused_before_routing(self._routed_app(), scope, error)(scope, receive, send)

    def on_message_complete(self) -> None:
        self._awaiting_head = True  # the next bytes, whenever they come, start a head
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            error = APIError(
                ErrorCode.INVALID_REQUEST,
                f"request head larger than {MAX_HEAD_BYTES} bytes",
                status_code=HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            )
        else:
            error = APIError(
                ErrorCode.INVALID_REQUEST,
                "malformed HTTP request: its request line or a header is not valid HTTP/1.1",
            )
        response = refused_before_routing(self._routed_app(), self._scope_so_far(), error)
        status = HTTPStatus(response.status_code)
        head = [b"HTTP/1.1 %d %s\r\n" % (status, status.phrase.encode())]
        for name, value in [*self.server_state.default_headers, *response.raw_headers]:
            head.append(name + b": " + value + b"\r\n")
        self.transport.write(b"".join([*head, b"connection: close\r\n\r\n", response.body]))
        self.transport.close()

    def _routed_app(self) -> Starlette:
        """The application under uvicorn's wrappers (each keeps the next one as `.app`)."""
        app: Any = self.app
        while not isinstance(app, Starlette):
            app = app.app
        return app

    def _scope_so_far(self) -> dict[str, Any]:
        """The request's scope from what its head got to before it was refused."""
        scope: dict[str, Any] = {"type": "http", "path": "", "method": "", "headers": []}
        scope |= getattr(self, "scope", None) or {}
        try:
            scope["method"] = self.parser.get_method().decode("ascii")
            scope["path"] = httptools.parse_url(self.url).path.decode("ascii")
        except (httptools.HttpParserError, UnicodeDecodeError, AttributeError):
            pass  # not as far as the request line: only the native answer applies
        return scope

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise HeadTooLarge

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_SECONDS, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._awaiting_head and not self.transport.is_closing():
            self.transport.close()
