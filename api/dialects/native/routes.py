"""`/v1/video/generations`: the native dialect (seed 000) and seed 001, which share the path.

`POST` tells them apart by the `X-App-ID` header or seed 001's `parameters` /
`response_format` fields (`api.dialects.seed001.shapes.speaks`). `GET` answers in the dialect
that created the job; a job of another dialect answers in seed 001's shape when the request
has `X-App-ID`, else in the native shape. Errors before the body is read follow the header.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BeforeValidator

from api import jobs
from api.deps import CurrentTenant, S3Client, SettingsDep, TemporalClient, authenticate
from api.dialects.admission import admit
from api.dialects.bodies import json_object, request_body_doc, respond
from api.dialects.common import (
    elapsed_ms,
    read_live_job,
    stream_thumbnail,
    stream_video,
)
from api.dialects.native.shapes import (
    DIALECT,
    EXAMPLES,
    STATUS_FROM_WORD,
    STATUS_WORDS,
    CreateGeneration,
    Generation,
    GenerationList,
    render,
    submission,
)
from api.dialects.seed001 import routes as seed001_routes
from api.dialects.seed001 import shapes as seed001
from api.errors import ErrorShape, errors, native_error, shaped_route
from api.problem import APIError
from api.signing import verify
from reelay.errors import ErrorCode
from reelay.jobs import JobStatus, JobView
from reelay.settings import Settings
from reelay.tenants import Tenant

# RFC 3339 with an offset, as the document's `date-time` says (not pydantic's lax forms:
# unix seconds, a date alone, a naive time).
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, str) and not RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:00:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]

# Seed 001's header: the job's app id, and the sign of a seed 001 client.
AppHeader = Annotated[str | None, Header(alias="X-App-ID", description="seed 001: app id")]


def _error_shape(request: Request) -> ErrorShape:
    if seed001.APP_HEADER in request.headers:
        return seed001_routes.error_response
    return native_error


router = APIRouter(
    prefix="/v1/video/generations",
    tags=["native (seed 000)"],
    route_class=shaped_route(_error_shape),
)


@router.post(
    "",
    status_code=202,
    tags=["seed 001"],
    response_model=None,
    responses={
        202: {"model": Generation | seed001.VideoOperation},
        **errors(400, 401, 402, 408, 409, 413, 415, 429, 503),
    },
    openapi_extra=request_body_doc(
        [CreateGeneration, seed001.CreateVideoOperation],
        idempotency_key=True,
        examples=EXAMPLES | seed001.EXAMPLES,
    ),
)
async def create_generation(
    request: Request,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
    app_id: AppHeader = None,
) -> JSONResponse:
    """Submit a job. Seed 000's body, or seed 001's (`X-App-ID`, `parameters`,
    `response_format`), which is answered in seed 001's shape."""
    started = time.perf_counter()
    tenant = authenticate(request)
    body = await json_object(request)
    if seed001.speaks(request.headers, body):
        return await seed001_routes.create(
            request, body, tenant, client, s3, settings, app_id=app_id
        )
    admission = await admit(
        submission(body),
        client,
        s3,
        settings,
        tenant,
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return respond(render(admission.view, settings, latency_ms=elapsed_ms(started)), 202)


@router.get("", response_model_exclude_none=True, responses=errors(400, 401, 503))
async def list_generations(
    tenant: CurrentTenant,
    client: TemporalClient,
    settings: SettingsDep,
    status: Annotated[str | None, Query(description="pending, processing, complete, ...")] = None,
    model: str | None = None,
    app_id: str | None = None,
    created_after: Timestamp | None = None,
    created_before: Timestamp | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> GenerationList:
    """The tenant's jobs, newest first, filtered, cursor-paginated."""
    where = jobs.JobFilter(
        status=_status(status),
        model=model,
        app_id=app_id,
        created_after=created_after,
        created_before=created_before,
    )
    page = await jobs.list_jobs(client, tenant, where, cursor=cursor, limit=limit)
    return GenerationList(
        data=[render(view, settings) for view in page.views],
        has_more=page.next_cursor is not None,
        next_cursor=page.next_cursor,
    )


def _status(word: str | None) -> JobStatus | None:
    if word is None:
        return None
    try:
        return STATUS_FROM_WORD[word.lower()]
    except KeyError:
        allowed = ", ".join(sorted(STATUS_FROM_WORD))
        raise APIError(
            ErrorCode.INVALID_REQUEST, f"status must be one of {allowed}", param="status"
        ) from None


@router.get(
    "/{job_id}",
    tags=["seed 001"],
    response_model=None,
    responses={200: {"model": Generation | seed001.VideoOperation}, **errors(401, 404, 503)},
)
async def get_generation(
    job_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
    app_id: AppHeader = None,
) -> JSONResponse:
    """The job in the dialect that created it (see the module's note for other dialects')."""
    view, _ = await read_live_job(client, s3, settings, job_id, tenant)
    if view.dialect == seed001.DIALECT or (view.dialect != DIALECT and app_id is not None):
        return respond(seed001.render(view, settings))
    return respond(render(view, settings))


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    response_model_exclude_none=True,
    responses=errors(401, 404, 409, 503),
)
async def cancel_generation(
    job_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> Generation:
    view, handle = await read_live_job(client, s3, settings, job_id, tenant)
    if view.status.is_terminal:
        raise APIError(ErrorCode.CONFLICT, f"job is already {STATUS_WORDS[view.status]}")
    await handle.cancel()
    return render(view, settings)


async def _finished_video(
    request: Request, job_id: str, client: TemporalClient, s3: S3Client, settings: Settings
) -> JobView:
    """The job behind a download: by signed link, or by the owner's key."""
    expires = request.query_params.get("expires", "")
    signature = request.query_params.get("signature", "")
    owner: Tenant | None = None
    if expires or signature:
        if not verify(settings.signing_key(), job_id, expires, signature):
            raise APIError(ErrorCode.FORBIDDEN, "download link is invalid or expired")
    else:
        owner = authenticate(request)
    view, _ = await read_live_job(client, s3, settings, job_id, owner)
    return view


@router.get(
    "/{job_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"video/mp4": {}}},
        206: {"content": {"video/mp4": {}}},
        **errors(401, 403, 404, 416, 503),
    },
)
async def get_generation_content(
    request: Request, job_id: str, client: TemporalClient, s3: S3Client, settings: SettingsDep
) -> Response:
    """The MP4, streamed from object storage; honours `Range`. Bearer key or signed link.

    The signed `video_url` of every dialect points here."""
    view = await _finished_video(request, job_id, client, s3, settings)
    return await stream_video(view, s3, settings, request)


@router.get(
    "/{job_id}/thumbnail",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/jpeg": {}}}, **errors(401, 403, 404, 416, 503)},
)
async def get_generation_thumbnail(
    request: Request, job_id: str, client: TemporalClient, s3: S3Client, settings: SettingsDep
) -> Response:
    view = await _finished_video(request, job_id, client, s3, settings)
    return await stream_thumbnail(view, s3, settings, request)
