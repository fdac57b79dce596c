"""One way to connect to Temporal, with the pydantic data converter everywhere.

With tracing on (`reelay.tracing`), the client carries Temporal's OpenTelemetry interceptor,
which its workers use as well. `sdk_metrics=True` (the worker) gives the client a runtime
whose telemetry serves the Temporal SDK's own metrics to Prometheus on
`temporal_metrics_port` (a port of its own: the SDK's core serves it, not prometheus-client).
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from reelay.settings import Settings
from reelay.tracing import temporal_interceptors

_runtimes: dict[str, Runtime] = {}


def sdk_metrics_runtime(settings: Settings) -> Runtime | None:
    """The runtime serving the SDK's metrics on `temporal_metrics_port` (one per address)."""
    if not settings.temporal_metrics_port:
        return None
    address = f"{settings.metrics_host}:{settings.temporal_metrics_port}"
    if address not in _runtimes:
        _runtimes[address] = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address, counters_total_suffix=True, durations_as_seconds=True
                )
            )
        )
    return _runtimes[address]


async def connect(settings: Settings, *, sdk_metrics: bool = False) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=temporal_interceptors(),
        runtime=sdk_metrics_runtime(settings) if sdk_metrics else None,
    )
