"""The native dialect (seed 000): `/v1/video/generations`."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from api import jobs
from api.content import stream_object
from api.deps import CurrentTenant, S3Client, SettingsDep, TemporalClient, authenticate
from api.errors import APIError, not_found
from api.schemas import CreateGeneration, Generation, Perf, VideoInfo
from api.signing import signed_query, verify
from providers.catalog import resolve_request
from reelay.jobs import JobStatus, JobView, micro_usd_to_usd
from reelay.settings import Settings

router = APIRouter(prefix="/v1/video/generations", tags=["native (seed 000)"])

_STATUS_WORDS = {
    JobStatus.QUEUED: "pending",
    JobStatus.PROCESSING: "processing",
    JobStatus.STORING: "processing",
    JobStatus.COMPLETED: "complete",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}


def render(view: JobView, settings: Settings, *, latency_ms: int | None = None) -> Generation:
    base = f"{settings.public_url.rstrip('/')}{router.prefix}/{view.job_id}"
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
    if view.status in (JobStatus.PROCESSING, JobStatus.STORING):
        body.progress_percent = round(view.progress * 100)
        if view.eta_seconds is not None:
            body.estimated_remaining_seconds = round(view.eta_seconds)
    if view.status is JobStatus.COMPLETED and view.video is not None:
        query = signed_query(settings.signing_key(), view.job_id, settings.video_url_ttl_seconds)
        body.video_url = f"{base}/content?{query}"
        body.thumbnail_url = f"{base}/thumbnail?{query}"
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
    return body


@router.post("", status_code=202, response_model_exclude_none=True)
async def create_generation(
    body: CreateGeneration,
    tenant: CurrentTenant,
    client: TemporalClient,
    settings: SettingsDep,
) -> Generation:
    started = time.perf_counter()
    resolved = resolve_request(
        prompt=body.prompt,
        model=body.model,
        duration_seconds=body.duration_seconds,
        resolution=body.resolution,
        aspect_ratio=body.aspect_ratio,
        negative_prompt=body.negative_prompt,
    )
    spec = jobs.build_spec(
        resolved, tenant, settings, job_id=jobs.new_job_id(), request_id=jobs.new_request_id()
    )
    admission = await jobs.start_job(client, settings, spec)
    return render(
        admission.view, settings, latency_ms=round((time.perf_counter() - started) * 1000)
    )


@router.get("/{job_id}", response_model_exclude_none=True)
async def get_generation(
    job_id: str, tenant: CurrentTenant, client: TemporalClient, settings: SettingsDep
) -> Generation:
    view, _ = await jobs.read_job(client, job_id, tenant)
    return render(view, settings)


@router.post("/{job_id}/cancel", status_code=202, response_model_exclude_none=True)
async def cancel_generation(
    job_id: str, tenant: CurrentTenant, client: TemporalClient, settings: SettingsDep
) -> Generation:
    view, handle = await jobs.read_job(client, job_id, tenant)
    if view.status.is_terminal:
        raise APIError(409, "conflict", f"job is already {_STATUS_WORDS[view.status]}")
    await handle.cancel()
    return render(view, settings)


async def _finished_video(
    request: Request, job_id: str, client: TemporalClient, settings: Settings
) -> JobView:
    """The finished job behind a download: by signed link, or by the owner's key."""
    expires = request.query_params.get("expires", "")
    signature = request.query_params.get("signature", "")
    if expires or signature:
        if not expires.isdigit() or not verify(
            settings.signing_key(), job_id, int(expires), signature
        ):
            raise APIError(403, "forbidden", "download link is invalid or expired")
        view, _ = await jobs.read_job(client, job_id, None)
    else:
        view, _ = await jobs.read_job(client, job_id, authenticate(request))
    if view.video is None:
        raise APIError(404, "not_found", f"video of job {job_id} is not ready")
    return view


@router.get(
    "/{job_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp4": {}}}, 206: {"content": {"video/mp4": {}}}},
)
async def get_generation_content(
    request: Request, job_id: str, client: TemporalClient, s3: S3Client, settings: SettingsDep
) -> Response:
    """The MP4, streamed from object storage; honours `Range`. Bearer key or signed link."""
    view = await _finished_video(request, job_id, client, settings)
    assert view.video is not None
    return await stream_object(
        s3,
        settings.s3_bucket,
        view.video.key,
        content_type=view.video.content_type,
        range_header=request.headers.get("range"),
        filename=f"{job_id}.mp4",
    )


@router.get(
    "/{job_id}/thumbnail",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def get_generation_thumbnail(
    request: Request, job_id: str, client: TemporalClient, s3: S3Client, settings: SettingsDep
) -> Response:
    view = await _finished_video(request, job_id, client, settings)
    assert view.video is not None
    if not view.video.thumbnail_key:
        raise not_found(f"job {job_id} has no thumbnail")
    return await stream_object(
        s3,
        settings.s3_bucket,
        view.video.thumbnail_key,
        content_type="image/jpeg",
        range_header=request.headers.get("range"),
        filename=f"{job_id}.jpg",
    )
