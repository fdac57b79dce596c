"""Every error handler, in one place, and the error shape of the native dialect (seed 000).

Each dialect answers errors in its own shape. A dialect's routes use a route class from
`shaped_route`, which tells the handlers below how to render an `APIError` for that route
(this covers FastAPI's own validation errors and 405s too); a route shared by two dialects
that tells them apart by the body calls `answer_errors_in` once it knows. Anything else is
answered in the native shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from providers.catalog import CatalogError
from reelay.media import InvalidMediaError, MediaTooLargeError

log = structlog.get_logger()


class APIError(Exception):
    """An error a client gets, with its HTTP status, error type and a message.

    `param` names the request field at fault, when there is one.
    """

    def __init__(
        self,
        status_code: int,
        error_type: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.message = message
        self.headers = headers
        self.param = param


# Renders an error in one dialect's shape.
ErrorShape = Callable[[APIError], JSONResponse]


def not_found(what: str = "Video generation job not found") -> APIError:
    return APIError(404, "not_found", what)


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


def answer_errors_in(request: Request, shape: ErrorShape) -> None:
    """From now on, this request's errors take `shape` (for routes shared by two dialects)."""
    request.state.error_shape = shape


def _shape_of(request: Request) -> ErrorShape:
    chosen: ErrorShape | None = getattr(request.state, "error_shape", None)
    if chosen is not None:
        return chosen
    choose = getattr(request.scope.get("route"), "error_shape", None)
    return choose(request) if choose is not None else native_error


_LOCATIONS = ("body", "query", "path", "header", "cookie")


def validation_error(errors: Sequence[Mapping[str, Any]]) -> APIError:
    """A 400 whose message is one readable sentence naming the first offending field and
    the rule it broke; `errors` as pydantic (or FastAPI) lists them."""
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in _LOCATIONS:
            loc = loc[1:]
        field = ".".join(loc)
        kind = error.get("type", "")
        if kind == "json_invalid":
            message = "request body is not valid JSON"
        elif kind == "missing":
            message = f"{field} is required" if field else "request body is required"
        elif kind == "extra_forbidden":
            message = f"{field} is not a known parameter"
        elif not field:
            message = "request body must be a JSON object"
        else:
            message = f"{field}: {error.get('msg', 'is invalid')}"
        return APIError(400, "invalid_request", message, param=field or None)
    return APIError(400, "invalid_request", "invalid request")


_STATUS_TYPES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return _shape_of(request)(exc)

    @app.exception_handler(CatalogError)
    async def catalog_error(request: Request, exc: CatalogError) -> JSONResponse:
        return _shape_of(request)(APIError(400, "invalid_request", exc.message, param=exc.field))

    @app.exception_handler(MediaTooLargeError)
    async def media_too_large(request: Request, exc: MediaTooLargeError) -> JSONResponse:
        return _shape_of(request)(APIError(413, "payload_too_large", str(exc)))

    @app.exception_handler(InvalidMediaError)
    async def media_invalid(request: Request, exc: InvalidMediaError) -> JSONResponse:
        return _shape_of(request)(APIError(400, "invalid_request", str(exc)))

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _shape_of(request)(validation_error(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = _STATUS_TYPES.get(exc.status_code, "error")
        return _shape_of(request)(
            APIError(
                exc.status_code,
                error_type,
                str(exc.detail),
                headers=dict(exc.headers) if exc.headers else None,
            )
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return _shape_of(request)(APIError(500, "internal_error", "internal server error"))
