"""Every error handler, in one place, and the error shape of the native dialect (seed 000).

Each dialect answers errors in its own shape. A dialect's routes use a route class from
`shaped_route`, which tells the handlers below how to render an `APIError` for that route
(this covers FastAPI's own validation errors and 405s too); a route shared by two dialects
that tells them apart by the body calls `answer_errors_in` once it knows. Anything else is
answered in the native shape.

An unexpected exception is answered 500 by `ContainErrors`, logged as one bounded structured
line, and never reaches the server's own (synchronous, verbose) error logging; a client that
went away mid-body is not an error at all.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problem import APIError, validation_error
from providers.catalog import CatalogError
from reelay.errors import ErrorCode, code_for_status
from reelay.media import InvalidMediaError, MediaTooLargeError

log = structlog.get_logger()

# Renders an error in one dialect's shape.
ErrorShape = Callable[[APIError], JSONResponse]


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message}}


def native_error(exc: APIError) -> JSONResponse:
    """Seed 000: `{"error": {"type", "message"}}`."""
    return JSONResponse(
        error_body(exc.error_type, exc.message), exc.status_code, headers=exc.headers
    )


def shaped_route(choose: Callable[[Request], ErrorShape]) -> type[APIRoute]:
    """A route class whose errors take the shape `choose(request)` picks."""

    class ShapedRoute(APIRoute):
        error_shape = staticmethod(choose)

    return ShapedRoute


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route: the error statuses it answers (`api.openapi` adds the body
    schema of the route's dialect)."""
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}


def answer_errors_in(request: Request, shape: ErrorShape) -> None:
    """From now on, this request's errors take `shape` (for routes shared by two dialects)."""
    request.state.error_shape = shape


def _shape_of(request: Request) -> ErrorShape:
    chosen: ErrorShape | None = getattr(request.state, "error_shape", None)
    if chosen is not None:
        return chosen
    choose = getattr(request.scope.get("route"), "error_shape", None)
    return choose(request) if choose is not None else native_error


class ContainErrors:
    """ASGI middleware: an exception no handler took becomes a 500 in the route's dialect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            log.info("client disconnected", path=scope.get("path"))
        except Exception as exc:  # the last line of defence
            log.error("unhandled error", path=scope.get("path"), exc_info=exc)
            if not started:
                request = Request(scope)
                error = APIError(ErrorCode.INTERNAL_ERROR, "internal server error")
                await _shape_of(request)(error)(scope, receive, send)


def refused_before_routing(app: Starlette, scope: Scope, error: APIError) -> JSONResponse:
    """The answer to a request the HTTP server refuses before the app sees it (a head it cannot
    parse, or one too large): in the dialect of the route its path and headers name, as far
    as they arrived (native when they name none)."""
    path, method = scope.get("path", ""), scope.get("method", "")
    named = [
        context
        for context in iter_route_contexts(app.routes)
        if context.path and compile_path(context.path)[0].fullmatch(path)
    ]
    named.sort(key=lambda context: method not in (context.methods or ()))
    if named:
        scope = {**scope, "route": named[0].original_route}
    return _shape_of(Request(scope))(error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(ContainErrors)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return _shape_of(request)(exc)

    @app.exception_handler(CatalogError)
    async def catalog_error(request: Request, exc: CatalogError) -> JSONResponse:
        error = APIError(ErrorCode.INVALID_REQUEST, exc.message, param=exc.field)
        return _shape_of(request)(error)

    @app.exception_handler(MediaTooLargeError)
    async def media_too_large(request: Request, exc: MediaTooLargeError) -> JSONResponse:
        return _shape_of(request)(APIError(ErrorCode.PAYLOAD_TOO_LARGE, str(exc)))

    @app.exception_handler(InvalidMediaError)
    async def media_invalid(request: Request, exc: InvalidMediaError) -> JSONResponse:
        return _shape_of(request)(APIError(ErrorCode.INVALID_REQUEST, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _shape_of(request)(validation_error(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = APIError(
            code_for_status(exc.status_code),
            str(exc.detail),
            headers=dict(exc.headers) if exc.headers else None,
            status_code=exc.status_code,
        )
        return _shape_of(request)(error)
