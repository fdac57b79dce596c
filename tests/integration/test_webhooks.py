"""Outgoing webhooks delivered on a real Temporal server (signatures: tests/unit).

Receivers are loopback HTTP servers (`127.0.0.1` is allow-listed); every signature is
checked with the `standardwebhooks` library, as a client would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.webhooks import WebhookActivities
from reelay import devstack
from reelay.settings import Settings
from reelay.ssrf import Resolver
from reelay.temporal import connect
from reelay.webhooks import (
    WebhookDelivery,
    WebhookDeliveryStatus,
    new_delivery,
    tenant_secret,
)
from tests.support import Receiver, Reply, resolver_for, wait_until
from workflows.webhook_delivery import WebhookDeliveryWorkflow, start_webhook_delivery

TENANT = "tenant-a"
JOB_DATA = {"id": "job_vid_x", "status": "complete", "video_url": "https://cdn.example/v.mp4"}


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allow_hosts": ["127.0.0.1"],
            "webhook_secret_seed": SecretStr("test-webhook-seed"),
            "webhook_timeout_seconds": 2.0,
        }
    )


@workflow.defn
class FireAndForgetJob:
    """Stands in for the job workflow: starts a delivery (twice) and closes at once."""

    @workflow.run
    async def run(self, delivery: WebhookDelivery) -> None:
        await start_webhook_delivery(delivery)
        await start_webhook_delivery(delivery)


@asynccontextmanager
async def delivery_worker(
    settings: Settings, resolver: Resolver | None = None
) -> AsyncIterator[Client]:
    client = await connect(settings)
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("tests")
    )
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[WebhookDeliveryWorkflow, FireAndForgetJob],
        activities=[WebhookActivities(settings, resolver).deliver_webhook],
        workflow_runner=runner,
    ):
        yield client


def delivery_to(url: str, *, event: Any = "completed", **retry: float) -> WebhookDelivery:
    job_id = f"job_vid_{uuid.uuid4().hex}"
    delivery = new_delivery(
        job_id=job_id, tenant_id=TENANT, url=url, event=event, data=JOB_DATA, at=datetime.now(UTC)
    )
    fast = {"first_retry_seconds": 0.2, "max_retry_seconds": 0.5, **retry}
    return delivery.model_copy(update=fast)


async def start_delivery(
    client: Client, settings: Settings, delivery: WebhookDelivery
) -> WorkflowHandle:
    return await client.start_workflow(
        WebhookDeliveryWorkflow.run,
        delivery,
        id=delivery.workflow_id,
        task_queue=settings.task_queue,
    )


async def status_of(handle: WorkflowHandle) -> WebhookDeliveryStatus:
    return await handle.query(WebhookDeliveryWorkflow.status)


async def test_retries_keep_the_webhook_id_and_sign_every_attempt(hook_settings: Settings) -> None:
    with Receiver([Reply(500)]) as receiver:
        delivery = delivery_to(receiver.url())
        async with delivery_worker(hook_settings) as client:
            handle = await start_delivery(client, hook_settings, delivery)
            result = await handle.result()
            status = await status_of(handle)
            history = await handle.fetch_history()

    assert result == status
    assert (status.state, status.attempts, status.last_status_code) == ("delivered", 2, 204)
    assert status.last_error is None and status.delivered_at is not None
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.message_id
    verifier = Webhook(tenant_secret(hook_settings, TENANT))
    for request in receiver.requests:
        assert request.headers["content-type"] == "application/json"
        payload = verifier.verify(request.body, request.headers)
        assert payload["type"] == "video.completed"
        assert payload["data"] == JOB_DATA
    # The tenant's secret never entered the workflow's history.
    assert tenant_secret(hook_settings, TENANT).encode() not in history.to_json().encode()
    replayer = Replayer(workflows=[WebhookDeliveryWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


async def test_an_endpoint_that_is_down_gets_the_event_when_it_comes_up(
    hook_settings: Settings,
) -> None:
    port = devstack.free_port()
    delivery = delivery_to(f"http://127.0.0.1:{port}/hook")
    async with delivery_worker(hook_settings) as client:
        handle = await start_delivery(client, hook_settings, delivery)

        async def refused_twice() -> bool:
            status = await status_of(handle)
            return status.attempts >= 2 and "ConnectError" in (status.last_error or "")

        await wait_until(refused_twice, within=20)
        with Receiver(port=port) as receiver:
            result = await handle.result()
    assert result.state == "delivered" and result.attempts >= 3
    assert result.last_status_code == 204
    [request] = receiver.requests
    assert request.headers["webhook-id"] == delivery.message_id


async def test_redirects_are_failures_and_delivery_gives_up_in_the_end(
    hook_settings: Settings,
) -> None:
    redirect = Reply(307, {"Location": "/elsewhere"})
    with Receiver(default=redirect) as receiver:
        delivery = delivery_to(receiver.url(), give_up_after_seconds=1.5, max_retry_seconds=0.3)
        async with delivery_worker(hook_settings) as client:
            handle = await start_delivery(client, hook_settings, delivery)
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result()
            status = await status_of(handle)
    assert "not delivered after" in str(failed.value.cause)
    assert status.state == "failed" and status.attempts >= 2
    assert status.last_status_code == 307
    assert status.last_error == "HTTP 307 (redirects are not followed)"
    assert status.delivered_at is None
    assert {request.path for request in receiver.requests} == {"/hook"}
    assert len(receiver.requests) == status.attempts


async def test_each_attempt_checks_the_address_again(hook_settings: Settings) -> None:
    """A name that resolved to a public address at submit but now points inside: refused."""
    resolve = resolver_for({"hooks.example": ["10.0.0.7"]})
    delivery = delivery_to("https://hooks.example/hook")
    async with delivery_worker(hook_settings, resolve) as client:
        handle = await start_delivery(client, hook_settings, delivery)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        status = await status_of(handle)
    assert (status.state, status.attempts, status.last_status_code) == ("failed", 1, None)
    assert status.last_error == (
        "webhook_url must not point to a private or loopback address (10.0.0.7)"
    )


async def test_a_delivery_started_by_a_job_outlives_the_job(hook_settings: Settings) -> None:
    """The job closes at once; the child delivery retries on its own and succeeds."""
    with Receiver([Reply(503)]) as receiver:
        delivery = delivery_to(receiver.url(), event="cancelled", first_retry_seconds=1.0)
        async with delivery_worker(hook_settings) as client:
            job = await client.start_workflow(
                FireAndForgetJob.run,
                delivery,
                id=delivery.job_id,
                task_queue=hook_settings.task_queue,
            )
            await job.result()
            child = client.get_workflow_handle_for(
                WebhookDeliveryWorkflow.run, delivery.workflow_id
            )
            result = await child.result()
    assert (result.state, result.attempts) == ("delivered", 2)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.message_id] * 2
    assert (await child.describe()).parent_id == delivery.job_id
