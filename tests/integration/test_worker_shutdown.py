"""A worker stopped the way a deploy stops it (SIGTERM) hands its poll loops back at once:
another worker goes on with them long before their heartbeat timeout."""

from __future__ import annotations

import time
from pathlib import Path

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowHandle

from activities.polling import PollingActivities
from reelay import devstack
from reelay.settings import Settings
from reelay.temporal import connect
from tests.conftest import clean_env
from tests.support import emulator_submissions, job_spec, start, unique_prompt, wait_until

LOOP = PollingActivities.poll_until_done.__name__
#: Far longer than the test may take: a loop resumed within it was handed back, not timed out.
HEARTBEAT_TIMEOUT_SECONDS = 600.0


async def _is_attempt(handle: WorkflowHandle, attempt: int) -> bool:
    """Whether a worker runs `attempt` of the job's poll loop."""
    description = await handle.describe()
    return any(
        pending.activity_type.name == LOOP
        and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        and pending.attempt == attempt
        for pending in description.raw_description.pending_activities
    )


async def test_a_stopped_worker_hands_its_poll_loops_back_at_once(
    settings: Settings, stack_dir: Path
) -> None:
    patient = settings.model_copy(
        update={"poll_heartbeat_timeout_seconds": HEARTBEAT_TIMEOUT_SECONDS}
    )
    logs = stack_dir / "logs"
    prompt = unique_prompt("[emu gen=300] a glacier calving")
    client = await connect(patient)
    first = devstack.start_worker(patient, log_path=logs / "shutdown-worker-1.log", env=clean_env())
    try:
        handle = await start(client, patient, job_spec(patient, prompt, duration_seconds=4))
        await wait_until(lambda: _is_attempt(handle, 1), within=60)
    finally:
        first.stop()  # SIGTERM, as a deploy does
    stopped = time.monotonic()
    second = devstack.start_worker(
        patient, log_path=logs / "shutdown-worker-2.log", env=clean_env()
    )
    try:
        await wait_until(lambda: _is_attempt(handle, 2), within=120)
        assert time.monotonic() - stopped < HEARTBEAT_TIMEOUT_SECONDS / 4
        assert len(await emulator_submissions(patient, prompt)) == 1  # not submitted again
        await handle.cancel()
    finally:
        second.stop()
