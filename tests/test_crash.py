"""SIGKILL the worker while jobs poll and store: nothing lost, submitted twice or stored twice."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from reelay import devstack
from reelay.jobs import JobStatus
from reelay.settings import Settings
from reelay.storage import s3_client
from reelay.temporal import connect
from tests.conftest import clean_env
from tests.support import (
    emulator_submissions,
    job_spec,
    start,
    status_is,
    unique_prompt,
    wait_until,
)


async def test_sigkill_during_poll_and_store_loses_nothing(
    settings: Settings, stack_dir: Path, tmp_path: Path
) -> None:
    logs = stack_dir / "logs"
    # Small files in the tests: throttle the download so the store step is caught mid-way.
    storing_prompt = unique_prompt("[emu gen=1 slow=4000] a waterfall")
    polling_prompts = [unique_prompt("[emu gen=5] a city at night") for _ in range(3)]
    client = await connect(settings)
    worker = devstack.start_worker(settings, log_path=logs / "crash-worker-1.log", env=clean_env())
    try:
        specs = [
            job_spec(settings, p, duration_seconds=4) for p in [storing_prompt, *polling_prompts]
        ]
        handles = [await start(client, settings, spec) for spec in specs]
        await wait_until(lambda: status_is(handles[0], JobStatus.STORING))
        for handle in handles[1:]:
            assert await status_is(handle, JobStatus.PROCESSING, JobStatus.QUEUED)
        worker.kill()
    finally:
        worker.stop()

    replacement = devstack.start_worker(
        settings, log_path=logs / "crash-worker-2.log", env=clean_env()
    )
    try:
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 180)
    finally:
        replacement.stop()

    s3 = s3_client(settings)
    for prompt, result in zip([storing_prompt, *polling_prompts], results, strict=True):
        assert result.status is JobStatus.COMPLETED
        assert result.video is not None
        assert len(await emulator_submissions(settings, prompt)) == 1
        local = tmp_path / f"{result.job_id}.mp4"
        s3.fget_object(settings.s3_bucket, result.video.key, str(local))
        assert hashlib.sha256(local.read_bytes()).hexdigest() == result.video.sha256
        versions = list(s3.list_objects(settings.s3_bucket, prefix=result.video.key))
        assert len(versions) == 1
