"""Deleting a job's video (OpenAI's `DELETE /v1/videos/{id}`).

A Temporal workflow's history cannot be removed from the API, so a deleted job is recorded in
the store (`reelay.store.deleted_jobs`): every dialect's read of an ended job checks it and
answers 404, and the OpenAI listing skips the job, with one indexed query for a whole page.
The video and thumbnail objects are removed. A job still running is cancelled first, and the
delete waits (up to `CANCEL_WAIT_SECONDS`) for the cancellation to end it: a deleted job has
ended, so a read of a running job, the one clients poll, looks nothing up. (If no worker ends
it in that time, reads show the job until it ends, then 404.)

Deletions made before the store kept them left a tombstone object `deleted/<job_id>` in the
bucket instead; a job that ended before the store's `deletions_since` is looked up there too.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

import structlog
from minio import Minio
from minio.error import S3Error
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from api import accounts
from api.content import STORAGE_DOWN, is_missing, storage_unavailable
from api.problem import unavailable
from reelay.jobs import JobView
from reelay.settings import Settings
from reelay.storage import thumbnail_key, video_key
from reelay.store import StoreUnavailable

log = structlog.get_logger()


#: How long a delete waits for the cancellation of a running job to end it.
CANCEL_WAIT_SECONDS = 10.0


def tombstone_key(job_id: str) -> str:
    return f"deleted/{job_id}"


async def deleted(s3: Minio, settings: Settings, views: list[JobView]) -> set[str]:
    """The ids of those of `views` that were deleted (only an ended job can have been).
    While the store (or, for a job deleted before it kept deletions, S3) cannot answer, a
    job counts as not deleted: its status lives in Temporal, and reads must keep working
    through an outage."""
    ended = [view for view in views if view.status.is_terminal]
    if not ended:
        return set()
    since: datetime | None = None  # unknown while the store is down: S3 is asked for all
    try:
        store = await accounts.ledger(settings)
        gone = await store.deleted_among([view.job_id for view in ended])
        since = store.deletions_since
    except StoreUnavailable as exc:
        log.warning("deletion check failed", error=type(exc).__name__)
        gone = set()
    older = [
        view.job_id
        for view in ended
        if view.job_id not in gone
        and (since is None or view.completed_at is None or view.completed_at < since)
    ]
    found = await asyncio.gather(*(_has_tombstone(s3, settings, job_id) for job_id in older))
    return gone | {job_id for job_id, there in zip(older, found, strict=True) if there}


async def is_deleted(s3: Minio, settings: Settings, view: JobView) -> bool:
    return view.job_id in await deleted(s3, settings, [view])


async def _has_tombstone(s3: Minio, settings: Settings, job_id: str) -> bool:
    """Whether a deletion from before the store kept them left its tombstone in S3."""
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
    """Cancel the job if it still runs (and wait for it to end), remove the stored files,
    then record the deletion: a delete cut short before the record (S3 or the store down:
    a 503) leaves the job readable, and the client's retry finishes it."""
    if not view.status.is_terminal:
        with contextlib.suppress(RPCError):  # it finished meanwhile
            await handle.cancel()
        with contextlib.suppress(WorkflowFailureError, RPCError, TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT_SECONDS):
                await handle.result()
    keys = {video_key(view.job_id), thumbnail_key(view.job_id)}
    if view.video is not None:
        keys.add(view.video.key)
        if view.video.thumbnail_key:
            keys.add(view.video.thumbnail_key)
    try:
        for key in sorted(keys):
            await asyncio.to_thread(s3.remove_object, settings.s3_bucket, key)
    except (S3Error, *STORAGE_DOWN) as exc:
        raise storage_unavailable() from exc
    try:
        await (await accounts.ledger(settings)).mark_deleted(view.job_id, view.tenant_id)
    except StoreUnavailable as exc:
        raise unavailable("job store") from exc
