"""The OpenAPI document, told true: each route's error statuses with its dialect's error
body, the security schemes, and no FastAPI 422 (validation errors are answered 400).

A route lists its error statuses with `api.errors.errors(...)`; its tags name its dialect
(`ERROR_BODIES`), whose error bodies document them; other routes answer in the native shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from api.dialects.bodies import inline_schema
from api.dialects.native.shapes import NativeErrorBody
from api.dialects.openai.shapes import OpenAIErrorBody
from api.dialects.seed001.shapes import Seed001ErrorBody
from api.dialects.seed002.shapes import Seed002ErrorBody
from api.dialects.seed003.shapes import Seed003ErrorBody

# Each dialect's tag, and the body of its errors.
ERROR_BODIES: dict[str, type[BaseModel]] = {
    "native (seed 000)": NativeErrorBody,
    "seed 001": Seed001ErrorBody,
    "seed 002": Seed002ErrorBody,
    "seed 003": Seed003ErrorBody,
    "seed 004": OpenAIErrorBody,
    "OpenAI videos": OpenAIErrorBody,
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
}
KEYED: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
# Routes anyone may call; and those a signed link opens without a key.
PUBLIC_PREFIXES = ("/healthz", "/readyz", "/v1/providers/")
SIGNED_SUFFIXES = ("/content", "/thumbnail")
SIGNED_PREFIX = "/v1/video/generations/"


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    components = doc.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    schemas = components.get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            models = list(
                dict.fromkeys(
                    ERROR_BODIES[tag] for tag in operation.get("tags", ()) if tag in ERROR_BODIES
                )
            )
            body = _error_schema(models or [NativeErrorBody])
            responses: dict[str, Any] = operation["responses"]
            responses.pop("422", None)
            for status, response in responses.items():
                if status[0] in "45" and not path.startswith(PUBLIC_PREFIXES[:2]):
                    response["content"] = {"application/json": {"schema": body}}
            security = _security(path)
            if security is not None:
                operation["security"] = security
    return doc


def _error_schema(models: list[type[BaseModel]]) -> dict[str, Any]:
    schemas = [inline_schema(model) for model in models]
    return schemas[0] if len(schemas) == 1 else {"oneOf": schemas}


def _security(path: str) -> list[dict[str, list[str]]] | None:
    if path.startswith(PUBLIC_PREFIXES) or path == "/v1/models":
        return None
    if path.startswith(SIGNED_PREFIX) and path.endswith(SIGNED_SUFFIXES):
        return [*KEYED, {}]  # or a signed link (`expires` and `signature`)
    return KEYED
