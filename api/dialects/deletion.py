"""Deleting a job's video (OpenAI's `DELETE /v1/videos/{id}`).

A Temporal workflow's history cannot be removed from the API, so a deleted job leaves a
tombstone object `deleted/<job_id>` in the bucket: every dialect's read of an ended job
checks it and answers 404, and the OpenAI listing skips the job. The video and thumbnail
objects are removed. A job still running is cancelled first, and the delete waits (up to
`CANCEL_WAIT_SECONDS`) for the cancellation to end it: a deleted job has ended, so a read
of a running job, the one clients poll, costs no S3 request. (If no worker ends it in that
time, reads show the job until it ends, then 404.)
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime
from typing import Any

import structlog
from minio import Minio
from minio.error import S3Error
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from api.content import STORAGE_DOWN, is_missing, storage_unavailable
from reelay.jobs import JobView
from reelay.settings import Settings
from reelay.storage import thumbnail_key, video_key

log = structlog.get_logger()


#: How long a delete waits for the cancellation of a running job to end it.
CANCEL_WAIT_SECONDS = 10.0


def tombstone_key(job_id: str) -> str:
    return f"deleted/{job_id}"


async def is_deleted(s3: Minio, settings: Settings, view: JobView) -> bool:
    """Whether the job was deleted (only an ended job can have been). While S3 cannot
    answer, a job counts as not deleted: its status lives in Temporal, and reads must keep
    working through an S3 outage."""
    if not view.status.is_terminal:
        return False
    job_id = view.job_id
    try:
        await asyncio.to_thread(s3.stat_object, settings.s3_bucket, tombstone_key(job_id))
    except S3Error as exc:
        if not is_missing(exc):
            log.warning("tombstone check failed", job_id=job_id, s3_code=exc.code)
        return False
    except STORAGE_DOWN as exc:
        log.warning("tombstone check failed", job_id=job_id, error=type(exc).__name__)
        return False
    return True


async def delete_job(
    view: JobView, handle: WorkflowHandle[Any, JobView], s3: Minio, settings: Settings
) -> None:
    """Cancel the job if it still runs (and wait for it to end), leave the tombstone,
    remove the stored files."""
    if not view.status.is_terminal:
        with contextlib.suppress(RPCError):  # it finished meanwhile
            await handle.cancel()
        with contextlib.suppress(WorkflowFailureError, RPCError, TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT_SECONDS):
                await handle.result()
    record = json.dumps(
        {
            "job_id": view.job_id,
            "tenant_id": view.tenant_id,
            "deleted_at": datetime.now(UTC).isoformat(),
        }
    ).encode()
    keys = {video_key(view.job_id), thumbnail_key(view.job_id)}
    if view.video is not None:
        keys.add(view.video.key)
        if view.video.thumbnail_key:
            keys.add(view.video.thumbnail_key)
    try:
        await asyncio.to_thread(
            s3.put_object,
            settings.s3_bucket,
            tombstone_key(view.job_id),
            io.BytesIO(record),
            len(record),
            content_type="application/json",
        )
        for key in sorted(keys):
            await asyncio.to_thread(s3.remove_object, settings.s3_bucket, key)
    except (S3Error, *STORAGE_DOWN) as exc:
        raise storage_unavailable() from exc
