"""Operators' view of a running stack: metrics, the dashboard, traces (issue 13).

The compose file, the Prometheus config and the Grafana provisioning are parsed and checked
against each other; every metric the dashboard's PromQL uses must be served by a live API
or worker after a few jobs (job counters non-zero). A trace exported to an in-process OTLP
collector (an HTTP server decoding `ExportTraceServiceRequest` with opentelemetry-proto)
links the API request to the workflow's activities and the provider HTTP call, all carrying
the job id.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.parser import text_string_to_metric_families

from activities.errors import TURNS_TAKEN_TYPE
from reelay import devstack
from reelay.settings import Settings
from tests.conftest import DEV_API_KEY
from tests.support import MakeStack, Receiver, Reply

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROMETHEUS = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
GRAFANA = ROOT / "deploy/grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards/reelay.json").read_text())
AUTH = {"Authorization": f"Bearer {DEV_API_KEY}"}
JOBS = 2
PROVIDER_ACTIVITIES = ("submit_to_provider", "poll_until_done", "store_video")
#: Counters a couple of completed jobs must have moved.
JOB_COUNTERS = (
    "reelay_admissions_total",
    "reelay_submissions_total",
    "reelay_videos_stored_total",
    "reelay_jobs_ended_total",
    "reelay_upstream_seconds_bought_total",
    "reelay_price_usd_total",
    "reelay_http_requests_total",
    "temporal_workflow_completed_total",
)

#: Dashboard metrics a healthy run has no sample of (an outage, a refusal at submit): the
#: worker must declare them (help and type), that is all.
RARE = {"reelay_failovers_total", "reelay_jobs_failed_total"}

# PromQL words that are not metric names: functions are followed by "(", these are not.
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
_PROMQL_WORDS |= {"and", "or", "unless", "offset"}


def promql_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group(0) in _PROMQL_WORDS:
            continue
        names.add(match.group(0))
    return names


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]


def dashboard_metrics() -> set[str]:
    return {name for expr in dashboard_exprs() for name in promql_metrics(expr)}


def environment(service: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def scrape_targets(job: str) -> list[tuple[str, int]]:
    """(host, port) of a Prometheus job, from its static or DNS service discovery config."""
    (config,) = [c for c in PROMETHEUS["scrape_configs"] if c["job_name"] == job]
    targets = [
        devstack.split_host_port(target)
        for static in config.get("static_configs", [])
        for target in static["targets"]
    ]
    targets += [
        (name, sd["port"]) for sd in config.get("dns_sd_configs", []) for name in sd["names"]
    ]
    return targets


def test_promql_metric_extraction() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, provider) (rate(a_bucket{x="y"}[5m]))) '
        "- sum without (job) (b_total) / on (model) c"
    )
    assert promql_metrics(expr) == {"a_bucket", "b_total", "c"}


def test_prometheus_scrapes_the_api_the_workers_and_the_sdk_metrics() -> None:
    worker = environment("worker")
    api = environment("api")
    assert scrape_targets("reelay-api") == [("api", int(api["REELAY_API_PORT"]))]
    assert scrape_targets("reelay-worker") == [
        ("worker", int(worker["REELAY_WORKER_METRICS_PORT"]))
    ]
    assert scrape_targets("temporal-sdk") == [
        ("worker", int(worker["REELAY_TEMPORAL_METRICS_PORT"]))
    ]
    assert worker["REELAY_METRICS_HOST"] == "0.0.0.0"  # reachable on the compose network
    prometheus = SERVICES["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    assert (
        "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in (prometheus["volumes"])
    )
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_grafana_is_provisioned_with_the_prometheus_datasource_and_the_dashboard() -> None:
    grafana = SERVICES["grafana"]
    assert grafana["image"].startswith("grafana/grafana:")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"] if v.startswith(".")}
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    (source,) = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    host, port = devstack.split_host_port(source["url"].removeprefix("http://"))
    assert host == "prometheus" and f"{port}:{port}" in SERVICES["prometheus"]["ports"]
    (provider,) = yaml.safe_load((GRAFANA / "provisioning/dashboards/reelay.yml").read_text())[
        "providers"
    ]
    assert mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    datasources = {
        target["datasource"]["uid"] for panel in DASHBOARD["panels"] for target in panel["targets"]
    }
    assert datasources == {source["uid"]}
    # No committed password: Grafana reads the one secrets-init generated.
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/run/reelay/")


def test_the_dashboard_covers_what_operators_ask() -> None:
    titles = " ".join(panel["title"].lower() for panel in DASHBOARD["panels"])
    for topic in ("completed", "latency", "failures by provider and reason", "in flight"):
        assert topic in titles, topic
    assert "margin" in titles and "cost" in titles
    assert any("histogram_quantile(0.99" in expr for expr in dashboard_exprs())
    # A local submit handed over to the queue is no failure.
    failures = [e for e in dashboard_exprs() if "reelay_activity_errors_total" in e]
    assert failures and all(f'error!="{TURNS_TAKEN_TYPE}"' in e for e in failures)


# --- Live --------------------------------------------------------------------------------


class Collector(Receiver):
    """An OTLP/HTTP receiver: the spans of every `/v1/traces` export it got."""

    def spans(self) -> list[tuple[str, Span]]:
        """(service name, span) of every span received so far."""
        found = []
        for request in list(self.requests):
            if request.path != "/v1/traces":
                continue
            export = ExportTraceServiceRequest.FromString(request.body)
            for resource in export.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource.resource.attributes
                        if a.key == "service.name"
                    ),
                    "",
                )
                for scope in resource.scope_spans:
                    found.extend((service, span) for span in scope.spans)
        return found


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with Collector(
        default=Reply(status=200, headers={"Content-Type": "application/x-protobuf"})
    ) as c:
        yield c


@pytest.fixture(scope="module")
def webhook_receiver() -> Iterator[Receiver]:
    with Receiver(default=Reply(status=204)) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def observed(make_stack: MakeStack, collector: Collector) -> Settings:
    return make_stack(
        worker_metrics_port=devstack.free_port(),
        temporal_metrics_port=devstack.free_port(),
        otlp_endpoint=f"http://127.0.0.1:{collector.port}",
        webhook_allow_hosts=["127.0.0.1"],
        log_json=True,
    ).settings


def _wait_for(api: httpx.Client, job_id: str, status: str) -> None:
    deadline = time.monotonic() + 90
    while (now := api.get(f"/v1/video/generations/{job_id}").json()["status"]) != status:
        assert now not in ("complete", "failed", "cancelled"), now
        assert time.monotonic() < deadline, f"{job_id} stayed {now}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def finished_jobs(observed: Settings, webhook_receiver: Receiver) -> list[str]:
    """A couple of jobs run to completion through the API (the first with a webhook, the
    second after a transient error), and one the provider refuses."""
    with httpx.Client(base_url=observed.public_url, headers=AUTH, timeout=30) as api:
        ids = []
        for n in range(JOBS):
            # The second's first submit meets a 503 (an activity error, retried).
            prompt = f"a lighthouse at dusk {n}" + (" [emu create_5xx=1]" if n == 1 else "")
            body: dict[str, Any] = {"prompt": prompt, "model": "runway-gen3"}
            if n == 0:
                body |= {"webhook_url": webhook_receiver.url(), "webhook_events": ["completed"]}
            response = api.post("/v1/video/generations", json=body)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        refused = api.post("/v1/video/generations", json={"prompt": "[emu refuse] forbidden"})
        assert refused.status_code == 202, refused.text
        for job_id in ids:
            _wait_for(api, job_id, "complete")
        _wait_for(api, refused.json()["id"], "failed")
    return ids


#: Suffixes a sample name adds to its metric family's.
_SAMPLE_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def family_of(sample: str) -> str:
    for suffix in _SAMPLE_SUFFIXES:
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


def scrape(url: str) -> tuple[set[str], dict[str, float]]:
    """The metric families an exposition declares, and each sample name's sum."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    families: set[str] = set()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        families.add(family.name)
        for sample in family.samples:
            samples[sample.name] = samples.get(sample.name, 0.0) + sample.value
    return families, samples


