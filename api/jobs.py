"""Starting, reading and listing jobs: the dialect-neutral part every router uses."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.api.common.v1 import SearchAttributes
from temporalio.api.common.v1 import WorkflowExecution as ExecutionRef
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
)
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import QueryRejectCondition, SearchAttributeKey
from temporalio.converter import (
    DataConverter,
    WorkflowSerializationContext,
    decode_typed_search_attributes,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.polling import PollingActivities, show_position
from api import accounts, dispatch
from api.notes import note_job
from api.problem import APIError, not_found, unavailable
from providers.catalog import ResolvedRequest
from providers.registry import deployed_routes
from reelay import idempotency, metrics
from reelay.accounts import Refusal, SubmitOutcome, ledger_account_id
from reelay.errors import ErrorCode
from reelay.jobs import (
    ImageRef,
    JobSpec,
    JobStatus,
    JobView,
    WebhookDeliveryState,
    WebhookTarget,
)
from reelay.settings import Settings
from reelay.store import JobState, StoreUnavailable
from reelay.tenants import Tenant
from workflows import search_attributes
from workflows.video_generation import MEMO_CURRENT, MEMO_VIEW, VideoGenerationWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow

# Events of a job workflow none of whose tasks has completed: started, task scheduled, started.
BEFORE_FIRST_TASK_EVENTS = 3
# A running job's read waits this long for a worker to answer, then shows the memo's view
# with the status from visibility (no worker running, or all of them busy).
QUERY_TIMEOUT = timedelta(seconds=2)
JOB_ID_PREFIX = "job_vid_"
T = TypeVar("T")
_JOB_ID = re.compile(r"job_vid_[0-9a-f]{32}")


class Admission(BaseModel):
    """What a submit achieved: the job, its place in the tenant's queue, and the balance."""

    view: JobView
    queue_position: int | None = None
    available_micro_usd: int | None = None
    duplicate: bool = False

    @property
    def outcome(self) -> str:
        """For the admissions metric: duplicate, queued (waiting for a slot) or admitted."""
        if self.duplicate:
            return "duplicate"
        return "queued" if self.queue_position is not None else "admitted"


def new_job_id(tenant: Tenant | None = None, idempotency_key: str | None = None) -> str:
    """A fresh id; with an idempotency key, the same id for the same tenant and key."""
    if tenant is not None and idempotency_key:
        return JOB_ID_PREFIX + idempotency.job_digest(tenant.id, idempotency_key)
    return JOB_ID_PREFIX + uuid.uuid4().hex


def is_job_id(job_id: str) -> bool:
    """Only top-level job ids name jobs (not a chain's segments, not webhook deliveries)."""
    return _JOB_ID.fullmatch(job_id) is not None


def new_request_id() -> str:
    return f"req_vid_{uuid.uuid4().hex[:24]}"


def build_spec(
    resolved: ResolvedRequest,
    tenant: Tenant,
    settings: Settings,
    *,
    job_id: str,
    request_id: str,
    dialect: str = "native",
    app_id: str | None = None,
    image: ImageRef | None = None,
    webhook: WebhookTarget | None = None,
    seed: int | None = None,
    request_hash: str | None = None,
    batch_id: str | None = None,
) -> JobSpec:
    routes = deployed_routes(settings, resolved.routes)
    if not routes:
        raise APIError(
            ErrorCode.INVALID_REQUEST,
            f"model '{resolved.requested_model}' is not available: no provider route is "
            "configured for it (see GET /v1/models)",
        )
    return JobSpec(
        job_id=job_id,
        tenant_id=tenant.id,
        request_id=request_id,
        model=resolved.model.id,
        requested_model=resolved.requested_model,
        routes=routes,
        prompt=resolved.prompt,
        negative_prompt=resolved.negative_prompt,
        duration_seconds=resolved.duration_seconds,
        resolution=resolved.resolution,
        aspect_ratio=resolved.aspect_ratio,
        audio=resolved.audio,
        enhance_prompt=resolved.enhance_prompt,
        seed=seed,
        image=image,
        dialect=dialect,
        app_id=app_id,
        webhook=webhook,
        price_micro_usd_per_second=resolved.price_micro_usd_per_second,
        created_at=datetime.now(UTC),
        deadline_seconds=resolved.model.deadline_seconds,
        poll_min_seconds=settings.poll_min_seconds,
        poll_max_seconds=settings.poll_max_seconds,
        poll_heartbeat_timeout_seconds=settings.poll_heartbeat_timeout_seconds,
        failover_after_seconds=settings.provider_failover_after_seconds,
        request_hash=request_hash,
        segments=resolved.segments,
        batch_id=batch_id,
    )


