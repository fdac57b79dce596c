"""Reading request bodies on routes that parse them by hand (routes shared by two dialects
tell them apart by the body), validating them with a dialect's model, and documenting them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException

from api.problem import APIError, invalid
from api.problem import parse as parse
from reelay.errors import ErrorCode
from reelay.settings import Settings

M = TypeVar("M", bound=BaseModel)
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# A JSON body is a few fields and a prompt; anything bigger is refused before parsing.
MAX_JSON_BYTES = 256 * 1024
MAX_DEPTH = 16
BODY_TIMEOUT_SECONDS = 30.0
# Longer integers are no duration or seed; they are refused by field, not parsed.
MAX_INT_DIGITS = 30
# Form fields other than the file stay small.
MAX_FORM_FIELD_BYTES = 64 * 1024


class HugeNumber:
    """A JSON integer too long to be any field's value; validation refuses it by field."""

    def __init__(self, digits: str) -> None:
        self.digits = len(digits)

    def __repr__(self) -> str:
        return f"<integer of {self.digits} digits>"


def _parse_int(text: str) -> int | HugeNumber:
    return int(text) if len(text.lstrip("-")) <= MAX_INT_DIGITS else HugeNumber(text)


def is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").lower()
    return content_type.startswith(FORM_TYPES)


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type in ("", "application/json") or media_type.endswith("+json")


async def read_body(request: Request, limit: int = MAX_JSON_BYTES) -> bytes:
    """The raw body, refused with 413 as soon as it grows past `limit` bytes, and with 408
    when it arrives too slowly (`_body_deadline`)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async with _body_deadline():
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    return b"".join(chunks)


@asynccontextmanager
async def _body_deadline() -> AsyncIterator[None]:
    """A 408 when the body takes longer than `BODY_TIMEOUT_SECONDS` to arrive."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
            yield
    except TimeoutError:
        raise APIError(
            ErrorCode.REQUEST_TIMEOUT,
            f"request body did not arrive within {BODY_TIMEOUT_SECONDS:g} seconds",
            headers={"Connection": "close"},
        ) from None


def _too_large(limit: int) -> APIError:
    return APIError(ErrorCode.PAYLOAD_TOO_LARGE, f"request body is larger than {limit} bytes")


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object of sound text, else a 4xx (an empty body is `{}`)."""
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type):
        raise APIError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"request body must be application/json (got {content_type.partition(';')[0]})",
        )
    raw = await read_body(request)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_int=_parse_int)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    check_text(body)
    return body


def _too_deep() -> APIError:
    return invalid(f"request body is nested more than {MAX_DEPTH} levels deep")


def check_text(value: Any, path: str = "", depth: int = 0) -> None:
    """Refuse (400, naming the field) nesting past `MAX_DEPTH`, and text no provider can
    take: NUL characters and lone UTF-16 surrogates."""
    if depth > MAX_DEPTH:
        raise _too_deep()
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid(f"{path or 'body'} must not contain NUL characters", path or None)
        try:
            value.encode()
        except UnicodeEncodeError:
            raise invalid(f"{path or 'body'} is not valid Unicode text", path or None) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, path, depth + 1)
            check_text(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_text(item, f"{path}[{index}]", depth + 1)


async def form_fields(
    request: Request, settings: Settings
) -> tuple[dict[str, Any], dict[str, UploadFile]]:
    """A form body: its text fields (`a[b]` keys nested as `{"a": {"b": ...}}`) and files.

    Bounded: a few fields, one file of at most `media_max_bytes`, in `BODY_TIMEOUT_SECONDS`."""
    declared = request.headers.get("content-length", "")
    limit = settings.media_max_bytes + MAX_JSON_BYTES
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    try:
        async with _body_deadline():
            form: FormData = await request.form(
                max_files=2, max_fields=32, max_part_size=MAX_FORM_FIELD_BYTES
            )
    except MultiPartException as exc:
        raise invalid(f"invalid multipart body: {exc.message}") from exc
    fields: dict[str, Any] = {}
    files: dict[str, UploadFile] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            files[key] = value
            continue
        outer, bracket, rest = key.partition("[")
        if bracket and rest.endswith("]"):
            fields.setdefault(outer, {})[rest[:-1]] = value
        else:
            fields[key] = value
    check_text(fields)
    return fields, files


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema with its `$defs` inlined, to embed in an OpenAPI operation."""
    schema = model.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


IDEMPOTENCY_KEY_DOC = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "retry-safe submits: the same key and request return the first job",
    "schema": {"type": "string", "maxLength": 255},
}


def request_body_doc(
    json_models: list[type[BaseModel]],
    form_model: type[BaseModel] | None = None,
    *,
    idempotency_key: bool = False,
    examples: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`openapi_extra` documenting a hand-parsed body: one of `json_models` (or a form), its
    named `examples` (OpenAPI `Example` objects), and the `Idempotency-Key` header when the
    route reads it by hand."""
    schemas = [inline_schema(model) for model in json_models]
    json_body: dict[str, Any] = {"schema": schemas[0] if len(schemas) == 1 else {"oneOf": schemas}}
    if examples:
        json_body["examples"] = examples
    content: dict[str, Any] = {"application/json": json_body}
    if form_model is not None:
        content["multipart/form-data"] = {"schema": inline_schema(form_model)}
    doc: dict[str, Any] = {"requestBody": {"required": True, "content": content}}
    if idempotency_key:
        doc["parameters"] = [IDEMPOTENCY_KEY_DOC]
    return doc


def respond(
    body: BaseModel,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    *,
    exclude_none: bool = True,
) -> JSONResponse:
    """`body` as JSON (by default without its None fields), for routes that pick their model."""
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=exclude_none), status_code, headers=headers
    )
