"""Record workflow histories for the replay test: `make histories`.

Runs each scenario once on a throwaway stack and saves its history as JSON next to this file.
Record again only on purpose: the committed histories are what running jobs look like, and
`tests/test_replay.py` proves every workflow change can still replay them.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from pathlib import Path

from pydantic import SecretStr
from temporalio.client import WorkflowFailureError, WorkflowHandle

from reelay import devstack
from reelay.jobs import JobStatus
from reelay.settings import Settings
from tests.support import job_spec, running_worker, start, status_is, unique_prompt, wait_until

HERE = Path(__file__).parent
SCENARIOS: dict[str, tuple[str, dict[str, object]]] = {
    "completed": ("[emu gen=2 steps=4] a paper boat on a stream", {"duration_seconds": 2}),
    "transient_errors": (
        "[emu create_5xx=1 poll_5xx=1 truncate=1] a kite over dunes",
        {"duration_seconds": 2},
    ),
    "content_refused": ("[emu refuse] a forbidden scene", {"duration_seconds": 2}),
    "internal_failure_resubmitted": ("[emu fail=internal] a fox in snow", {"duration_seconds": 2}),
    "cancelled": ("[emu gen=60] a long night", {"duration_seconds": 2}),
    "chained": ("[emu gen=1] a long take", {"model": "runway-gen3", "duration_seconds": 16}),
}


async def record(settings: Settings) -> None:
    async with running_worker(settings) as client:
        for name, (prompt, request) in SCENARIOS.items():
            spec = job_spec(settings, unique_prompt(prompt), **request)
            handle: WorkflowHandle = await start(client, settings, spec)
            if name == "cancelled":
                await wait_until(lambda h=handle: status_is(h, JobStatus.PROCESSING))
                await handle.cancel()
            with contextlib.suppress(WorkflowFailureError):
                await handle.result()
            history = await handle.fetch_history()
            (HERE / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="reelay-histories-") as tmp:
        root = Path(tmp)
        s3_port = devstack.free_port(with_grpc=True)
        settings = Settings(
            _env_file=None,
            temporal_address=f"127.0.0.1:{devstack.free_port()}",
            task_queue=f"record-{uuid.uuid4().hex[:8]}",
            s3_endpoint=f"127.0.0.1:{s3_port}",
            s3_secret_key=SecretStr("record-secret-key"),
            emulator_port=devstack.free_port(),
            emulator_data_dir=root / "emulator",
            emulator_generation_seconds=1.0,
            emulator_render_scale=8,
            poll_min_seconds=0.2,
            poll_max_seconds=1.0,
        )
        _, temporal_port = devstack.split_host_port(settings.temporal_address)
        procs = [
            devstack.start_temporal(port=temporal_port, log_path=root / "temporal.log"),
            devstack.start_seaweed(
                data_dir=root / "s3",
                port=s3_port,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key.get_secret_value(),
                bucket=settings.s3_bucket,
                log_path=root / "s3.log",
            ),
            devstack.start_emulator(settings, log_path=root / "emulator.log"),
        ]
        try:
            asyncio.run(record(settings))
        finally:
            for proc in reversed(procs):
                proc.stop()


if __name__ == "__main__":
    main()
