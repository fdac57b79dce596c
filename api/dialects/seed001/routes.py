"""Seed 001's submit and error shape; its routes are the native path's
(`api.dialects.native.routes`), which hands seed 001 bodies here."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from temporalio.client import Client

from api.dialects.bodies import parse, respond
from api.dialects.common import submit
from api.dialects.seed001.shapes import (
    DIALECT,
    MESSAGES,
    MISSING_FIELDS,
    NAMES,
    CreateVideoOperation,
    Seed001Parameters,
    render,
)
from api.errors import answer_errors_in
from api.problem import APIError, invalid
from providers.catalog import find_model, resolve_request
from reelay.settings import Settings
from reelay.tenants import Tenant


def error_response(exc: APIError) -> JSONResponse:
    """`{"error": "<message>"}` with the seed's wording where it has one."""
    message = MESSAGES.get(exc.code, exc.message)
    return JSONResponse({"error": message}, exc.status_code, headers=exc.headers)


async def create(
    request: Request,
    body: dict[str, Any],
    tenant: Tenant,
    client: Client,
    settings: Settings,
    *,
    app_id: str | None,
) -> JSONResponse:
    """Submit `body` (seed 001's) for `X-App-ID` `app_id`; errors from here on in its shape."""
    answer_errors_in(request, error_response)
    if not body.get("model") or not body.get("prompt"):
        raise invalid(MISSING_FIELDS)
    order = parse(CreateVideoOperation, body)
    if order.response_format not in (None, "mp4"):
        raise invalid(
            f"Unsupported response_format '{order.response_format}': only mp4 is supported",
            "response_format",
        )
    if find_model(order.model) is None:
        raise invalid("Model not found", "model")
    parameters = order.parameters or Seed001Parameters()
    resolved = resolve_request(
        prompt=order.prompt,
        model=order.model,
        duration_seconds=parameters.durationSeconds,
        resolution=parameters.resolution,
        aspect_ratio=parameters.aspectRatio,
        negative_prompt=parameters.negativePrompt,
        names=NAMES,
    )
    admission = await submit(
        client,
        settings,
        tenant,
        resolved,
        dialect=DIALECT,
        app_id=app_id or order.appId,
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return respond(render(admission.view, settings), 202)
