"""Record workflow histories for the replay test: `make histories [NAMES=...]`.

Runs scenarios on a throwaway stack and saves each history as JSON next to this file. By
default only scenarios without a file are recorded: the committed histories are what running
workflows looked like when they were recorded (the first six before `ClipWorkflow` and the
budgeted submits existed), and `tests/test_replay.py` proves every workflow change can still
replay them. Re-record one only on purpose: `python -m tests.histories.record NAME...`.

`FROZEN` histories were recorded by an earlier version of this script and cannot be recorded
again: they are `AccountWorkflow` runs and the jobs it admitted, from before the ledger store
admitted jobs (the API no longer starts that workflow; they guard the runs still open).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

from pydantic import SecretStr
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from api import accounts, jobs
from api.dialects.native import shapes as native
from api.dialects.openai import shapes as openai
from api.dialects.seed001 import shapes as seed001
from api.dialects.seed002 import shapes as seed002
from api.dialects.seed003 import shapes as seed003
from api.dialects.seed004 import shapes as seed004
from providers.catalog import resolve_request
from reelay import devstack
from reelay.batches import LINES_PER_RUN, BatchInput, BatchStatus, new_batch_id
from reelay.jobs import JobSpec, JobStatus, WebhookTarget
from reelay.settings import Settings
from reelay.storage import s3_client
from reelay.tenants import DEFAULT_TIERS, Tenant
from tests.support import (
    job_spec,
    rolling_over,
    running_worker,
    start,
    started,
    status_is,
    unique_prompt,
    wait_until,
)
from workflows.batch import BatchWorkflow

HERE = Path(__file__).parent
# One job each, limits off: name -> (prompt, request).
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
    "v2_completed": ("[emu gen=2 steps=4] a paper boat on a river", {"duration_seconds": 2}),
    "v2_failover": (
        "[emu create_5xx=3] a relay race",
        {"model": "veo-3", "duration_seconds": 8, "resolution": "720p"},
    ),
    "v2_chained": ("[emu gen=1] a longer take", {"model": "runway-gen3", "duration_seconds": 16}),
    # `lean-jobs`: checked at submit, polled in one activity that reports progress by signal.
    "v4_completed": ("[emu gen=3 steps=6] a paper boat at sea", {"duration_seconds": 2}),
    "v4_cancelled": ("[emu gen=60] a longer night", {"duration_seconds": 2}),
    "v4_chained": (
        "[emu gen=1] the longest take",
        {"model": "runway-gen3", "duration_seconds": 16},
    ),
    # `jobs-v5`: the same paths on one patch marker.
    "v5_completed": ("[emu gen=3 steps=6] a paper boat in a bay", {"duration_seconds": 2}),
    "v5_cancelled": ("[emu gen=60] the longest night", {"duration_seconds": 2}),
    "v5_chained": (
        "[emu gen=1] a take without end",
        {"model": "runway-gen3", "duration_seconds": 16},
    ),
    # `jobs-v6`: the memo follows the view, and the job ends in one local activity.
    "v6_completed": ("[emu gen=3 steps=6] a paper boat on a lake", {"duration_seconds": 2}),
    "v6_cancelled": ("[emu gen=60] a night without dawn", {"duration_seconds": 2}),
    "v6_chained": (
        "[emu gen=1] a take that goes on",
        {"model": "runway-gen3", "duration_seconds": 16},
    ),
    # `jobs-v7`: the poll loop stores the video it waited for.
    "v7_completed": ("[emu gen=3 steps=6] a paper boat in a bay", {"duration_seconds": 2}),
    "v7_cancelled": ("[emu gen=60] a night of no end", {"duration_seconds": 2}),
    "v7_chained": (
        "[emu gen=1] a take that never stops",
        {"model": "runway-gen3", "duration_seconds": 16},
    ),
    # `jobs-v8`: the memo the API started the job with is kept until the view changes.
    "v8_completed": ("[emu gen=3 steps=6] a paper boat on a pond", {"duration_seconds": 2}),
    "v8_cancelled": ("[emu gen=60] a night that lasts", {"duration_seconds": 2}),
    "v8_chained": (
        "[emu gen=1] a take that runs on",
        {"model": "runway-gen3", "duration_seconds": 16},
    ),
    # `jobs-v9`: a route with `submit_locally` is submitted by a local activity.
    "v9_completed": ("[emu gen=3 steps=6] a paper boat in a canal", {"duration_seconds": 2}),
    "v9_cancelled": ("[emu gen=60] a night that never ends", {"duration_seconds": 2}),
    "v9_chained": (
        "[emu gen=1] a take that keeps going",
        {"model": "runway-gen3", "duration_seconds": 16},
    ),
}
#: The chains, each recorded with its first segment (`<name>_segment`).
CHAINS = (
    "v2_chained",
    "v4_chained",
    "v5_chained",
    "v6_chained",
    "v7_chained",
    "v8_chained",
    "v9_chained",
)
# Recorded alongside the scenarios above, from the workflows they start.
DERIVED = {
    "v2_chained_segment",  # the first segment (a ClipWorkflow) of v2_chained
    "v4_chained_segment",  # the first segment of v4_chained
    "v5_chained_segment",  # the first segment of v5_chained
    "v6_chained_segment",  # the first segment of v6_chained
    "v7_chained_segment",  # the first segment of v7_chained
    "v8_chained_segment",  # the first segment of v8_chained
    "v9_chained_segment",  # the first segment of v9_chained
    "v3_ledger_first",  # limits on: admitted at once, settling through the ledger store
    "v3_ledger_queued",  # limits on: queued until the first settles, then admitted by it
    "v2_webhook_delivered",  # a WebhookDeliveryWorkflow delivering a job's `completed`
    "v2_job_resumed",  # a job run continued as new mid-poll, resuming its provider task
    "v4_ledger_first",  # v3_ledger_first since `lean-jobs` and `local-settle`
    "v5_ledger_first",  # v4_ledger_first since `jobs-v5`
    "v6_ledger_first",  # since `jobs-v6`: settled by `end_job`
    "v7_ledger_first",  # since `jobs-v7`: stored by the poll loop
    "v8_ledger_first",  # since `jobs-v8`: its start memo kept
    "v9_ledger_first",  # since `jobs-v9`: submitted by a local activity
    # since `jobs-v9`: a local submit that found its provider's turn taken, then the queue's
    "v9_handed_over",
    "v3_batch",  # a BatchWorkflow: a line of each dialect and an invalid one, paused, resumed
    # since the batch patch: a duplicate custom_id, windows per provider, webhook events
    "v4_batch",
    # since `batch-carried-window`: lines as `BatchLineWorkflow`s reporting by signal, three
    # a run: the first run (continued as new, lines in flight), the last one, and a line
    "v5_batch",
    "v5_batch_continued",
    "v5_batch_line",
    # since `batch-lines-report-themselves`: the same, each line reporting from its activity
    "v6_batch",
    "v6_batch_continued",
    "v6_batch_line",
}
#: Batches recorded with three lines a run: the first run, the last, and a line of each.
CONTINUING_BATCHES = ("v5_batch", "v6_batch")
LIMITED = {
    "v3_ledger_first",
    "v3_ledger_queued",
    "v2_webhook_delivered",
    "v4_ledger_first",
    "v5_ledger_first",
    "v6_ledger_first",
    "v7_ledger_first",
    "v8_ledger_first",
    "v9_ledger_first",
}
FROZEN = {
    "v2_limited_first",  # limits on: a job admitted at once, settling with its account
    "v2_limited_queued",  # limits on: a job queued until the first settles, then admitted
    "v2_account",  # the AccountWorkflow of those two jobs
    "v2_account_continued",  # an AccountWorkflow run that continued as new
    "v2_account_resumed",  # the run it continued as, from the ledger's state
}
FREE = Tenant(id="record-free", tier="free", limits=DEFAULT_TIERS["free"], opening_balance_usd=5)


def _save(name: str, history_json: str, count: int) -> None:
    (HERE / f"{name}.json").write_text(history_json)
    print(f"recorded {name}: {count} events")


async def _finish(handle: WorkflowHandle) -> None:
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()


async def _record_job(client: Client, settings: Settings, name: str) -> None:
    prompt, request = SCENARIOS[name]
    spec = job_spec(settings, unique_prompt(prompt), **request)
    if name == "v2_failover":  # a short budget, so the first route gives up in seconds
        spec = spec.model_copy(update={"failover_after_seconds": 3.0})
    handle: WorkflowHandle = await start(client, settings, spec)
    if name.endswith("cancelled"):
        await wait_until(lambda: status_is(handle, JobStatus.PROCESSING))
        await handle.cancel()
    await _finish(handle)
    history = await handle.fetch_history()
    _save(name, history.to_json(), len(history.events))
    if name in CHAINS:
        segment = await client.get_workflow_handle(f"{spec.job_id}:segment:0").fetch_history()
        _save(f"{name}_segment", segment.to_json(), len(segment.events))


def _limited_spec(settings: Settings, prompt: str, **extra: object) -> JobSpec:
    resolved = resolve_request(prompt=unique_prompt(prompt), duration_seconds=2)
    spec = jobs.build_spec(
        resolved, FREE, settings, job_id=jobs.new_job_id(), request_id=jobs.new_request_id()
    )
    return spec.model_copy(update=extra)


@contextlib.contextmanager
def _webhook_receiver() -> Iterator[str]:
    class Accept(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()


async def _record_limited(client: Client, settings: Settings, names: set[str]) -> None:
    """Two jobs of a one-slot tenant through the ledger store: admit, queue, settle (the
    `settle_job` activity, which admits the second), webhook."""
    with _webhook_receiver() as url:
        first = _limited_spec(
            settings,
            "[emu gen=2] the first in line",
            webhook=WebhookTarget(url=url, events=["completed"]),
        )
        second = _limited_spec(settings, "[emu gen=1] the second in line")
        for spec in (first, second):
            await jobs.start_job(client, settings, spec, FREE)
        handles = [client.get_workflow_handle(s.job_id) for s in (first, second)]
        for handle in handles:
            await started(handle)  # the API starts a job just after admitting it
            await _finish(handle)
        delivery = client.get_workflow_handle(f"{first.job_id}:webhook:completed")
        await _finish(delivery)

        async def settled() -> bool:
            return (await accounts.snapshot(settings, FREE)).reserved_micro_usd == 0

        await wait_until(settled)
        for name, handle in [
            ("v3_ledger_first", handles[0]),
            ("v4_ledger_first", handles[0]),
            ("v5_ledger_first", handles[0]),
            ("v6_ledger_first", handles[0]),
            ("v7_ledger_first", handles[0]),
            ("v8_ledger_first", handles[0]),
            ("v9_ledger_first", handles[0]),
            ("v3_ledger_queued", handles[1]),
            ("v2_webhook_delivered", delivery),
        ]:
            if name not in names:
                continue
            history = await handle.fetch_history()
            _save(name, history.to_json(), len(history.events))


async def _record_job_resumed(settings: Settings) -> None:
    """On a dev server that suggests continue-as-new after a few events: a job that rolls
    over while it polls."""
    async with rolling_over(settings) as continuing, running_worker(continuing) as client:
        spec = job_spec(continuing, unique_prompt("[emu gen=4 steps=8] roll-over"))
        handle = await start(client, continuing, spec)
        await _finish(handle)
        history = await client.get_workflow_handle(spec.job_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            raise RuntimeError("the job did not continue as new; lower the threshold")
        _save("v2_job_resumed", history.to_json(), len(history.events))


async def _record_batch(settings: Settings, name: str) -> None:
    """`v3_batch`, or `v4_batch` (since the batch patch): also a webhook for its events and
    a line repeating an earlier line's custom_id."""
    batching = settings.model_copy(
        update={"dev_api_key": "rl_record_dev_key", "task_queue": f"{settings.task_queue}-b"}
    )
    examples = [
        ("/v1/video/generations", native.EXAMPLES["seed 000: client"]["value"]),
        ("/v1/video/generations", seed001.EXAMPLES["seed 001: request"]["value"]),
        ("/v2/videos/generate", seed002.EXAMPLES["seed 002: parameters"]["value"]),
        ("/api/v1/videos/generate", seed003.EXAMPLES["seed 003: text-to-video"]["value"]),
        ("/v1/videos", seed004.EXAMPLES["seed 004: full example"]["value"]),
        ("/v1/videos", openai.EXAMPLES["OpenAI: create"]["value"]),
    ]
    lines = [
        json.dumps(
            {
                "custom_id": f"r{n}",
                "method": "POST",
                "url": url,
                "body": {**body, "prompt": unique_prompt("[emu gen=0.5]")},
            }
        )
        for n, (url, body) in enumerate(examples)
    ]
    lines.insert(2, json.dumps({"custom_id": "bad", "url": "/v9/none", "body": {}}))
    if name != "v3_batch":
        lines.append(lines[0])
    data = ("\n".join(lines) + "\n").encode()
    key = f"record/{uuid.uuid4().hex}.jsonl"
    with contextlib.ExitStack() as hooks:
        webhook = hooks.enter_context(_webhook_receiver()) if name != "v3_batch" else None
        async with running_worker(batching) as client:
            s3_client(batching).put_object(batching.s3_bucket, key, BytesIO(data), len(data))
            batch = BatchInput(
                tenant_id="dev",
                input_key=key,
                concurrency=2,
                on_invalid_line="skip",
                webhook_url=webhook,
                lines_per_run=3 if name in CONTINUING_BATCHES else LINES_PER_RUN,
            )
            handle = await client.start_workflow(
                BatchWorkflow.run, batch, id=new_batch_id(), task_queue=batching.task_queue
            )

            async def running() -> bool:
                view = await handle.query(BatchWorkflow.view)
                return view.status is BatchStatus.IN_PROGRESS

            await wait_until(running)
            await handle.signal(BatchWorkflow.pause, "recording")
            await handle.signal(BatchWorkflow.resume)
            await handle.result()
            history = await handle.fetch_history()
            if name not in CONTINUING_BATCHES:
                _save(name, history.to_json(), len(history.events))
                return
            _save(f"{name}_continued", history.to_json(), len(history.events))
            first = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
            history = await first.fetch_history()
            _save(name, history.to_json(), len(history.events))
            line = await client.get_workflow_handle(f"{handle.id}:line:1").fetch_history()
            _save(f"{name}_line", line.to_json(), len(line.events))


