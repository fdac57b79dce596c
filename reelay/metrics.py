"""Every Prometheus metric of Reelay, defined once (name, labels, help).

The API exposes its metrics at `/metrics`; a worker on `worker_metrics_port` (its own HTTP
server); the Temporal SDK's own metrics come from its runtime on `temporal_metrics_port`
(`reelay.temporal`). Labels are bounded: route templates (never raw paths), dialects, catalog
model ids, provider names, status words and error codes; never a tenant, job id or URL.

Worker metrics are recorded by the activity interceptor (`activities.observe`), never by
workflow code, so workflows stay deterministic.
"""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

#: What the API serves at /metrics, and what a worker serves: each only its own metrics
#: (plus the process's CPU, memory and GC).
API = CollectorRegistry()
WORKER = CollectorRegistry()
for _registry in (API, WORKER):
    for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        _registry.register(_collector)

#: Seconds: from a fast status read to a long store.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

# --- API ----------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "reelay_http_requests",
    "API requests answered, by route template, method, dialect and status code",
    ["route", "method", "dialect", "status"],
    registry=API,
)
HTTP_LATENCY = Histogram(
    "reelay_http_request_duration_seconds",
    "API request latency (until the response is sent), by route template, method, dialect "
    "and status code",
    ["route", "method", "dialect", "status"],
    buckets=LATENCY_BUCKETS,
    registry=API,
)
ADMISSIONS = Counter(
    "reelay_admissions",
    "Job submissions decided by the API: outcome admitted, queued or duplicate, or the "
    "refusal's error code (insufficient_credits, daily_quota_exceeded, queue_full, ...)",
    ["dialect", "model", "outcome"],
    registry=API,
)
JOBS_IN_FLIGHT = Gauge(
    "reelay_jobs_in_flight",
    "Jobs not yet ended, by status (from Temporal visibility when /metrics is read; the same "
    "value on every API replica: aggregate with max)",
    ["status"],
    registry=API,
)

# --- Worker: provider calls and jobs --------------------------------------------------------
ACTIVITY_LATENCY = Histogram(
    "reelay_activity_duration_seconds",
    "One activity attempt (validate, submit, poll, store, stitch, cancel, webhook), by "
    "activity and provider ('' when none)",
    ["activity", "provider"],
    buckets=LATENCY_BUCKETS,
    registry=WORKER,
)
ACTIVITY_ERRORS = Counter(
    "reelay_activity_errors",
    "Activity attempts that raised, by activity, provider and error type (retryable ones "
    "are retried by Temporal)",
    ["activity", "provider", "error"],
    registry=WORKER,
)
SUBMISSIONS = Counter(
    "reelay_submissions",
    "Provider tasks created (a provider accepted a job or a chain's segment)",
    ["model", "provider"],
    registry=WORKER,
)
FAILOVERS = Counter(
    "reelay_failovers",
    "Submits handed to a later route because an earlier one stayed unavailable",
    ["model", "provider"],
    registry=WORKER,
)
PROVIDER_TASKS_ENDED = Counter(
    "reelay_provider_tasks_ended",
    "Provider tasks seen ending by a poll: state succeeded, failed or cancelled, and the "
    "failure kind (content_refused, invalid_request, internal; '' when none)",
    ["provider", "state", "reason"],
    registry=WORKER,
)
JOBS_ENDED = Counter(
    "reelay_jobs_ended",
    "Jobs ended, by model, provider (the last route tried) and state: completed, failed or "
    "cancelled (counted by the worker that ran the job's end)",
    ["model", "provider", "state"],
    registry=WORKER,
)
JOBS_FAILED = Counter(
    "reelay_jobs_failed",
    "Jobs (or segments) ended by a refusal an activity cannot retry, by error code",
    ["model", "provider", "reason"],
    registry=WORKER,
)
VIDEOS_STORED = Counter(
    "reelay_videos_stored",
    "Videos stored in S3: kind job (a one-clip job completed), segment, or chain (a chained "
    "job's stitched video: the job completed)",
    ["kind"],
    registry=WORKER,
)
VIDEO_SECONDS_STORED = Counter(
    "reelay_video_seconds_stored",
    "Seconds of video stored, by kind (see reelay_videos_stored)",
    ["kind"],
    registry=WORKER,
)
UPSTREAM_SECONDS = Counter(
    "reelay_upstream_seconds_bought",
    "Seconds of video bought upstream (each accepted clip, before trimming)",
    ["model", "provider"],
    registry=WORKER,
)
SECONDS_SOLD = Counter(
    "reelay_seconds_sold",
    "Seconds of video the client is quoted for, counted when the provider accepts the job",
    ["model", "provider"],
    registry=WORKER,
)
UPSTREAM_COST = Counter(
    "reelay_upstream_cost_usd",
    "Estimated upstream cost: seconds bought at the model's list price per second",
    ["model", "provider"],
    registry=WORKER,
)
PRICE = Counter(
    "reelay_price_usd",
    "What clients are quoted: seconds sold at the model's price per second",
    ["model", "provider"],
    registry=WORKER,
)
WEBHOOK_DELIVERIES = Counter(
    "reelay_webhook_deliveries",
    "Webhook delivery attempts: outcome delivered, http_3xx/4xx/5xx (not delivered), "
    "refused (the SSRF check) or no_response (timeout, connection error)",
    ["event", "outcome"],
    registry=WORKER,
)