def live_metrics(settings: Settings) -> tuple[dict[str, set[str]], dict[str, float]]:
    """The families each endpoint (api, worker, temporal-sdk) declares, and all samples."""
    families: dict[str, set[str]] = {}
    samples: dict[str, float] = {}
    for name, url in (
        ("api", f"{settings.public_url}/metrics"),
        ("worker", f"http://127.0.0.1:{settings.worker_metrics_port}/metrics"),
        ("temporal-sdk", f"http://127.0.0.1:{settings.temporal_metrics_port}/metrics"),
    ):
        families[name], values = scrape(url)
        for sample, value in values.items():
            samples[sample] = samples.get(sample, 0.0) + value
    return families, samples


def test_every_metric_the_dashboard_queries_is_served_live(
    observed: Settings, finished_jobs: list[str]
) -> None:
    families, samples = live_metrics(observed)
    missing = sorted(
        name
        for name in dashboard_metrics()
        if name not in samples and not (name in RARE and family_of(name) in families["worker"])
    )
    assert not missing, f"dashboard queries metrics nobody serves: {missing}"
    # Each process serves only its own metrics.
    assert "reelay_http_requests" in families["api"] - families["worker"]
    assert "reelay_submissions" in families["worker"] - families["api"]
    for counter in JOB_COUNTERS:
        assert samples.get(counter, 0) > 0, counter
    assert samples["reelay_admissions_total"] >= JOBS + 1
    assert samples["temporal_workflow_failed_total"] >= 1  # the refused job
    assert samples["reelay_provider_tasks_ended_total"] >= JOBS + 1
    assert samples["reelay_webhook_deliveries_total"] >= 1
    assert samples["reelay_activity_errors_total"] >= 1  # the 503
    assert "reelay_jobs_in_flight" in samples  # counted in Temporal visibility (0 by now)
    worker = httpx.get(f"http://127.0.0.1:{observed.worker_metrics_port}/metrics", timeout=10)
    ended = {
        sample.labels["state"]: sample.value
        for family in text_string_to_metric_families(worker.text)
        if family.name == "reelay_jobs_ended"
        for sample in family.samples
        if sample.name == "reelay_jobs_ended_total"
    }
    assert ended.get("completed", 0) >= JOBS and ended.get("failed", 0) >= 1  # the refused job