async def start_job(
    client: Client, settings: Settings, spec: JobSpec, tenant: Tenant | None = None
) -> Admission:
    """Admit and start a job: through the tenant's account (credits, limits, queue) when
    limits are on, else directly. Raises APIError 402 / 409 / 429 / 503 on refusal.

    With an idempotency key (`spec.request_hash`), a job that exists under the key answers
    for itself: the same request gets it back, another request a 409."""
    note_job(
        job_id=spec.job_id,
        tenant=spec.tenant_id,
        dialect=spec.dialect,
        request_id=spec.request_id,
        model=spec.model,
    )
    try:
        admission = await _admit(client, settings, spec, tenant)
    except APIError as exc:
        metrics.ADMISSIONS.labels(spec.dialect, spec.model, exc.code.value).inc()
        raise
    metrics.ADMISSIONS.labels(spec.dialect, spec.model, admission.outcome).inc()
    return admission


async def _admit(
    client: Client, settings: Settings, spec: JobSpec, tenant: Tenant | None
) -> Admission:
    if spec.request_hash is not None:
        existing = await _existing_job(client, settings, spec, tenant)
        if existing is not None:
            return existing
    if tenant is None:
        return await _start_directly(client, settings, spec, tenant)
    if settings.limits_enabled:
        return await _start_through_account(client, settings, spec, tenant)
    return await _start_unmetered(client, settings, spec, tenant)


async def _existing_job(
    client: Client, settings: Settings, spec: JobSpec, tenant: Tenant | None
) -> Admission | None:
    """The job already made under this idempotency key, or None; 409 for another request."""
    try:
        view, _ = await read_job(client, settings, spec.job_id, tenant)
    except APIError as exc:
        if exc.code is ErrorCode.NOT_FOUND:
            return None
        raise
    if not idempotency.same_request(view.request_hash, spec.request_hash):
        raise APIError(ErrorCode.IDEMPOTENCY_CONFLICT, idempotency.CONFLICT_MESSAGE)
    return Admission(view=view, queue_position=view.queue_position, duplicate=True)


async def _start_through_account(
    client: Client, settings: Settings, spec: JobSpec, tenant: Tenant
) -> Admission:
    """Reserve in the ledger store and keep the spec in its outbox, in one transaction, then
    start the job's workflow off the request (`api.dispatch`): a submit waits for neither
    Temporal nor a worker, and an admitted job is never lost, only started late."""
    spec = spec.model_copy(update={"account_id": ledger_account_id(tenant.id)})
    try:
        outcome = await accounts.submit(settings, tenant, spec, spec.model_dump_json())
    except Refusal as refusal:
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
        raise APIError(ErrorCode(refusal.kind), refusal.message, headers=headers) from None
    except StoreUnavailable as exc:
        raise unavailable("account") from exc
    if outcome.duplicate:
        return await _duplicate(client, settings, spec, tenant, outcome)
    state = JobState.QUEUED if outcome.queue_position is not None else JobState.RUNNING
    dispatch.start_soon(client, settings, spec, state)
    view = JobView.from_spec(spec)
    view.queue_position = outcome.queue_position
    return Admission(
        view=view,
        queue_position=outcome.queue_position,
        available_micro_usd=outcome.available_micro_usd,
    )


