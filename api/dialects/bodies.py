"""Reading request bodies on routes that parse them by hand (routes shared by two dialects
tell them apart by the body), validating them with a dialect's model, and documenting them."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException

from api.errors import APIError, validation_error

M = TypeVar("M", bound=BaseModel)
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").lower()
    return content_type.startswith(FORM_TYPES)


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, else a 400 (an empty body is `{}`)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, "invalid_request", "request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise APIError(400, "invalid_request", "request body must be a JSON object")
    return body


async def form_fields(request: Request) -> tuple[dict[str, Any], dict[str, UploadFile]]:
    """A form body: its text fields (`a[b]` keys nested as `{"a": {"b": ...}}`) and files."""
    try:
        form: FormData = await request.form()
    except MultiPartException as exc:
        raise APIError(400, "invalid_request", f"invalid multipart body: {exc.message}") from exc
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
    return fields, files


def parse(model: type[M], data: dict[str, Any]) -> M:
    """`data` validated by `model`, or a 400 naming the first offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


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


def request_body_doc(
    json_models: list[type[BaseModel]], form_model: type[BaseModel] | None = None
) -> dict[str, Any]:
    """`openapi_extra` documenting a hand-parsed body: one of `json_models` (or a form)."""
    schemas = [inline_schema(model) for model in json_models]
    content: dict[str, Any] = {
        "application/json": {"schema": schemas[0] if len(schemas) == 1 else {"oneOf": schemas}}
    }
    if form_model is not None:
        content["multipart/form-data"] = {"schema": inline_schema(form_model)}
    return {"requestBody": {"required": True, "content": content}}


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
