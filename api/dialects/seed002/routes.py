"""Seed 002's routes: `POST /v2/videos/generate` and `GET /v2/jobs/{jobId}`, and its error
shape (see `api.dialects.seed002.shapes`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
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
from api.dialects.seed002.shapes import (
    EXAMPLES,
    STATUS_WORDS,
    TITLES,
    Seed002Accepted,
    Seed002GenerateVideo,
    Seed002Job,
    render,
    submission,
)
from api.errors import errors, shaped_route
from api.problem import APIError


def error_response(exc: APIError) -> JSONResponse:
    title = TITLES.get(exc.status_code, "Internal error" if exc.status_code >= 500 else "Error")
    return JSONResponse(
        {"error": title, "message": exc.message, "status": exc.status_code},
        exc.status_code,
        headers=exc.headers,
    )


router = APIRouter(tags=["seed 002"], route_class=shaped_route(lambda _: error_response))


@router.post(
    "/v2/videos/generate",
    status_code=202,
    responses=errors(400, 401, 402, 408, 409, 413, 415, 429, 503),
    openapi_extra=request_body_doc([Seed002GenerateVideo], examples=EXAMPLES),
)
async def generate_video(
    request: Request,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Seed002Accepted:
    tenant = authenticate(request)
    admission = await admit(
        submission(await json_object(request)),
        client,
        s3,
        settings,
        tenant,
        idempotency_key=idempotency_key,
    )
    return Seed002Accepted(jobId=admission.view.job_id, status=STATUS_WORDS[admission.view.status])


@router.get("/v2/jobs/{jobId}", response_model_exclude_none=True, responses=errors(401, 404, 503))
async def get_job(
    jobId: Annotated[str, Path(description="the id from POST /v2/videos/generate")],
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> Seed002Job:
    view, _ = await read_live_job(client, s3, settings, jobId, tenant)
    return render(view, settings)
