"""Metrics, correlation ids and span attributes without servers (issue 13)."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.exceptions import ApplicationError

from activities import observe
from activities.errors import TURNS_TAKEN_TYPE
from activities.inputs import SubmitRequest
from api.main import create_app
from reelay import metrics, tracing
from reelay.logging import shutdown_logging
from tests.conftest import isolated_settings
from tests.support import job_spec

JOB_ID = "job_vid_" + "ab" * 16


def records(buffer: io.StringIO) -> list[dict[str, object]]:
    shutdown_logging()
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def requests_counted(**labels: str) -> float:
    return metrics.API.get_sample_value("reelay_http_requests_total", labels) or 0.0


async def test_requests_are_counted_by_route_template_never_by_raw_path() -> None:
    app = create_app(isolated_settings())
    transport = httpx.ASGITransport(app=app)
    template = {"route": "/v1/video/generations/{job_id}", "method": "GET", "status": "401"}
    before = requests_counted(**template, dialect="")
    unmatched = {"route": "unmatched", "method": "GET", "dialect": "", "status": "404"}
    before_unmatched = requests_counted(**unmatched)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get(f"/v1/video/generations/{JOB_ID}")).status_code == 401
        assert (await client.get("/no/such/path/123")).status_code == 404
    assert requests_counted(**template, dialect="") == before + 1
    assert requests_counted(**unmatched) == before_unmatched + 1
    routes = [s.labels.get("route", "") for f in metrics.API.collect() for s in f.samples]
    exposition = "\n".join(routes)
    assert JOB_ID not in exposition and "/no/such/path" not in exposition


async def test_each_request_logs_with_its_request_id(json_logs: io.StringIO) -> None:
    app = create_app(isolated_settings())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/boom", headers={"X-Request-ID": "req-from-caller"})
        await client.get("/boom", headers={"X-Request-ID": "not a token!"})
    logged = [r for r in records(json_logs) if r["event"] == "unhandled error"]
    assert logged[0]["request_id"] == "req-from-caller"
    generated = logged[1]["request_id"]
    assert isinstance(generated, str) and generated.startswith("req_")


def test_temporal_records_get_the_job_id_and_bound_fields_reach_stdlib_records(
    json_logs: io.StringIO,
) -> None:
    workflow_info = {"workflow_id": f"{JOB_ID}:segment:1", "workflow_type": "VideoGeneration"}
    logging.getLogger("temporalio.workflow").warning(
        "route unavailable", extra={"temporal_workflow": workflow_info, "provider": "fal"}
    )
    with tracing.job_context(job_id=JOB_ID, tenant="acme", provider="luma", request_id="r1"):
        logging.getLogger("httpx").warning("Retrying a request ...")
    workflow_record, http_record = records(json_logs)
    assert workflow_record["job_id"] == JOB_ID
    assert workflow_record["workflow_id"] == f"{JOB_ID}:segment:1"
    assert workflow_record["provider"] == "fal"
    assert {k: http_record[k] for k in ("job_id", "tenant", "provider", "request_id")} == {
        "job_id": JOB_ID,
        "tenant": "acme",
        "provider": "luma",
        "request_id": "r1",
    }


def test_spans_carry_the_job_id_of_their_context_or_workflow() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(tracing.JobIdSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with (
        tracing.job_context(job_id=JOB_ID, provider="runway"),
        tracer.start_as_current_span("a"),
        tracer.start_as_current_span("http call"),
    ):
        pass
    with tracer.start_as_current_span(
        "RunWorkflow", attributes={"temporalWorkflowID": f"{JOB_ID}:webhook:completed"}
    ):
        pass
    with tracer.start_as_current_span("unrelated"):
        pass
    spans = {span.name: dict(span.attributes or {}) for span in exporter.get_finished_spans()}
    assert spans["http call"][tracing.JOB_ID_ATTRIBUTE] == JOB_ID
    assert spans["http call"]["reelay.provider"] == "runway"
    assert spans["RunWorkflow"][tracing.JOB_ID_ATTRIBUTE] == JOB_ID
    assert tracing.JOB_ID_ATTRIBUTE not in spans["unrelated"]


def test_tracing_is_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    settings = isolated_settings()
    assert tracing.otlp_endpoint(settings) == ""
    assert tracing.configure_tracing(settings, "test") is False
    assert tracing.temporal_interceptors() == []
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert tracing.otlp_endpoint(settings) == "http://collector:4318"


def worker_sample(name: str, **labels: str) -> float:
    return metrics.WORKER.get_sample_value(name, labels) or 0.0


def test_a_submit_a_later_route_accepted_counts_a_failover_and_the_seconds() -> None:
    spec = job_spec(isolated_settings(), "a fox", model="veo-3", duration_seconds=8)
    first, second = spec.routes[0], spec.routes[1]
    labels = {"model": "veo-3", "provider": second.adapter}
    counters = ("reelay_failovers_total", "reelay_seconds_sold_total", "reelay_price_usd_total")
    before = {name: worker_sample(name, **labels) for name in counters}
    first_before = worker_sample("reelay_failovers_total", model="veo-3", provider=first.adapter)
    observe._succeeded(SubmitRequest(job=spec, route=first), "task-1")
    observe._succeeded(SubmitRequest(job=spec, route=second), "task-2")
    assert worker_sample("reelay_failovers_total", model="veo-3", provider=first.adapter) == (
        first_before
    )
    assert worker_sample("reelay_failovers_total", **labels) == before["reelay_failovers_total"] + 1
    assert worker_sample("reelay_seconds_sold_total", **labels) == (
        before["reelay_seconds_sold_total"] + 8
    )
    price = spec.estimated_cost_micro_usd / 1_000_000
    assert worker_sample("reelay_price_usd_total", **labels) == pytest.approx(
        before["reelay_price_usd_total"] + price
    )


def test_a_local_submit_handed_over_to_the_queue_is_no_failed_job() -> None:
    spec = job_spec(isolated_settings(), "a fox", duration_seconds=4)
    request = SubmitRequest(job=spec, route=spec.routes[0])
    job = observe._job_of(request, spec.job_id)
    taken = ApplicationError("no turn", type=TURNS_TAKEN_TYPE, non_retryable=True)
    refused = ApplicationError("refused", type="content_refused", non_retryable=True)
    errors = {"activity": "submit_to_provider", "provider": job.provider}
    failed = {"model": job.model, "provider": job.provider}

    def counts(error: str) -> tuple[float, float]:
        return worker_sample("reelay_activity_errors_total", **errors, error=error), worker_sample(
            "reelay_jobs_failed_total", **failed, reason=error
        )

    before_taken, before_refused = counts(TURNS_TAKEN_TYPE), counts("content_refused")
    observe._failed("submit_to_provider", request, job, taken)
    observe._failed("submit_to_provider", request, job, refused)
    assert counts(TURNS_TAKEN_TYPE) == (before_taken[0] + 1, before_taken[1])
    assert counts("content_refused") == (before_refused[0] + 1, before_refused[1] + 1)
