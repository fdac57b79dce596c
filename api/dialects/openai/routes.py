"""The OpenAI dialect's routes and error shape (see `api.dialects.openai.shapes`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from minio import Minio
from starlette.datastructures import UploadFile
from temporalio.client import Client

from api import jobs
from api.deps import CurrentTenant, S3Client, SettingsDep, TemporalClient
from api.dialects import deletion
from api.dialects.admission import admit, submit
from api.dialects.common import read_live_job, stream_thumbnail, stream_video
from api.dialects.openai.shapes import (
    DIALECT,
    OpenAIVideo,
    OpenAIVideoDeleted,
    OpenAIVideoList,
    render,
    submission,
)
from api.errors import errors, shaped_route
from api.problem import APIError
from reelay.errors import ErrorCode
from reelay.media import store_upload
from reelay.settings import Settings
from reelay.tenants import Tenant


def error_response(exc: APIError) -> JSONResponse:
    status, error_type, code = exc.status_code, "invalid_request_error", None
    headers = dict(exc.headers or {})
    if status == 401:
        code = "invalid_api_key"
    elif status == 402:
        status, error_type, code = 429, "insufficient_quota", "insufficient_quota"
        headers["x-should-retry"] = "false"
    elif status == 429:
        error_type, code = "rate_limit_exceeded", exc.error_type
    elif status >= 500:
        error_type = "server_error"
    elif exc.code not in (ErrorCode.INVALID_REQUEST, ErrorCode.NOT_FOUND):
        code = exc.error_type
    body = {"message": exc.message, "type": error_type, "param": exc.param, "code": code}
    return JSONResponse({"error": body}, status, headers=headers or None)


router = APIRouter(tags=["OpenAI videos"], route_class=shaped_route(lambda _: error_response))


async def create(
    fields: dict[str, Any],
    files: dict[str, UploadFile],
    tenant: Tenant,
    client: Client,
    s3: Minio,
    settings: Settings,
    idempotency_key: str | None = None,
) -> OpenAIVideo:
    upload = files.get("input_reference")
    order = submission(fields, with_upload=upload is not None)
    if upload is None:
        admission = await admit(
            order, client, s3, settings, tenant, idempotency_key=idempotency_key
        )
        return render(admission.view)
    data = await upload.read(settings.media_max_bytes + 1)
    stored = await store_upload(
        s3, settings, tenant.id, data, upload.content_type, field="input_reference"
    )
    admission = await submit(
        client,
        settings,
        tenant,
        order.resolved,
        dialect=DIALECT,
        image=stored.ref,
        idempotency_key=idempotency_key,
    )
    return render(admission.view)


@router.get("/v1/videos", responses=errors(400, 401, 404, 503))
async def list_videos(
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
    after: Annotated[
        str | None, Query(description="id of the last video of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
) -> OpenAIVideoList:
    """The tenant's videos (jobs of every dialect), by creation time.

    From Temporal visibility via `api.jobs.list_jobs`; `order=asc` sorts the newest
    `api.jobs.LIST_SCAN_LIMIT` matching jobs. Deleted videos are left out."""
    where = jobs.JobFilter()
    cursor = None
    if after is not None:
        await read_live_job(client, s3, settings, after, tenant)
        created, following = await jobs.listing_cursor(client, after)
        if order == "desc":
            cursor = following
        else:
            where.created_after = created
    scan = limit if order == "desc" else jobs.LIST_SCAN_LIMIT
    page = await jobs.list_jobs(client, tenant, where, cursor=cursor, limit=scan)
    views = page.views if order == "desc" else page.views[::-1]
    views = [view for view in views if view.job_id != after]
    has_more = page.next_cursor is not None if order == "desc" else len(views) > limit
    views = views[:limit]
    gone = await deletion.deleted(s3, settings, views)
    data = [render(view) for view in views if view.job_id not in gone]
    return OpenAIVideoList(
        data=data,
        has_more=has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )


@router.delete("/v1/videos/{video_id}", responses=errors(401, 404, 503))
async def delete_video(
    video_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> OpenAIVideoDeleted:
    """Delete the video and its thumbnail; a running job is cancelled. The id 404s after."""
    view, handle = await read_live_job(client, s3, settings, video_id, tenant)
    await deletion.delete_job(view, handle, s3, settings)
    return OpenAIVideoDeleted(id=view.job_id)


@router.get(
    "/v1/videos/{video_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"video/mp4": {}, "image/jpeg": {}}},
        206: {"content": {"video/mp4": {}}},
        **errors(400, 401, 404, 416, 503),
    },
)
async def download_content(
    request: Request,
    video_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
    variant: Literal["video", "thumbnail"] = "video",
) -> Response:
    """The MP4 (`variant=video`, honours `Range`) or its JPEG thumbnail."""
    view, _ = await read_live_job(client, s3, settings, video_id, tenant)
    if variant == "thumbnail":
        return await stream_thumbnail(view, s3, settings, request)
    return await stream_video(view, s3, settings, request)
