"""Job listings against a real Temporal server: newest admitted first, whatever order the
workflow starts reached Temporal in, and jobs from before `ReelayCreated` still listed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio.common import TypedSearchAttributes

from api.dispatch import start_workflow
from api.jobs import JobFilter, list_jobs
from reelay.jobs import JobView
from reelay.settings import Settings
from reelay.temporal import connect
from tests.support import TENANT, job_spec, wait_until
from workflows import search_attributes
from workflows.video_generation import MEMO_VIEW, VideoGenerationWorkflow


async def test_jobs_list_in_admission_order_not_start_order(settings: Settings) -> None:
    """No worker runs on this test's queue: the jobs stay as admitted, in visibility."""
    client = await connect(settings)
    tenant = TENANT.model_copy(update={"id": f"listing-{uuid.uuid4().hex[:8]}"})
    admitted = datetime.now(UTC) - timedelta(minutes=1)
    specs = [
        job_spec(settings, f"listed {n}", duration_seconds=2).model_copy(
            update={"tenant_id": tenant.id, "created_at": admitted + timedelta(milliseconds=n)}
        )
        for n in range(3)
    ]
    for spec in (specs[2], specs[0], specs[1]):  # the starts race: Temporal sees 2, 0, 1
        await start_workflow(client, settings, spec)
    # a job started before the attribute existed: it sorts on its start time (the latest)
    legacy = job_spec(settings, "listed before ReelayCreated", duration_seconds=2)
    legacy = legacy.model_copy(update={"tenant_id": tenant.id})
    await client.start_workflow(
        VideoGenerationWorkflow.run,
        legacy,
        id=legacy.job_id,
        task_queue=settings.task_queue,
        search_attributes=TypedSearchAttributes(
            [
                pair
                for pair in search_attributes.for_new_job(legacy).search_attributes
                if pair.key != search_attributes.CREATED
            ]
        ),
        memo={MEMO_VIEW: JobView.from_spec(legacy)},
    )
    newest_first = [legacy.job_id, specs[2].job_id, specs[1].job_id, specs[0].job_id]

    async def listed(where: JobFilter = JobFilter()) -> list[str]:
        page = await list_jobs(client, tenant, where, cursor=None, limit=50)
        return [view.job_id for view in page.views]

    async def all_listed() -> bool:
        return await listed() == newest_first

    await wait_until(all_listed)
    paged: list[str] = []
    cursor = None
    while True:
        page = await list_jobs(client, tenant, JobFilter(), cursor=cursor, limit=1)
        paged += [view.job_id for view in page.views]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert paged == newest_first
    since_second = JobFilter(created_after=specs[1].created_at)
    assert await listed(since_second) == newest_first[:3]
    before_second = JobFilter(created_before=specs[1].created_at)
    assert await listed(before_second) == [specs[0].job_id]
