"""The OpenAPI document, told true: each route's error statuses with its dialect's error
body, the security schemes, and no FastAPI 422 (validation errors are answered 400); its
tags, one per dialect and shared resource, say which vendor API each dialect imitates.

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
# Every tag a route carries, in the order the docs show them, with what it is.
TAGS: list[dict[str, str]] = [
    {
        "name": "native (seed 000)",
        "description": "Reelay's own dialect, that of seed 000 (Perf's Video Generation API): "
        "`POST /v1/video/generations` with `prompt`, `model`, `duration_seconds`, `resolution`, "
        "`aspect_ratio`; statuses `pending`, `processing`, `complete`, `failed`, `cancelled`; "
        'errors `{"error": {"type", "message"}}`. Lists, cancels and downloads the jobs of '
        "every dialect (the signed `video_url` of each points at `/content`).",
    },
    {
        "name": "seed 001",
        "description": "Seed 001: Lunos's video API (Google Veo operations): `model`, `prompt`, "
        "`parameters.aspectRatio` / `negativePrompt`, `response_format`, the `X-App-ID` header. "
        "It shares the native path, told apart by that header or those fields; statuses "
        '`pending`, `completed`, `failed`; errors `{"error": "<message>"}`.',
    },
    {
        "name": "seed 002",
        "description": "Seed 002: a unified multi-model video API (its vendor is not named "
        "in the seed): `POST /v2/videos/generate` with a model's own `parameters` and "
        "`webhookUrl` / `webhookEvents`, `GET /v2/jobs/{jobId}`; statuses `QUEUED`, "
        "`PROCESSING`, `COMPLETED`, `FAILED`, `CANCELLED`; errors "
        '`{"error", "message", "status"}`.',
    },
    {
        "name": "seed 003",
        "description": "Seed 003: PowerPost's video API: `x-api-key` and `X-Workspace-Id` "
        "headers, `size` landscape or portrait, a required `duration`, `has_audio`, "
        "`source_image` (a media id), credits of $0.01; statuses `processing`, `completed`, "
        '`failed`; errors `{"error": {"code", "message"}}`.',
    },
    {
        "name": "seed 004",
        "description": "Seed 004: Runcrate's video API: `POST /v1/videos` with `duration` and "
        "`aspect_ratio`, `GET /v1/videos/{id}`, `GET /v1/videos/{id}/download`; it shares "
        "`/v1/videos` and the error body with OpenAI's, told apart by the fields sent.",
    },
    {
        "name": "OpenAI videos",
        "description": "OpenAI's Videos API (the `openai` SDK's `client.videos`): create (JSON, "
        "or multipart with an `input_reference` image), retrieve, list, delete, content; model "
        "ids are Reelay's catalog ids; OpenAI's statuses and error body.",
    },
    {
        "name": "account",
        "description": "The tenant's credits, usage and limits; operators top up with the "
        "admin key.",
    },
    {
        "name": "models",
        "description": "The catalog: every model id the dialects accept, with its limits, "
        "price and status (retired and unavailable ones with the reason).",
    },
    {
        "name": "media",
        "description": "Source images for image-to-video: upload once, pass the `media_id`.",
    },
    {
        "name": "batches",
        "description": "Batch backfills: one JSONL file of submit requests (OpenAI's batch "
        "line shape, `{custom_id, method, url, body}`, `url` any submit route above and `body` "
        "what it takes), run as ordinary jobs by a durable `BatchWorkflow`; statuses "
        "`validating`, `in_progress`, `finalizing`, `completed`, `failed`, `cancelled`, "
        "`paused`; an output and an errors file (JSONL); errors in the native shape.",
    },
    {"name": "health", "description": "Liveness, and readiness (Temporal and S3 reachable)."},
    {
        "name": "provider callbacks",
        "description": "Where providers report finished tasks (a per-job token in the URL, "
        "and the provider's signature where it signs); not for clients.",
    },
]
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
    doc = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes, tags=TAGS
    )
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
