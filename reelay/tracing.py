"""OpenTelemetry traces: API → Temporal → activities → provider HTTP calls.

Off unless an OTLP endpoint is configured (`REELAY_OTLP_ENDPOINT`, or the standard
`OTEL_EXPORTER_OTLP_ENDPOINT`): then spans go by OTLP/HTTP to `<endpoint>/v1/traces`.
When off, no tracer provider is installed, nothing is instrumented and OpenTelemetry's API
stays the no-op it is by default.

The job id is on every span that belongs to a job (`reelay.job_id`): the span processor
copies it from the job context bound by `job_context` (the API when it knows the job, the
activity interceptor for activities and their HTTP calls), or from the workflow id of
Temporal's own spans.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.contrib.opentelemetry import TracingInterceptor

from reelay.settings import Settings

JOB_ID_ATTRIBUTE = "reelay.job_id"
#: The attributes of the job context that also go on spans (the rest is for logs only).
SPAN_FIELDS = {"job_id": JOB_ID_ATTRIBUTE, "provider": "reelay.provider", "model": "reelay.model"}
_TEMPORAL_WORKFLOW_ID = "temporalWorkflowID"
_enabled = False


def otlp_endpoint(settings: Settings) -> str:
    """The OTLP/HTTP base URL traces go to; '' when tracing is off."""
    return settings.otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")


def job_id_of(workflow_id: str) -> str:
    """The job a workflow belongs to: a segment or webhook delivery id starts with it."""
    return workflow_id.split(":", 1)[0]


class JobIdSpanProcessor(SpanProcessor):
    """Puts the job id (and provider, model) of the current job context on each new span."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        bound = structlog.contextvars.get_contextvars()
        for field, attribute in SPAN_FIELDS.items():
            if bound.get(field):
                span.set_attribute(attribute, str(bound[field]))
        workflow_id = (span.attributes or {}).get(_TEMPORAL_WORKFLOW_ID)
        if JOB_ID_ATTRIBUTE not in (span.attributes or {}) and isinstance(workflow_id, str):
            span.set_attribute(JOB_ID_ATTRIBUTE, job_id_of(workflow_id))

    def on_end(self, span: ReadableSpan) -> None:
        pass


def configure_tracing(settings: Settings, service: str) -> bool:
    """Install the OTLP exporter and instrument httpx when an endpoint is set; whether on."""
    global _enabled
    endpoint = otlp_endpoint(settings)
    if not endpoint or _enabled:
        return _enabled
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(JobIdSpanProcessor())
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()
    _enabled = True
    return True


def trace_http_client(client: httpx.AsyncClient) -> None:
    """Trace the requests of a client on a transport other than httpx's own (which
    `configure_tracing` instruments for every client), when tracing is on."""
    if not _enabled:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client)


def tracing_enabled() -> bool:
    return _enabled


def temporal_interceptors() -> list[TracingInterceptor]:
    """Temporal's OpenTelemetry interceptor for a client (and its workers), when tracing."""
    return [TracingInterceptor()] if _enabled else []


def shutdown_tracing() -> None:
    """Export what is buffered (at process exit)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


@contextmanager
def job_context(**fields: Any) -> Iterator[None]:
    """Bind a job's correlation fields (job_id, tenant, request_id, provider, ...) to the
    logs of the block and to its spans (the current one and those started inside)."""
    present = {name: value for name, value in fields.items() if value}
    with structlog.contextvars.bound_contextvars(**present):
        annotate_span(**present)
        yield


def bind_job(**fields: Any) -> None:
    """Like `job_context`, for the rest of the current context (an API request)."""
    present = {name: value for name, value in fields.items() if value}
    structlog.contextvars.bind_contextvars(**present)
    annotate_span(**present)


def annotate_span(**fields: Any) -> None:
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for field, attribute in SPAN_FIELDS.items():
        if fields.get(field):
            span.set_attribute(attribute, str(fields[field]))
