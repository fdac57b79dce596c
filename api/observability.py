"""The API's metrics, request context and `/metrics`.

`Observe` (ASGI middleware) gives each request a `request_id` for its logs and counts it with
its latency by route template (never the raw path: label values stay bounded), method,
dialect and status. The dialect and the job are noted by `note_job` where the API learns
them (`api.jobs`). `GET /metrics` is unauthenticated like `/healthz` (it carries no tenant,
job id or secret; restrict it at the network edge if needed).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import structlog
from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client
from temporalio.service import RPCError

from api.deps import SettingsDep, TemporalClient
from api.notes import NOTES
from reelay import metrics
from reelay.jobs import JobStatus
from reelay.settings import Settings
from workflows import search_attributes
from workflows.video_generation import VideoGenerationWorkflow

router = APIRouter(tags=["health"])
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
UNMATCHED_ROUTE = "unmatched"
NO_DIALECT = ""
IN_FLIGHT = (JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.STORING)
COUNT_TIMEOUT_SECONDS = 3.0


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        notes: dict[str, str] = {}
        token = NOTES.set(notes)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=_request_id(scope))
        try:
            await self.app(scope, receive, sent)
        finally:
            NOTES.reset(token)
            structlog.contextvars.clear_contextvars()
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            labels = (route, scope["method"], notes.get("dialect", NO_DIALECT), str(status))
            metrics.HTTP_REQUESTS.labels(*labels).inc()
            metrics.HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - started)


def _request_id(scope: Scope) -> str:
    """The caller's `X-Request-ID` when it is a sane token, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
    return f"req_{uuid.uuid4().hex[:24]}"


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(client: TemporalClient, settings: SettingsDep) -> Response:
    """Prometheus exposition of the API's metrics (prometheus-client's own rendering)."""
    await _count_in_flight(client, settings)
    return Response(generate_latest(metrics.API), media_type=CONTENT_TYPE_LATEST)


async def _count_in_flight(client: Client, settings: Settings) -> None:
    """`reelay_jobs_in_flight` from Temporal visibility (a failed count keeps the last value)."""
    for status in IN_FLIGHT:
        query = (
            f"WorkflowType = '{VideoGenerationWorkflow.__name__}' "
            f"AND ExecutionStatus = 'Running' AND TaskQueue = '{settings.task_queue}' "
            f"AND {search_attributes.STATUS.name} = '{status.value}' "
            f"AND {search_attributes.TENANT.name} IS NOT NULL"
        )
        try:
            counted = await asyncio.wait_for(client.count_workflows(query), COUNT_TIMEOUT_SECONDS)
        except (RPCError, TimeoutError):
            continue
        metrics.JOBS_IN_FLIGHT.labels(status.value).set(counted.count)
