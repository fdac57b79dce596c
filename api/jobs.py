"""Starting and reading jobs: the dialect-neutral part every router uses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import APIError, not_found
from providers.catalog import ResolvedRequest
from reelay.jobs import JobSpec, JobStatus, JobView
from reelay.settings import Settings
from reelay.tenants import Tenant
from workflows import search_attributes
from workflows.video_generation import VideoGenerationWorkflow

QUERY_TIMEOUT = timedelta(seconds=5)
MEMO_VIEW = "view"


def new_job_id() -> str:
    return f"job_vid_{uuid.uuid4().hex}"


def new_request_id() -> str:
    return f"req_vid_{uuid.uuid4().hex[:24]}"


def build_spec(
    resolved: ResolvedRequest, tenant: Tenant, settings: Settings, *, job_id: str, request_id: str
) -> JobSpec:
    return JobSpec(
        job_id=job_id,
        tenant_id=tenant.id,
        request_id=request_id,
        model=resolved.model.id,
        requested_model=resolved.requested_model,
        routes=resolved.routes,
        prompt=resolved.prompt,
        negative_prompt=resolved.negative_prompt,
        duration_seconds=resolved.duration_seconds,
        resolution=resolved.resolution,
        aspect_ratio=resolved.aspect_ratio,
        audio=resolved.audio,
        enhance_prompt=resolved.enhance_prompt,
        price_micro_usd_per_second=resolved.price_micro_usd_per_second,
        created_at=datetime.now(UTC),
        deadline_seconds=resolved.model.deadline_seconds,
        poll_min_seconds=settings.poll_min_seconds,
        poll_max_seconds=settings.poll_max_seconds,
        failover_after_seconds=settings.provider_failover_after_seconds,
    )


class Admission(BaseModel):
    """What a submit achieved: the job, its place in the tenant's queue, and the balance."""

    view: JobView
    queue_position: int | None = None
    available_micro_usd: int | None = None


async def start_job(client: Client, settings: Settings, spec: JobSpec) -> Admission:
    view = JobView.from_spec(spec)
    try:
        await client.start_workflow(
            VideoGenerationWorkflow.run,
            spec,
            id=spec.job_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(search_attributes.TENANT, spec.tenant_id),
                    SearchAttributePair(search_attributes.MODEL, spec.model),
                    SearchAttributePair(search_attributes.STATUS, JobStatus.QUEUED.value),
                ]
            ),
            memo={MEMO_VIEW: view},
        )
    except WorkflowAlreadyStartedError as exc:
        raise APIError(409, "conflict", f"job {spec.job_id} already exists") from exc
    except RPCError as exc:
        raise APIError(503, "service_unavailable", "job queue temporarily unavailable") from exc
    return Admission(view=view)


async def read_job(
    client: Client, job_id: str, tenant: Tenant | None
) -> tuple[JobView, WorkflowHandle]:
    """The job's current view, or 404 when it does not exist or belongs to another tenant.

    `tenant=None` skips the ownership check; only for callers holding a signed link.
    """
    if not job_id.startswith("job_vid_"):
        raise not_found()
    handle = client.get_workflow_handle(job_id)
    try:
        view = await handle.query(VideoGenerationWorkflow.view, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise not_found() from exc
        view = await _view_without_worker(handle)
    if tenant is not None and view.tenant_id != tenant.id:
        raise not_found()
    return view, handle


async def _view_without_worker(handle: WorkflowHandle) -> JobView:
    """No worker answered the query: the view saved at start, with the status operators see."""
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise not_found() from exc
        raise APIError(503, "service_unavailable", "job store temporarily unavailable") from exc
    view = await description.memo_value(MEMO_VIEW, type_hint=JobView)
    status = description.typed_search_attributes.get(search_attributes.STATUS)
    if status:
        view.status = JobStatus(status)
    return view
