"""What every dialect does the same way: read a job that was not deleted, stream its files
(submitting is `api.dialects.admission`, which the worker loads too)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request, Response
from minio import Minio
from temporalio.client import Client, WorkflowHandle

from api import jobs
from api.content import stream_object
from api.dialects import deletion
from api.problem import APIError, not_found
from reelay.errors import ErrorCode
from reelay.jobs import JobView
from reelay.settings import Settings
from reelay.tenants import Tenant


async def read_live_job(
    client: Client, s3: Minio, settings: Settings, job_id: str, tenant: Tenant | None
) -> tuple[JobView, WorkflowHandle[Any, JobView]]:
    """`api.jobs.read_job`, and a 404 for a job that was deleted (an ended job is looked
    up in the store's deletions; a running job cannot have been deleted,
    `api.dialects.deletion`)."""
    view, handle = await jobs.read_job(client, settings, job_id, tenant)
    if await deletion.is_deleted(s3, settings, view):
        raise not_found()
    return view, handle


async def stream_video(view: JobView, s3: Minio, settings: Settings, request: Request) -> Response:
    """The job's MP4 from object storage (honours `Range`); 404 until it is stored."""
    if view.video is None:
        raise APIError(ErrorCode.NOT_FOUND, f"video of job {view.job_id} is not ready")
    return await stream_object(
        s3,
        settings.s3_bucket,
        view.video.key,
        content_type=view.video.content_type,
        range_header=request.headers.get("range"),
        filename=f"{view.job_id}.mp4",
    )


async def stream_thumbnail(
    view: JobView, s3: Minio, settings: Settings, request: Request
) -> Response:
    if view.video is None:
        raise APIError(ErrorCode.NOT_FOUND, f"video of job {view.job_id} is not ready")
    if not view.video.thumbnail_key:
        raise not_found(f"job {view.job_id} has no thumbnail")
    return await stream_object(
        s3,
        settings.s3_bucket,
        view.video.thumbnail_key,
        content_type="image/jpeg",
        range_header=request.headers.get("range"),
        filename=f"{view.job_id}.jpg",
    )


def elapsed_ms(started: float) -> int:
    """Milliseconds since `started` (a `time.perf_counter()` reading)."""
    return round((time.perf_counter() - started) * 1000)
