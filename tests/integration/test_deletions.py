"""Which ended jobs were deleted (`api.dialects.deletion.deleted`): the store's record, and
for a job that ended before the store kept deletions, its tombstone in S3 (real SQLite, real
SeaweedFS)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from minio import Minio

from api import accounts
from api.dialects import deletion
from reelay.jobs import JobStatus, JobView
from reelay.settings import Settings
from reelay.storage import s3_client
from tests.support import job_spec, unique_prompt


def ended_job(settings: Settings, *, before_store: bool, since: datetime) -> JobView:
    """A job that completed a day before `since`, or just after it."""
    view = JobView.from_spec(job_spec(settings, unique_prompt()))
    shift = timedelta(days=-1) if before_store else timedelta(seconds=1)
    return view.model_copy(update={"status": JobStatus.COMPLETED, "completed_at": since + shift})


def leave_tombstone(s3: Minio, settings: Settings, job_id: str) -> None:
    s3.put_object(settings.s3_bucket, deletion.tombstone_key(job_id), io.BytesIO(b"{}"), 2)


async def test_a_deletion_is_found_in_the_store_for_a_whole_page_at_once(
    settings: Settings,
) -> None:
    store = await accounts.ledger(settings)
    since = store.deletions_since
    views = [ended_job(settings, before_store=False, since=since) for _ in range(3)]
    running = JobView.from_spec(job_spec(settings, unique_prompt()))
    await store.mark_deleted(views[0].job_id, views[0].tenant_id)
    await store.mark_deleted(running.job_id, running.tenant_id)
    await store.mark_deleted(views[0].job_id, views[0].tenant_id)  # again: no change
    # A running job was never deleted, whatever the store says (only an ended one can be).
    found = await deletion.deleted(s3_client(settings), settings, [*views, running])
    assert found == {views[0].job_id}


async def test_only_a_job_that_ended_before_the_store_kept_deletions_is_looked_up_in_s3(
    settings: Settings,
) -> None:
    since = (await accounts.ledger(settings)).deletions_since
    older = ended_job(settings, before_store=True, since=since)
    newer = ended_job(settings, before_store=False, since=since)
    kept = ended_job(settings, before_store=True, since=since)
    s3 = s3_client(settings)
    for view in (older, newer):
        leave_tombstone(s3, settings, view.job_id)
    # The newer job's tombstone is not looked for: it ended after deletions moved to the store.
    assert await deletion.deleted(s3, settings, [older, newer, kept]) == {older.job_id}
    assert await deletion.is_deleted(s3, settings, older)
    assert not await deletion.is_deleted(s3, settings, kept)