async def _duplicate(
    client: Client, settings: Settings, spec: JobSpec, tenant: Tenant, outcome: SubmitOutcome
) -> Admission:
    """The ledger has this job under the same request: show it."""
    view = await _shown_duplicate(client, settings, spec, tenant)
    view.queue_position = outcome.queue_position
    return Admission(
        view=view,
        queue_position=outcome.queue_position,
        available_micro_usd=outcome.available_micro_usd,
        duplicate=True,
    )


async def _shown_duplicate(
    client: Client, settings: Settings, spec: JobSpec, tenant: Tenant
) -> JobView:
    """A job the store has under the same request, as it stands (its first submit may still be
    starting it: then as that submit will)."""
    try:
        view, _ = await read_job(client, settings, spec.job_id, tenant)
    except APIError as exc:
        if exc.code is not ErrorCode.NOT_FOUND:
            raise
        view = JobView.from_spec(spec)
    return view


async def _start_unmetered(
    client: Client, settings: Settings, spec: JobSpec, tenant: Tenant
) -> Admission:
    """Limits off: no reservation, but the same outbox, so that a submit waits for neither
    Temporal nor a worker here either."""
    try:
        store = await accounts.ledger(settings)
        added = await store.enqueue(spec, spec.request_hash, datetime.now(UTC))
    except Refusal as refusal:
        raise APIError(ErrorCode(refusal.kind), refusal.message) from None
    except StoreUnavailable as exc:
        raise unavailable("job queue") from exc
    if not added:
        view = await _shown_duplicate(client, settings, spec, tenant)
        return Admission(view=view, duplicate=True)
    dispatch.start_soon(client, settings, spec, JobState.UNMETERED)
    return Admission(view=JobView.from_spec(spec))


async def _start_directly(
    client: Client, settings: Settings, spec: JobSpec, tenant: Tenant | None
) -> Admission:
    """Start the job's workflow within the request (callers without a tenant: the history
    recorder and the tests' `start_job`, which expect the workflow to exist on return)."""
    try:
        await dispatch.start_workflow(client, settings, spec, in_turn=False)
    except WorkflowAlreadyStartedError:
        existing = await _existing_job(client, settings, spec, tenant)
        if existing is None:
            raise unavailable("job queue") from None
        return existing
    except RPCError as exc:
        raise unavailable("job queue") from exc
    return Admission(view=JobView.from_spec(spec))


async def read_job(
    client: Client, settings: Settings, job_id: str, tenant: Tenant | None
) -> tuple[JobView, WorkflowHandle[Any, JobView]]:
    """The job's current view, or 404 when it does not exist or belongs to another tenant.
    A job admitted but not yet started is started now (or shown from the outbox).

    `tenant=None` skips the ownership check; only for callers holding a signed link.
    """
    if not is_job_id(job_id):
        raise not_found()
    handle = client.get_workflow_handle_for(VideoGenerationWorkflow.run, job_id)
    try:
        view = await _queried_view(client, handle)
    except LookupError:
        pending = await dispatch.pending_spec(settings, job_id)
        if pending is not None and (
            dispatch.is_starting(job_id)  # waiting its turn in this process: shown as admitted
            or not await dispatch.start_admitted(client, settings, pending, in_turn=False)
        ):
            view = JobView.from_spec(pending)
        else:  # started now, or just now by its dispatcher, or no such job
            try:
                view = await _queried_view(client, handle)
            except LookupError:
                raise not_found() from None
    except APIError as exc:  # Temporal unreachable: an admitted job not started yet shows
        pending = await dispatch.pending_spec(settings, job_id)
        if pending is None or exc.code is not ErrorCode.SERVICE_UNAVAILABLE:
            raise
        view = JobView.from_spec(pending)
    if tenant is not None and view.tenant_id != tenant.id:
        raise not_found()
    note_job(job_id=job_id, tenant=view.tenant_id, dialect=view.dialect, provider=view.provider)
    if view.status is JobStatus.QUEUED and view.account_id is not None:
        try:
            view.queue_position = await accounts.queue_position(
                client, view.tenant_id, view.account_id, job_id
            )
        except StoreUnavailable:
            view.queue_position = None
    view.webhooks = await _webhook_states(client, view)
    return view, handle


