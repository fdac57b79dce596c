"""`APIError`, the error a client gets; free of FastAPI so the pure dialect parts can raise it.

See `reelay.errors` for the codes, their HTTP statuses and the whole exception tree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reelay.errors import HTTP_STATUS, ErrorCode


class APIError(Exception):
    """An error a client gets: its code (which fixes the HTTP status), a message, and
    `param`, the request field at fault when there is one."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status_code = status_code or HTTP_STATUS[code]
        self.message = message
        self.param = param
        self.headers = headers

    @property
    def error_type(self) -> str:
        return str(self.code)


def invalid(message: str, param: str | None = None) -> APIError:
    """A 400 naming the request field at fault."""
    return APIError(ErrorCode.INVALID_REQUEST, message, param=param)


def not_found(what: str = "Video generation job not found") -> APIError:
    return APIError(ErrorCode.NOT_FOUND, what)


def unavailable(what: str, retry_after: int = 5) -> APIError:
    """A 503 with `Retry-After`: a dependency is down; the message names no internal host."""
    return APIError(
        ErrorCode.SERVICE_UNAVAILABLE,
        f"{what} temporarily unavailable",
        headers={"Retry-After": str(retry_after)},
    )


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
        return APIError(ErrorCode.INVALID_REQUEST, message, param=field or None)
    return APIError(ErrorCode.INVALID_REQUEST, "invalid request")


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: dict[str, Any]) -> M:
    """`data` validated by `model`, or a 400 naming the first offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None