async def _record_handed_over(settings: Settings) -> None:
    """Two jobs on a worker with one local submit turn per provider: the first's create
    takes seconds, so the second's local submit finds the turn taken and goes through the
    submit queue (`v9_handed_over`, the second's history)."""
    one_turn = settings.model_copy(update={"provider_concurrent_submits": 1})
    async with running_worker(one_turn) as client:
        holding = job_spec(one_turn, unique_prompt("[emu create_delay=5 gen=1] a held turn"))
        first = await start(client, one_turn, holding)
        await asyncio.sleep(1.0)  # its local submit has the turn (its create answers at 5 s)
        spec = job_spec(one_turn, unique_prompt("[emu gen=1] a turn taken"), duration_seconds=2)
        second = await start(client, one_turn, spec)
        await _finish(second)
        await _finish(first)
    history = await second.fetch_history()
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    if not scheduled or scheduled[0] != "submit_to_provider":
        raise SystemExit("the second job's local submit found a turn free: record it again")
    _save("v9_handed_over", history.to_json(), len(history.events))


async def record(settings: Settings, names: set[str]) -> None:
    async with running_worker(settings) as client:
        for name in SCENARIOS:
            if name in names:
                await _record_job(client, settings, name)
        if names & LIMITED:
            await _record_limited(client, settings, names)
    if "v9_handed_over" in names:
        await _record_handed_over(settings)
    if "v2_job_resumed" in names:
        await _record_job_resumed(settings)
    for name in CONTINUING_BATCHES:
        if names & {f"{name}_continued", f"{name}_line"}:
            names.add(name)
    for name in ("v3_batch", "v4_batch", *CONTINUING_BATCHES):
        if name in names:
            await _record_batch(settings, name)


def _wanted(argv: list[str]) -> set[str]:
    known = set(SCENARIOS) | DERIVED
    if argv:
        frozen = set(argv) & FROZEN
        if frozen:
            raise SystemExit(f"recorded by an earlier version, not again: {', '.join(frozen)}")
        unknown = set(argv) - known
        if unknown:
            raise SystemExit(f"unknown histories: {', '.join(sorted(unknown))}")
        return set(argv)
    return {name for name in known if not (HERE / f"{name}.json").exists()}


def main(argv: list[str]) -> None:
    names = _wanted(argv)
    for chain in CHAINS:
        if f"{chain}_segment" in names:
            names.add(chain)
    if not names:
        print("every history is recorded; name one to record it again")
        return
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
            webhook_allow_hosts=["127.0.0.1"],
            data_dir=root / "data",
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
            asyncio.run(record(settings, names))
        finally:
            for proc in reversed(procs):
                proc.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
