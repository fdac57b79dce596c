"""The Temporal UI as operators read it, on a real dev server: the summaries and details of
the workflows the API and the job start, and README's saved-view queries."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from api.main import create_app
from reelay import devstack
from reelay.settings import Settings
from reelay.temporal import connect
from tests.conftest import DEV_API_KEY
from tests.support import Receiver, running_worker, serving_app, started, wait_until

README = Path(__file__).parents[2] / "README.md"
TOKEN = "hook-t0ken-9c1d"
PROMPT = "A paper boat drifting down a rain gutter, macro lens, " + "very long prompt " * 20


def saved_view_queries() -> list[str]:
    """The queries of README's saved-view table (Operating Reelay)."""
    text = README.read_text()
    section = text[text.index("Saved views:") : text.index("**Metrics**")]
    queries = re.findall(r"^\|[^|]+\| `([^`]+)` \|$", section, flags=re.MULTILINE)
    assert len(queries) >= 5, "README's saved-view table is missing"
    return queries


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_hosts": ["127.0.0.1"]})


@pytest.fixture
def api_url(hook_settings: Settings) -> Iterator[str]:
    with serving_app(create_app(hook_settings), devstack.free_port()) as url:
        yield url


@pytest.fixture
async def api(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as client:
        yield client


async def metadata(handle: WorkflowHandle) -> tuple[str, str]:
    description = await handle.describe()
    return (await description.static_summary() or "", await description.static_details() or "")


async def current_details(handle: WorkflowHandle) -> str:
    """What the workflow last set with `workflow.set_current_details` (a worker answers)."""
    metadata = await handle.query("__temporal_workflow_metadata")
    return str(metadata.current_details)


async def activity_summaries(client: Client, handle: WorkflowHandle) -> list[str]:
    history = await handle.fetch_history()
    converter = client.data_converter.payload_converter
    return [
        converter.from_payload(event.user_metadata.summary, str)
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.user_metadata.HasField("summary")
    ]


async def test_a_job_and_its_webhook_delivery_carry_summaries_without_secrets(
    api: httpx.AsyncClient, hook_settings: Settings
) -> None:
    with Receiver() as receiver:
        hook = receiver.url(f"/hook?token={TOKEN}")
        response = await api.post(
            "/v1/video/generations",
            json={
                "prompt": PROMPT,
                "model": "runway-gen3",
                "duration_seconds": 2,
                "webhook_url": hook,
                "webhook_events": ["completed"],
            },
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        client = await connect(hook_settings)
        job = client.get_workflow_handle(job_id)
        await started(job)
        # Set at the start, before any worker ran the job.
        summary, details = await metadata(job)
        assert summary.startswith("runway-gen3 2 s ")
        assert "tenant dev" in summary and "A paper boat drifting" in summary
        assert "tenant `dev`, app none, dialect `native`" in details
        assert "webhook to `127.0.0.1`: completed" in details
        assert "very long prompt " * 6 not in details  # an excerpt, not the prompt
        assert TOKEN not in summary + details and "/hook" not in details

        async with running_worker(hook_settings):
            assert (await job.result())["status"] == "completed"
            delivery = client.get_workflow_handle(f"{job_id}:webhook:completed")

            async def delivered() -> bool:
                described = await delivery.describe()
                return described.status == WorkflowExecutionStatus.COMPLETED

            await wait_until(delivered, within=30)
            assert (await current_details(delivery)).startswith("**delivered** after 1 attempt(s)")
        assert len(receiver.requests) == 1
        summary, details = await metadata(delivery)
        assert summary == f"video.completed of {job_id} to `127.0.0.1`"
        assert f"`msg_{job_id}_completed`" in details
        assert TOKEN not in summary + details
        assert await activity_summaries(client, delivery) == [
            "deliver video.completed to `127.0.0.1` (attempt 1)"
        ]


async def test_a_batch_started_through_the_api_says_what_it_is(
    api: httpx.AsyncClient, hook_settings: Settings
) -> None:
    line = (
        '{"custom_id": "a", "method": "POST", "url": "/v1/video/generations", '
        '"body": {"prompt": "a kite", "model": "runway-gen3", "duration_seconds": 2}}\n'
    )
    response = await api.post(
        "/v1/batches",
        files={"file": ("lines.jsonl", line.encode(), "application/jsonl")},
        data={"concurrency": "3", "max_cost_usd": "5"},
    )
    assert response.status_code == 201, response.text
    client = await connect(hook_settings)
    batch = client.get_workflow_handle(response.json()["id"])
    summary, details = await metadata(batch)
    assert summary.startswith("batch of `") and summary.endswith(
        " · tenant dev · 3 at once · max $5.00"
    )
    assert "up to 3 lines running at once per provider" in details
    async with running_worker(hook_settings):
        await batch.result()
        assert (await current_details(batch)).startswith("**completed** · 1 lines · batch of `")
    summaries = await activity_summaries(client, batch)
    assert summaries[:3] == ["validate every line", "check funds for $0.20", "plan lines 1-500"]
    # Each line runs as a workflow of its own (`BatchLineWorkflow`), whose activity says so.
    [run_line] = await activity_summaries(client, client.get_workflow_handle(f"{batch.id}:line:1"))
    assert re.fullmatch(r"run line 1 as job_vid_\w+", run_line), run_line
    line_job, _ = await metadata(client.get_workflow_handle(run_line.split(" as ")[1]))
    assert line_job.startswith("runway-gen3 2 s ") and f"batch {batch.id}" in line_job


async def test_every_saved_view_query_is_accepted_and_finds_what_it_says(
    api: httpx.AsyncClient, hook_settings: Settings
) -> None:
    client = await connect(hook_settings)
    for query in saved_view_queries():
        try:
            [_ async for _ in client.list_workflows(query, limit=1)]
        except RPCError as exc:
            pytest.fail(f"Temporal refuses the README's query {query!r}: {exc}")
    # The check has teeth: the server refuses an attribute it does not know.
    with pytest.raises(RPCError):
        [_ async for _ in client.list_workflows("ReelayTenantt = 'acme'", limit=1)]

    # The tenant view, for this test's own job (on a task queue of its own), finds it.
    response = await api.post(
        "/v1/video/generations",
        json={"prompt": "a lantern", "model": "runway-gen3", "duration_seconds": 2},
    )
    job_id = response.json()["id"]
    tenant_view = next(q for q in saved_view_queries() if q.endswith("ReelayTenant = 'acme'"))
    query = (
        tenant_view.replace("'acme'", "'dev'") + f" AND TaskQueue = '{hook_settings.task_queue}'"
    )

    async def listed() -> bool:
        return [w.id async for w in client.list_workflows(query)] == [job_id]

    await wait_until(listed, within=30)
