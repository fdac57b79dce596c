"""Seed 004's submit and download route (see `api.dialects.seed004.shapes`); its
`POST /v1/videos` and `GET /v1/videos/{id}` are shared with OpenAI (`api.dialects.videos`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from minio import Minio
from temporalio.client import Client

from api.deps import CurrentTenant, S3Client, SettingsDep, TemporalClient
from api.dialects.admission import admit
from api.dialects.common import read_live_job, stream_video
from api.dialects.openai.routes import error_response
from api.dialects.seed004.shapes import Seed004Video, render, submission
from api.errors import errors, shaped_route
from reelay.settings import Settings
from reelay.tenants import Tenant

router = APIRouter(tags=["seed 004"], route_class=shaped_route(lambda _: error_response))


async def create(
    body: dict[str, Any],
    tenant: Tenant,
    client: Client,
    s3: Minio,
    settings: Settings,
    idempotency_key: str | None = None,
) -> Seed004Video:
    admission = await admit(
        submission(body), client, s3, settings, tenant, idempotency_key=idempotency_key
    )
    return render(admission.view, settings)


@router.get(
    "/v1/videos/{video_id}/download",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"video/mp4": {}}},
        206: {"content": {"video/mp4": {}}},
        **errors(401, 404, 416, 503),
    },
)
async def download_video(
    request: Request,
    video_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> Response:
    """The MP4 (honours `Range`); 404 until the job is completed."""
    view, _ = await read_live_job(client, s3, settings, video_id, tenant)
    return await stream_video(view, s3, settings, request)
