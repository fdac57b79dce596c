"""`/v1/video/generations`: the native dialect (seed 000) and seed 001, which share the path.

`POST` tells them apart by the `X-App-ID` header or seed 001's `parameters` /
`response_format` fields (`api.dialects.seed001.speaks`). `GET` answers in the dialect that
created the job; a job of another dialect answers in seed 001's shape when the request has
`X-App-ID`, else in the native shape. Errors before the body is read follow the header too.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import CurrentTenant, S3Client, SettingsDep, TemporalClient, authenticate
from api.dialects import seed001
from api.dialects.bodies import json_object, parse, request_body_doc, respond
from api.dialects.common import (
    elapsed_ms,
    read_live_job,
    signed_links,
    stream_thumbnail,
    stream_video,
    submit,
)
from api.dialects.webhooks import webhook_target
from api.errors import APIError, ErrorShape, native_error, shaped_route
from api.schemas import CreateGeneration, Generation, Perf, Segments, VideoInfo
from api.signing import verify
from providers.catalog import resolve_request
from reelay.jobs import JobStatus, JobView, micro_usd_to_usd
from reelay.settings import Settings
from reelay.tenants import Tenant

DIALECT = "native"
# Seed 001's header: the job's app id, and the sign of a seed 001 client.
AppHeader = Annotated[str | None, Header(alias="X-App-ID", description="seed 001: app id")]


def _error_shape(request: Request) -> ErrorShape:
    return seed001.error_response if seed001.APP_HEADER in request.headers else native_error


router = APIRouter(
    prefix="/v1/video/generations",
    tags=["native (seed 000)"],
    route_class=shaped_route(_error_shape),
)

_STATUS_WORDS = {
    JobStatus.QUEUED: "pending",
    JobStatus.PROCESSING: "processing",
    JobStatus.STORING: "processing",
    JobStatus.COMPLETED: "complete",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}


def render(view: JobView, settings: Settings, *, latency_ms: int | None = None) -> Generation:
    perf = Perf(
        request_id=view.request_id,
        model_used=view.model_used,
        provider=view.provider,
        latency_ms=latency_ms,
    )
    body = Generation(
        id=view.job_id,
        status=_STATUS_WORDS[view.status],
        model=view.requested_model,
        prompt=view.prompt,
        negative_prompt=view.negative_prompt,
        duration_seconds=view.duration_seconds,
        resolution=view.resolution,
        aspect_ratio=view.aspect_ratio,
        created_at=view.created_at,
        estimated_cost_usd=micro_usd_to_usd(view.estimated_cost_micro_usd),
        perf=perf,
    )
    if view.status is JobStatus.QUEUED:
        body.queue_position = view.queue_position
    if view.status in (JobStatus.PROCESSING, JobStatus.STORING):
        body.progress_percent = round(view.progress * 100)
        if view.eta_seconds is not None:
            body.estimated_remaining_seconds = round(view.eta_seconds)
    links = signed_links(view, settings)
    if view.status is JobStatus.COMPLETED and view.video is not None and links is not None:
        body.video_url, body.thumbnail_url = links
        body.video = VideoInfo.model_validate(view.video, from_attributes=True)
        body.progress_percent = 100
    if view.completed_at is not None and view.status is JobStatus.COMPLETED:
        perf.generation_time_ms = round(
            (view.completed_at - view.created_at).total_seconds() * 1000
        )
    if view.cost_micro_usd is not None:
        perf.cost_usd = micro_usd_to_usd(view.cost_micro_usd)
    if view.error is not None:
        body.error_message = view.error.message
        body.error_code = view.error.code
    if view.segments_total:
        body.segments = Segments(total=view.segments_total, completed=view.segments_done)
    body.webhooks = view.webhooks or None
    return body


@router.post(
    "",
    status_code=202,
    tags=["seed 001"],
    response_model=None,
    responses={202: {"model": Generation | seed001.VideoOperation}},
    openapi_extra=request_body_doc([CreateGeneration, seed001.CreateVideoOperation]),
)
async def create_generation(
    request: Request, client: TemporalClient, settings: SettingsDep, app_id: AppHeader = None
) -> JSONResponse:
    """Submit a job. Seed 000's body, or seed 001's (`X-App-ID`, `parameters`,
    `response_format`), which is answered in seed 001's shape."""
    started = time.perf_counter()
    body = await json_object(request)
    if seed001.speaks(request, body):
        return await seed001.create(request, body, client, settings, app_id=app_id)
    tenant = authenticate(request)
    order = parse(CreateGeneration, body)
    resolved = resolve_request(
        prompt=order.prompt,
        model=order.model,
        duration_seconds=order.duration_seconds,
        resolution=order.resolution,
        aspect_ratio=order.aspect_ratio,
        negative_prompt=order.negative_prompt,
    )
    webhook = webhook_target(
        order.webhook_url,
        order.webhook_events,
        settings,
        url_field="webhook_url",
        events_field="webhook_events",
    )
    admission = await submit(
        client,
        settings,
        tenant,
        resolved,
        dialect=DIALECT,
        webhook=webhook,
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return respond(render(admission.view, settings, latency_ms=elapsed_ms(started)), 202)


@router.get(
    "/{job_id}",
    tags=["seed 001"],
    response_model=None,
    responses={200: {"model": Generation | seed001.VideoOperation}},
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


@router.post("/{job_id}/cancel", status_code=202, response_model_exclude_none=True)
async def cancel_generation(
    job_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> Generation:
    view, handle = await read_live_job(client, s3, settings, job_id, tenant)
    if view.status.is_terminal:
        raise APIError(409, "conflict", f"job is already {_STATUS_WORDS[view.status]}")
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
        if not expires.isdigit() or not verify(
            settings.signing_key(), job_id, int(expires), signature
        ):
            raise APIError(403, "forbidden", "download link is invalid or expired")
    else:
        owner = authenticate(request)
    view, _ = await read_live_job(client, s3, settings, job_id, owner)
    return view


@router.get(
    "/{job_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp4": {}}}, 206: {"content": {"video/mp4": {}}}},
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
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def get_generation_thumbnail(
    request: Request, job_id: str, client: TemporalClient, s3: S3Client, settings: SettingsDep
) -> Response:
    view = await _finished_video(request, job_id, client, s3, settings)
    return await stream_thumbnail(view, s3, settings, request)
