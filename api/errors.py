"""The error shape of the native dialect (seed 000) and every handler, in one place."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from providers.catalog import CatalogError

log = structlog.get_logger()


class APIError(Exception):
    """An error a client gets, with its HTTP status, error type and a message."""

    def __init__(
        self,
        status_code: int,
        error_type: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.message = message
        self.headers = headers


def not_found(what: str = "Video generation job not found") -> APIError:
    return APIError(404, "not_found", what)


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message}}


def validation_message(exc: RequestValidationError) -> str:
    """One readable sentence naming the first offending field and the rule it broke."""
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        field = ".".join(loc)
        kind = error.get("type", "")
        if kind == "json_invalid":
            return "request body is not valid JSON"
        if kind == "missing":
            return f"{field} is required" if field else "request body is required"
        if not field:
            return "request body must be a JSON object"
        return f"{field}: {error.get('msg', 'is invalid')}"
    return "invalid request"


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
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.error_type, exc.message), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(CatalogError)
    async def catalog_error(_: Request, exc: CatalogError) -> JSONResponse:
        return JSONResponse(error_body("invalid_request", exc.message), 400)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("invalid_request", validation_message(exc)), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = _STATUS_TYPES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(error_type, str(exc.detail)), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return JSONResponse(error_body("internal_error", "internal server error"), 500)
