"""Runs the Temporal worker: the job workflow and its activities on one task queue."""

from __future__ import annotations

import asyncio
import signal

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.jobs import JobActivities
from providers.registry import build_adapters
from reelay.logging import configure_logging
from reelay.settings import Settings, get_settings
from reelay.storage import ensure_bucket, s3_client
from reelay.temporal import connect
from workflows.video_generation import VideoGenerationWorkflow

log = structlog.get_logger()


def build_worker(client: Client, settings: Settings) -> Worker:
    s3 = s3_client(settings)
    ensure_bucket(s3, settings.s3_bucket)
    activities = JobActivities(settings, build_adapters(settings), s3)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[VideoGenerationWorkflow],
        activities=[
            activities.validate_job,
            activities.submit_to_provider,
            activities.poll_provider,
            activities.store_video,
            activities.cancel_at_provider,
        ],
    )


async def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    client = await connect(settings)
    worker = build_worker(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        log.info(
            "worker started", task_queue=settings.task_queue, temporal=settings.temporal_address
        )
        await stop.wait()
    log.info("worker stopped")


if __name__ == "__main__":
    asyncio.run(main())
