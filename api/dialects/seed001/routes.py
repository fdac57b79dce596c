"""Seed 001's submit and error shape; its routes are the native path's
(`api.dialects.native.routes`), which hands seed 001 bodies here."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from minio import Minio
from temporalio.client import Client

from api.dialects.admission import admit
from api.dialects.bodies import respond
from api.dialects.seed001.shapes import (
    MESSAGES,
    render,
    submission,
)
from api.errors import answer_errors_in
from api.problem import APIError
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
    s3: Minio,
    settings: Settings,
    *,
    app_id: str | None,
) -> JSONResponse:
    """Submit `body` (seed 001's) for `X-App-ID` `app_id`; errors from here on in its shape."""
    answer_errors_in(request, error_response)
    admission = await admit(
        submission(body),
        client,
        s3,
        settings,
        tenant,
        idempotency_key=request.headers.get("idempotency-key"),
        app_id=app_id,
    )
    return respond(render(admission.view, settings), 202)