async def _queried_view(client: Client, handle: WorkflowHandle[Any, JobView]) -> JobView:
    """The job's view as Temporal holds it, asking a worker only when one must answer.

    One `describe` (the server alone answers it) reads the memo, which is the view itself for
    a job that keeps it current (`MEMO_CURRENT`, every job since the `current-memo` patch;
    the API starts jobs with it set), a finished job, and a job whose workflow has not yet
    completed a task (its view is still the one it started with); so no read waits for a
    busy worker or makes one replay a history. Only a job from before the patch (or a run
    it continued as, before its memo was carried over) answers the `view` query (its live
    progress); when no worker answers in time, the memo again. Raises `LookupError` when
    there is no such job workflow."""
    description = await _described(client, handle.id)
    if description.has_memo(MEMO_VIEW) and (
        description.status is not WorkflowExecutionStatus.RUNNING
        or description.history_length <= BEFORE_FIRST_TASK_EVENTS
        or (description.has_memo(MEMO_CURRENT) and await description.memo_value(MEMO_CURRENT, bool))
    ):
        return await _memo_view(description)
    try:
        return await handle.query(
            VideoGenerationWorkflow.view,
            reject_condition=QueryRejectCondition.NOT_OPEN,
            rpc_timeout=QUERY_TIMEOUT,
        )
    except WorkflowQueryFailedError as exc:  # its handler failed: no view to show
        raise LookupError(handle.id) from exc
    except (WorkflowQueryRejectedError, RPCError):  # closed meanwhile, or no worker answered
        return await _memo_view(await _described(client, handle.id))


async def _webhook_states(client: Client, view: JobView) -> list[WebhookDeliveryState]:
    """The job's final-event deliveries (progress events are not tracked here)."""
    states = []
    for delivery_id in view.webhook_deliveries:
        if ":webhook:progress" in delivery_id:
            continue
        handle = client.get_workflow_handle_for(WebhookDeliveryWorkflow.run, delivery_id)
        try:
            status = await handle.query(WebhookDeliveryWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        except RPCError:
            continue
        states.append(
            WebhookDeliveryState(
                event=status.event,
                state=status.state,
                attempts=status.attempts,
                last_status_code=status.last_status_code,
                last_error=status.last_error,
            )
        )
    return states


@dataclass(frozen=True)
class JobDescription:
    """A job workflow as the server describes it, decoded only where it is read: the SDK's
    `describe` decodes every search attribute (twice) and builds every field, a quarter of
    the API's CPU for a status read."""

    raw: DescribeWorkflowExecutionResponse
    converter: DataConverter

    @property
    def workflow_type(self) -> str:
        return self.raw.workflow_execution_info.type.name

    @property
    def status(self) -> WorkflowExecutionStatus | None:
        status = self.raw.workflow_execution_info.status
        return WorkflowExecutionStatus(status) if status else None

    @property
    def history_length(self) -> int:
        return self.raw.workflow_execution_info.history_length

    @property
    def start_time(self) -> datetime:
        return self.raw.workflow_execution_info.start_time.ToDatetime(tzinfo=UTC)

    @property
    def pending_activities(self) -> Sequence[PendingActivityInfo]:
        return self.raw.pending_activities

    def has_memo(self, key: str) -> bool:
        return key in self.raw.workflow_execution_info.memo.fields

    async def memo_value(self, key: str, type_hint: type[T]) -> T:
        """The memo's `key` (`KeyError` when it has none)."""
        payload = self.raw.workflow_execution_info.memo.fields[key]
        value: T = (await self.converter.decode([payload], [type_hint]))[0]
        return value

    def search_attribute(self, key: SearchAttributeKey[Any]) -> Any:
        """One search attribute's value (None when unset), decoding only that one."""
        fields = self.raw.workflow_execution_info.search_attributes.indexed_fields
        if key.name not in fields:
            return None
        one = SearchAttributes()
        one.indexed_fields[key.name].CopyFrom(fields[key.name])
        return decode_typed_search_attributes(one).get(key)


async def _described(client: Client, job_id: str) -> JobDescription:
    """The job workflow's description; `LookupError` when there is no such job workflow."""
    try:
        raw = await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=client.namespace, execution=ExecutionRef(workflow_id=job_id)
            ),
            retry=True,
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise LookupError(job_id) from exc
        raise unavailable("job store") from exc
    context = WorkflowSerializationContext(namespace=client.namespace, workflow_id=job_id)
    description = JobDescription(raw, client.data_converter.with_context(context))
    if description.workflow_type != VideoGenerationWorkflow.__name__:
        raise LookupError(job_id)
    return description


