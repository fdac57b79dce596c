"""`bench.heartbeats` reads what it prints from a real dev server's metrics: the heartbeats
a run sends are counted under the name this server version uses, on a server that takes the
stack's dynamic config and serves metrics as `temporal_process` asks it to."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.heartbeats import _counters
from reelay import devstack
from reelay.devstack.temporal import DYNAMIC_CONFIG, temporal_process, wait_temporal_ready
from tests.support import wait_until

BEATS = 3


@activity.defn
async def beat_thrice() -> None:
    for n in range(BEATS):
        activity.heartbeat(n)
        await asyncio.sleep(0.5)  # past the worker's heartbeat throttle


@workflow.defn
class Beating:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            beat_thrice,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=30),
        )


async def test_the_heartbeats_a_run_sends_are_counted(tmp_path: Path) -> None:
    port, metrics_port = devstack.free_port(with_grpc=True), devstack.free_port()
    proc = temporal_process(
        port=port,
        log_path=tmp_path / "temporal.log",
        dynamic_config=DYNAMIC_CONFIG,
        metrics_port=metrics_port,
    )
    proc.start()
    try:
        await asyncio.to_thread(wait_temporal_ready, proc, port=port)
        before = _counters(metrics_port)
        client = await Client.connect(f"127.0.0.1:{port}")
        queue = f"bench-hb-{uuid.uuid4().hex[:8]}"
        async with Worker(
            client,
            task_queue=queue,
            workflows=[Beating],
            activities=[beat_thrice],
            workflow_runner=UnsandboxedWorkflowRunner(),
            max_heartbeat_throttle_interval=timedelta(milliseconds=100),
        ):
            await client.execute_workflow(Beating.run, id=queue, task_queue=queue)

        async def counted() -> bool:  # the server's metrics lag its requests a moment
            return _counters(metrics_port)["heartbeats"] - before["heartbeats"] >= BEATS

        await wait_until(counted, within=30)
        assert _counters(metrics_port)["heartbeats"] - before["heartbeats"] == BEATS
    finally:
        proc.stop()
