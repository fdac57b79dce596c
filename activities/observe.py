"""What the worker's activities tell operators: metrics, log context and span attributes.

One activity interceptor, so no activity carries observability code and no workflow code
records anything (workflows stay deterministic). From each activity's input it binds the
job's correlation fields (job id, tenant, request id, provider, model) for its logs and
spans; from its outcome it records the metrics of `reelay.metrics`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities.accounts import JobEnd
from activities.errors import TURNS_TAKEN_TYPE, error_label
from activities.inputs import (
    PollRequest,
    ProviderTaskRef,
    StitchRequest,
    StoreRequest,
    SubmitRequest,
)
from activities.polling import TERMINAL, PollOutcome
from providers.base import ProviderTaskStatus
from reelay import metrics
from reelay.jobs import JobSpec, StoredVideo
from reelay.tracing import job_context, job_id_of
from reelay.webhooks import WebhookAttempt, WebhookDelivery


@dataclass
class _Job:
    """The correlation fields an activity's input tells."""

    job_id: str
    tenant: str = ""
    request_id: str = ""
    provider: str = ""
    model: str = ""


def _job_of(arg: Any, workflow_id: str) -> _Job:
    job = _Job(job_id=job_id_of(workflow_id))
    spec = arg.job if isinstance(arg, SubmitRequest) else arg
    if isinstance(spec, JobSpec):
        job.tenant, job.request_id, job.model = spec.tenant_id, spec.request_id, spec.model
        job.provider = spec.routes[0].adapter
    if isinstance(arg, SubmitRequest | ProviderTaskRef):
        job.provider = arg.route.adapter
    elif isinstance(arg, StoreRequest | PollRequest):
        job.provider = arg.task.route.adapter
    elif isinstance(arg, WebhookDelivery):
        job.job_id, job.tenant = arg.job_id, arg.tenant_id
    elif isinstance(arg, JobEnd):
        job.tenant, job.provider, job.model = arg.tenant_id, arg.provider, arg.model
    return job


class ObservingInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Observed(next)


class _Observed(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        arg = input.args[0] if input.args else None
        job = _job_of(arg, info.workflow_id or "")
        name = info.activity_type
        with job_context(
            job_id=job.job_id,
            tenant=job.tenant,
            request_id=job.request_id,
            provider=job.provider,
            model=job.model,
        ):
            started = time.perf_counter()
            try:
                result = await super().execute_activity(input)
            except Exception as exc:
                _failed(name, arg, job, exc)
                raise
            finally:
                elapsed = time.perf_counter() - started
                metrics.ACTIVITY_LATENCY.labels(name, job.provider).observe(elapsed)
            _succeeded(arg, result)
            return result


def _failed(name: str, arg: Any, job: _Job, exc: Exception) -> None:
    error = error_label(exc)
    metrics.ACTIVITY_ERRORS.labels(name, job.provider, error).inc()
    refused = isinstance(exc, ApplicationError) and exc.non_retryable
    handed_over = error == TURNS_TAKEN_TYPE  # submitted through the queue instead
    if refused and not handed_over and isinstance(arg, JobSpec | SubmitRequest):
        metrics.JOBS_FAILED.labels(job.model, job.provider, error).inc()


def _succeeded(arg: Any, result: Any) -> None:
    if isinstance(arg, SubmitRequest):
        _submitted(arg)
    elif isinstance(result, ProviderTaskStatus) and result.state in TERMINAL:
        assert isinstance(arg, ProviderTaskRef)
        _ended(arg, result)
    elif isinstance(result, PollOutcome) and result.status.state in TERMINAL:
        assert isinstance(arg, PollRequest)
        _ended(arg.task, result.status)
        if result.video is not None and arg.store is not None:  # the loop stored it too
            _stored("segment" if arg.store.key else "job", result.video)
    elif isinstance(result, StoredVideo) and isinstance(arg, StoreRequest | StitchRequest):
        kind = "chain" if isinstance(arg, StitchRequest) else "segment" if arg.key else "job"
        _stored(kind, result)
    elif isinstance(arg, JobEnd):
        metrics.JOBS_ENDED.labels(arg.model, arg.provider, arg.state.value).inc()
    elif isinstance(result, WebhookAttempt) and isinstance(arg, WebhookDelivery):
        metrics.WEBHOOK_DELIVERIES.labels(arg.event, _webhook_outcome(result)).inc()


def _stored(kind: str, video: StoredVideo) -> None:
    metrics.VIDEOS_STORED.labels(kind).inc()
    metrics.VIDEO_SECONDS_STORED.labels(kind).inc(video.duration_seconds)


def _ended(task: ProviderTaskRef, status: ProviderTaskStatus) -> None:
    reason = status.failure_kind.value if status.failure_kind else ""
    metrics.PROVIDER_TASKS_ENDED.labels(task.route.adapter, status.state.value, reason).inc()


def _submitted(request: SubmitRequest) -> None:
    """A provider accepted a clip: count it, a failover, and the seconds bought and sold."""
    job, route = request.job, request.route
    labels = (job.model, route.adapter)
    metrics.SUBMISSIONS.labels(*labels).inc()
    if route != job.routes[0]:
        metrics.FAILOVERS.labels(*labels).inc()
    bought = route.clip_seconds or job.duration_seconds
    price_usd_per_second = job.price_micro_usd_per_second / 1_000_000
    metrics.UPSTREAM_SECONDS.labels(*labels).inc(bought)
    metrics.SECONDS_SOLD.labels(*labels).inc(job.duration_seconds)
    metrics.UPSTREAM_COST.labels(*labels).inc(bought * price_usd_per_second)
    metrics.PRICE.labels(*labels).inc(job.duration_seconds * price_usd_per_second)


def _webhook_outcome(attempt: WebhookAttempt) -> str:
    if attempt.delivered:
        return "delivered"
    if attempt.refused:
        return "refused"
    if attempt.status_code is not None:
        return f"http_{attempt.status_code // 100}xx"
    return "no_response"
