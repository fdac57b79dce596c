"""Runs the Temporal workers: the workflows and activities on the task queue, and one
submit queue per provider whose rate limit Temporal enforces across all workers."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import prometheus_client
import structlog
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.accounts import AccountActivities
from activities.jobs import JobActivities
from activities.observe import ObservingInterceptor
from activities.polling import THROTTLE as POLL_HEARTBEAT_THROTTLE
from activities.polling import PollingActivities
from activities.webhooks import WebhookActivities
from api import accounts as accounts_store
from api import dispatch
from api.batches import BatchActivities
from api.dialects.registry import webhook_renderer
from providers.base import ProviderAdapter
from providers.registry import PROVIDERS, build_adapters
from reelay import metrics
from reelay.logging import configure_logging
from reelay.settings import Settings, get_settings
from reelay.storage import ensure_bucket, s3_client
from reelay.temporal import connect
from reelay.tenants import TenantDirectory
from reelay.tracing import configure_tracing, shutdown_tracing
from workflows.account import AccountWorkflow
from workflows.batch import BatchLineWorkflow, BatchWorkflow, lines_queue
from workflows.clip import ClipWorkflow, poll_queue, submit_queue
from workflows.video_generation import VideoGenerationWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow

log = structlog.get_logger()

#: Every workflow type the workers run (the replay test checks each has a recorded history).
#: `AccountWorkflow` is no longer started (the ledger store admits jobs); it stays registered
#: for the runs still open and the jobs settling with it.
WORKFLOWS = [
    VideoGenerationWorkflow,
    ClipWorkflow,
    AccountWorkflow,
    WebhookDeliveryWorkflow,
    BatchWorkflow,
    BatchLineWorkflow,
]

#: The sandbox workflow code runs in under the test suite and the replay test: its checks
#: (no clock, randomness or I/O from workflow code) catch a nondeterministic change before it
#: ships. Only a workflow's own module is imported afresh for each run; every other module is
#: the worker's own (re-importing the `workflows` package's helpers for every run and replay
#: took about a fifth of a worker's CPU per job in `bench.e2e`).
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
)


def workflow_runner(settings: Settings) -> WorkflowRunner:
    """The sandbox if `settings.workflow_sandbox`, else none: deployed workers run the code
    the sandboxed suite and replay test checked, without the sandbox's cost on every
    activation (entering it and converting payloads through it: about a tenth of a worker's
    CPU a job in `bench.e2e`, 0.050 vs 0.044 CPU-s)."""
    return WORKFLOW_RUNNER if settings.workflow_sandbox else UnsandboxedWorkflowRunner()


#: Batch lines a worker follows at once (each an activity waiting on its job).
BATCH_LINE_SLOTS = 2_000


def build_workers(
    client: Client,
    settings: Settings,
    accounts: AccountActivities,
    adapters: dict[str, ProviderAdapter],
) -> list[Worker]:
    s3 = s3_client(settings)
    ensure_bucket(s3, settings.s3_bucket)
    activities = JobActivities(settings, adapters, s3)
    # Metrics, log context and span attributes of every activity (`activities.observe`).
    observed = [ObservingInterceptor()]
    batch = BatchActivities(client, settings, s3, TenantDirectory(settings))
    main = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(settings),
        activities=[
            activities.validate_job,
            activities.submit_to_provider,  # as a local activity (`Route.submit_locally`)
            activities.poll_provider,
            activities.store_video,
            activities.stitch_segments,
            activities.cancel_at_provider,
            accounts.settle_job,
            accounts.end_job,
            WebhookActivities(settings, render=webhook_renderer(settings)).deliver_webhook,
            batch.validate_page,
            batch.plan_page,
            batch.check_funds,
            batch.notify,
        ],
        interceptors=observed,
    )
    # Submits that must be paced (submits per second, across all workers: a burst of jobs
    # then waits in Temporal instead of turning into a 429 storm) or looked up when retried
    # go through a queue per provider; the others run as local activities of the main worker
    # (`providers.registry.submits_locally`). Runs started before that keep the queues.
    submitters = [
        Worker(
            client,
            task_queue=submit_queue(settings.task_queue, provider),
            activities=[activities.submit_to_provider],
            max_concurrent_activities=settings.provider_concurrent_submits,
            max_task_queue_activities_per_second=settings.provider_submits_per_second.get(provider),
            interceptors=observed,
        )
        for provider in PROVIDERS
    ]
    # A batch line's activity mostly waits for its job: many slots, on a queue of their own,
    # with the line's workflow, so the activity comes with its workflow task (eagerly).
    lines = Worker(
        client,
        task_queue=lines_queue(settings.task_queue),
        workflows=[BatchLineWorkflow],
        workflow_runner=workflow_runner(settings),
        activities=[batch.run_line],
        max_concurrent_activities=BATCH_LINE_SLOTS,
    )
    # Each job in flight is one poll loop: a long-lived activity that mostly sleeps.
    polling = Worker(
        client,
        task_queue=poll_queue(settings.task_queue),
        activities=[PollingActivities(client, adapters, activities.store).poll_until_done],
        max_concurrent_activities=settings.poll_loops_per_worker,
        max_heartbeat_throttle_interval=POLL_HEARTBEAT_THROTTLE,
        interceptors=observed,
    )
    return [main, *submitters, polling, lines]


@asynccontextmanager
async def serving(client: Client, settings: Settings) -> AsyncIterator[None]:
    """Run all of Reelay's workers, and the reaper, until the block ends."""
    store = await accounts_store.ledger(settings)  # the one the dispatcher uses too
    accounts = AccountActivities(client, store, timedelta(seconds=settings.reaper_grace_seconds))
    async with AsyncExitStack() as stack:
        adapters = build_adapters(settings)
        for adapter in adapters.values():  # closed after the workers stop
            stack.push_async_callback(adapter.aclose)
        for worker in build_workers(client, settings, accounts, adapters):
            await stack.enter_async_context(worker)
        reaper = asyncio.create_task(reap_forever(accounts, settings.reaper_grace_seconds / 2))
        stack.callback(reaper.cancel)
        # Jobs admitted by an API that could not start them (or by this worker's batches).
        sweeper = asyncio.create_task(dispatch.sweep_forever(client, settings))
        stack.callback(sweeper.cancel)
        stack.push_async_callback(dispatch.drain)
        yield


async def reap_forever(accounts: AccountActivities, every_seconds: float) -> None:
    """Release reservations whose job never started, every `every_seconds`. A loop in each
    worker rather than a Temporal Schedule: it writes no history, needs nothing created on
    the server, and several workers reaping at once is safe (each release is a transaction
    that re-checks the reservation)."""
    while True:
        try:
            released = await accounts.reap()
        except Exception:
            log.exception("reaper pass failed; trying again next time")
        else:
            if released:
                log.info("reaper released reservations", released=released)
        await asyncio.sleep(every_seconds)


async def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    configure_tracing(settings, "reelay-worker")
    if settings.worker_metrics_port:
        prometheus_client.start_http_server(
            settings.worker_metrics_port, settings.metrics_host, registry=metrics.WORKER
        )
    client = await connect(settings, sdk_metrics=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serving(client, settings):
        log.info(
            "worker started", task_queue=settings.task_queue, temporal=settings.temporal_address
        )
        await stop.wait()
    shutdown_tracing()
    log.info("worker stopped")


if __name__ == "__main__":
    asyncio.run(main())