async def _memo_view(description: JobDescription) -> JobView:
    """The memo's view (as of the job's start or its end), with the status operators see.
    A run continued as new before the memo was carried over has none until it ends: 503."""
    if not description.has_memo(MEMO_VIEW):
        raise unavailable("job view")
    view = await description.memo_value(MEMO_VIEW, JobView)
    status = description.search_attribute(search_attributes.STATUS)
    if status:
        view.status = JobStatus(status)
    if view.status is JobStatus.PROCESSING:
        show_position(
            view, await poll_loop_position(description.pending_activities, description.converter)
        )
    return view


async def poll_loop_position(
    pending_activities: Sequence[PendingActivityInfo], converter: DataConverter
) -> object:
    """The job's poll loop's last heartbeat (its position, `activities.polling`), if it has
    one: a job since `store-in-poll` stores in the loop, with no workflow task to record the
    status, and progress moves there in finer steps than the memo's."""
    for pending in pending_activities:
        beat = pending.heartbeat_details.payloads
        if pending.activity_type.name == PollingActivities.poll_until_done.__name__ and beat:
            return (await converter.decode(beat))[0]
    return None


class JobPage(BaseModel):
    views: list[JobView]
    next_cursor: str | None = None


class JobFilter(BaseModel):
    status: JobStatus | None = None
    model: str | None = None
    app_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


# Temporal's SQL visibility cannot ORDER BY, so a page is sorted here from at most this many
# of the newest matching jobs (a time-bounded cursor keeps later pages correct).
LIST_SCAN_LIMIT = 1000
# SQLite visibility keeps a Datetime attribute to the millisecond, so the query's time bounds
# are widened by one tick and applied exactly to the full-precision values it returns.
_VISIBILITY_TICK = timedelta(milliseconds=1)


async def list_jobs(
    client: Client, tenant: Tenant, where: JobFilter, *, cursor: str | None, limit: int
) -> JobPage:
    """A tenant's jobs, newest admitted first, from Temporal visibility (what operators see
    in the UI).

    Only the page's own jobs have their memo decoded, so a call costs little beyond the scan."""
    clauses = [
        "WorkflowType = 'VideoGenerationWorkflow'",
        f"{search_attributes.TENANT.name} = {_quoted(tenant.id, 'tenant')}",
    ]
    if where.status is not None:
        clauses.append(f"{search_attributes.STATUS.name} = {_quoted(where.status.value, 'status')}")
    if where.model:
        clauses.append(f"{search_attributes.MODEL.name} = {_quoted(where.model, 'model')}")
    if where.app_id:
        clauses.append(f"{search_attributes.APP.name} = {_quoted(where.app_id, 'app_id')}")
    earliest = _utc(where.created_after) if where.created_after else None
    before = _utc(where.created_before) if where.created_before else None
    if earliest is not None:
        clauses.append(_created(">=", earliest, "created_after"))
    if before is not None:
        clauses.append(_created("<", before, "created_before"))
    after = _decode_cursor(cursor) if cursor else None
    if after is not None:
        clauses.append(_created("<=", after[0], "cursor"))
    found: list[tuple[tuple[datetime, str], WorkflowExecution]] = []
    query = " AND ".join(clauses)
    try:
        async for execution in client.list_workflows(query, limit=LIST_SCAN_LIMIT):
            created = _admitted_at(
                execution.typed_search_attributes.get(search_attributes.CREATED),
                execution.start_time,
            )
            key = (created, execution.id)
            if earliest is not None and created < earliest:
                continue
            if before is not None and created >= before:
                continue
            if after is not None and key >= after:
                continue
            found.append((key, execution))
    except RPCError as exc:
        raise unavailable("job listing") from exc
    found.sort(key=lambda item: item[0], reverse=True)
    page = found[:limit]
    views = [await _listed_view(execution) for _, execution in page]
    next_cursor = _encode_cursor(*page[-1][0]) if len(found) > limit else None
    return JobPage(views=views, next_cursor=next_cursor)