def test_api_metrics_use_route_templates_and_the_jobs_dialect(
    observed: Settings, finished_jobs: list[str]
) -> None:
    text = httpx.get(f"{observed.public_url}/metrics", timeout=10).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    routes = {s.labels["route"] for s in families["reelay_http_requests"].samples}
    assert "/v1/video/generations/{job_id}" in routes or "/v1/video/generations/{id}" in routes
    assert not any(job_id in text for job_id in finished_jobs)  # no raw paths, no job ids
    reads = [
        s
        for s in families["reelay_http_requests"].samples
        if s.name.endswith("_total") and s.labels["method"] == "GET" and "{" in s.labels["route"]
    ]
    assert reads and all(s.labels["dialect"] == "native" for s in reads)
    admitted = [
        s
        for s in families["reelay_admissions"].samples
        if s.name.endswith("_total") and s.labels["outcome"] == "admitted"
    ]
    assert sum(s.value for s in admitted) >= JOBS


def _attributes(span: Span) -> dict[str, str]:
    return {a.key: a.value.string_value for a in span.attributes}


def test_one_trace_links_the_api_request_to_the_activities_and_the_provider_call(
    collector: Collector, finished_jobs: list[str]
) -> None:
    job_id = finished_jobs[0]
    deadline = time.monotonic() + 30
    while True:  # spans are exported in batches: until the provider's call has arrived
        spans = [
            (s, span)
            for s, span in collector.spans()
            if _attributes(span).get("reelay.job_id") == job_id
        ]
        names = {span.name for _, span in spans}
        client_calls = [
            span for s, span in spans if s == "reelay-worker" and span.kind == Span.SPAN_KIND_CLIENT
        ]
        # The poll loop stores the video: its span ends the job's activities.
        if "RunActivity:poll_until_done" in names and client_calls:
            break
        assert time.monotonic() < deadline, f"spans of {job_id} so far: {sorted(names)}"
        time.sleep(0.2)
    api_requests = [
        span for s, span in spans if s == "reelay-api" and span.kind == Span.SPAN_KIND_SERVER
    ]
    submit = [span for span in api_requests if span.name.startswith("POST ")]
    assert submit, sorted(names)
    (trace_id,) = {span.trace_id for span in submit}
    in_trace = [span for _, span in spans if span.trace_id == trace_id]
    by_id = {span.span_id: span for _, span in collector.spans()}

    def ancestors(span: Span) -> list[Span]:
        chain = []
        while span.parent_span_id in by_id:
            span = by_id[span.parent_span_id]
            chain.append(span)
        return chain

    def reaches_api_request(span: Span) -> bool:
        return any(parent.span_id == submit[0].span_id for parent in ancestors(span))

    activity_spans = [span for span in in_trace if span.name.startswith("RunActivity:")]
    assert {"RunActivity:submit_to_provider", "RunActivity:poll_until_done"} <= {
        span.name for span in activity_spans
    }
    assert all(reaches_api_request(span) for span in activity_spans)
    provider_activities = {f"RunActivity:{name}" for name in PROVIDER_ACTIVITIES}
    provider_calls = [
        span
        for span in client_calls
        if span.trace_id == trace_id
        and any(parent.name in provider_activities for parent in ancestors(span))
    ]
    assert provider_calls and all(reaches_api_request(span) for span in provider_calls)
    assert all(_attributes(span).get("reelay.provider") == "runway" for span in provider_calls)


def test_worker_logs_are_json_with_the_jobs_correlation_fields(
    observed: Settings, finished_jobs: list[str], stack_dir: Path
) -> None:
    job_id = finished_jobs[0]
    log = stack_dir / "logs" / "observability-1-worker-1.log"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    mine = [record for record in records if record.get("job_id") == job_id]
    assert mine, "no log line names the job"
    assert any(r.get("tenant") == "dev" and r.get("request_id") for r in mine)
    created = [r for r in mine if r.get("event") == "provider task created"]
    assert created and all(r.get("provider") == "runway" and r.get("task_id") for r in created)
    assert not any(r.get("logger") == "httpx" for r in records)  # no URL written at INFO
