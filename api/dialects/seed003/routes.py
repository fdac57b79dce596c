"""Seed 003's routes and error shape (see `api.dialects.seed003.shapes`)."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from api.deps import (
    CurrentTenant,
    IdempotencyKey,
    S3Client,
    SettingsDep,
    TemporalClient,
    authenticate,
)
from api.dialects.admission import admit
from api.dialects.bodies import json_object, request_body_doc
from api.dialects.common import read_live_job
from api.dialects.seed003.shapes import (
    EXAMPLES,
    MICRO_USD_PER_CREDIT,
    STATUS_PREFIX,
    Seed003Accepted,
    Seed003GenerateVideo,
    Seed003VideoGeneration,
    enhancement_applied,
    render,
    submission,
)
from api.errors import errors, shaped_route
from api.problem import APIError
from reelay.errors import ErrorCode


def error_response(exc: APIError) -> JSONResponse:
    code = "VALIDATION_ERROR" if exc.code is ErrorCode.INVALID_REQUEST else exc.error_type.upper()
    return JSONResponse(
        {"error": {"code": code, "message": exc.message}}, exc.status_code, headers=exc.headers
    )


router = APIRouter(tags=["seed 003"], route_class=shaped_route(lambda _: error_response))


@router.post(
    "/api/v1/videos/generate",
    responses=errors(400, 401, 402, 408, 409, 413, 415, 429, 503),
    openapi_extra=request_body_doc([Seed003GenerateVideo], examples=EXAMPLES),
)
async def generate_video(
    request: Request,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
    workspace: Annotated[
        str | None, Header(alias="X-Workspace-Id", description="the job's app id")
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> Seed003Accepted:
    tenant = authenticate(request)
    admission = await admit(
        submission(await json_object(request)),
        client,
        s3,
        settings,
        tenant,
        idempotency_key=idempotency_key,
        app_id=workspace,
    )
    view = admission.view
    available = admission.available_micro_usd
    return Seed003Accepted(
        video_generation_id=view.job_id,
        status="processing",
        credits_used=math.ceil(view.estimated_cost_micro_usd / MICRO_USD_PER_CREDIT),
        remaining_credits=None if available is None else available // MICRO_USD_PER_CREDIT,
        enhance_prompt_applied=enhancement_applied(view),
        status_url=f"{STATUS_PREFIX}/{view.job_id}",
    )


@router.get(
    STATUS_PREFIX + "/{video_generation_id}",
    response_model_exclude_none=True,
    responses=errors(401, 404, 503),
)
async def get_video_generation(
    video_generation_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> Seed003VideoGeneration:
    view, _ = await read_live_job(client, s3, settings, video_generation_id, tenant)
    return render(view, settings)