def _created(operator: str, moment: datetime, field: str) -> str:
    """A bound on admission time, one visibility tick wider than `moment` (the caller applies
    it exactly); a job started before `ReelayCreated` existed is bounded on its start time."""
    _iso(moment, field)
    widened = moment - _VISIBILITY_TICK if operator.startswith(">") else moment + _VISIBILITY_TICK
    when = _quoted(_iso(widened, field))
    created = search_attributes.CREATED.name
    return f"({created} {operator} {when} OR ({created} IS NULL AND StartTime {operator} {when}))"


async def listing_cursor(client: Client, job_id: str) -> tuple[datetime, str]:
    """The cursor that lists the jobs after this one (desc), and its admission time."""
    description = await _described(client, job_id)
    created = _admitted_at(
        description.search_attribute(search_attributes.CREATED), description.start_time
    )
    return created, _encode_cursor(created, job_id)


def _admitted_at(created: datetime | None, started: datetime) -> datetime:
    """When a job was admitted: its `ReelayCreated`, else (older jobs) its start time."""
    return created if created is not None else started


async def _listed_view(execution: WorkflowExecution) -> JobView:
    view = await execution.memo_value(MEMO_VIEW, type_hint=JobView)
    status = execution.typed_search_attributes.get(search_attributes.STATUS)
    if status:
        view.status = JobStatus(status)
    return view


MAX_FILTER_CHARS = 256


def _quoted(value: str, field: str | None = None) -> str:
    if len(value) > MAX_FILTER_CHARS or "'" in value or "\\" in value or not value.isprintable():
        raise APIError(
            ErrorCode.INVALID_REQUEST, f"{field or 'filter'} has invalid characters", param=field
        )
    return f"'{value}'"


# Visibility stores times as UTC timestamps; anything outside these years cannot be a job's.
_EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
_LATEST = datetime(9998, 12, 31, tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    """`moment` as an aware time (a naive one is taken as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime, field: str) -> str:
    """`moment` in UTC for a visibility query (a naive time is taken as UTC)."""
    aware = _utc(moment)
    try:
        inside = _EARLIEST <= aware <= _LATEST
    except OverflowError:
        inside = False
    if not inside:
        raise APIError(
            ErrorCode.INVALID_REQUEST,
            f"{field} must be between {_EARLIEST.year} and {_LATEST.year}",
            param=field,
        )
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _encode_cursor(start: datetime, job_id: str) -> str:
    raw = json.dumps([start.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        start, job_id = json.loads(base64.urlsafe_b64decode(padded))
        moment = datetime.fromisoformat(start)
    except (ValueError, TypeError) as exc:
        raise APIError(ErrorCode.INVALID_REQUEST, "cursor is not valid", param="cursor") from exc
    if moment.tzinfo is None or not isinstance(job_id, str):
        raise APIError(ErrorCode.INVALID_REQUEST, "cursor is not valid", param="cursor")
    _iso(moment, "cursor")
    return moment, job_id
