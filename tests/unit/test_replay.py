"""Replay recorded histories: a workflow change that would break running jobs fails here.

Every workflow type the worker runs must have at least one recorded history, so a new type
(or a renamed one) without a replay guard fails `test_every_workflow_type_has_a_history`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from activities.errors import TURNS_TAKEN_TYPE
from activities.polling import PROGRESS_SIGNAL
from worker import WORKFLOW_RUNNER, WORKFLOWS
from workflows.batch import (
    CARRIED_WINDOW,
    LINE_DONE_SIGNAL,
    LINES_REPORT_THEMSELVES,
    UNIQUE_IDS_WEBHOOKS_PROVIDER_WINDOWS,
)
from workflows.clip import JOBS_V5, JOBS_V6, JOBS_V7, JOBS_V8, JOBS_V9, LEAN_JOBS
from workflows.video_generation import LEDGER_STORE_SETTLE, LOCAL_SETTLE

HISTORIES = {
    path.stem: path.read_text()
    for path in sorted((Path(__file__).parents[1] / "histories").glob("*.json"))
}


def workflow_type(history: str) -> str:
    first = json.loads(history)["events"][0]
    return str(first["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])


def test_histories_are_recorded() -> None:
    assert {"completed", "content_refused", "cancelled", "transient_errors", "chained"} <= set(
        HISTORIES
    )


def test_every_workflow_type_has_a_history() -> None:
    registered = {w.__temporal_workflow_definition.name for w in WORKFLOWS}  # type: ignore[attr-defined]
    assert {workflow_type(h) for h in HISTORIES.values()} == registered


def _events(history: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(history)["events"]
    return events


def _scheduled(history: str) -> list[str]:
    """The activity type of each activity a history schedules, in order."""
    return [
        e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for e in _events(history)
        if "activityTaskScheduledEventAttributes" in e
    ]


def test_histories_cover_limits_and_continue_as_new() -> None:
    """Jobs settling with and admitted by their account, and both long-lived kinds rolling
    over (continue-as-new) and resuming, are among the replayed paths."""
    sent = {
        e["signalExternalWorkflowExecutionInitiatedEventAttributes"]["signalName"]
        for h in HISTORIES.values()
        for e in _events(h)
        if "signalExternalWorkflowExecutionInitiatedEventAttributes" in e
    }
    assert {"settle", "admit", "segment_progress"} <= sent
    continued = {
        workflow_type(h)
        for h in HISTORIES.values()
        if _events(h)[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
    }
    assert "AccountWorkflow" in continued
    resumed = {
        workflow_type(h)
        for h in HISTORIES.values()
        if "continuedExecutionRunId" in _events(h)[0]["workflowExecutionStartedEventAttributes"]
    }
    assert {"AccountWorkflow", "VideoGenerationWorkflow"} <= resumed


def test_histories_cover_settling_through_the_ledger_store() -> None:
    """Jobs the API admitted through the ledger store: settled by the `settle_job` activity
    behind its patch, and a queued one admitted by that activity's `admit` signal."""
    scheduled = {name for h in HISTORIES.values() for name in _scheduled(h)}
    assert "settle_job" in scheduled
    patches = {
        json.loads(base64.b64decode(marker["details"]["patch-data"]["payloads"][0]["data"]))["id"]
        for h in HISTORIES.values()
        for e in _events(h)
        if (marker := e.get("markerRecordedEventAttributes", {})).get("markerName") == "core_patch"
    }
    assert LEDGER_STORE_SETTLE in patches
    received = {
        e["workflowExecutionSignaledEventAttributes"]["signalName"]
        for h in HISTORIES.values()
        if workflow_type(h) == "VideoGenerationWorkflow"
        for e in _events(h)
        if "workflowExecutionSignaledEventAttributes" in e
    }
    assert "admit" in received


def _patches(history: str) -> set[str]:
    return {
        json.loads(base64.b64decode(marker["details"]["patch-data"]["payloads"][0]["data"]))["id"]
        for e in _events(history)
        if (marker := e.get("markerRecordedEventAttributes", {})).get("markerName") == "core_patch"
    }


def test_histories_cover_jobs_keeping_their_memo_current() -> None:
    """Jobs since `jobs-v6`: the memo upserted at each step, and ended by `end_job` (a local
    activity: its marker names it)."""
    current = [
        h
        for h in HISTORIES.values()
        if workflow_type(h) == "VideoGenerationWorkflow" and JOBS_V6 in _patches(h)
    ]
    assert len(current) >= 3
    for history in current:
        events = _events(history)
        kinds = [e["eventType"] for e in events]
        assert kinds.count("EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED") >= 3
        assert "end_job" in _local_activities(history)


def _local_activities(history: str) -> list[str]:
    """The activity type of each local activity a history records (its marker's data)."""
    return [
        json.loads(base64.b64decode(marker["details"]["data"]["payloads"][0]["data"]))[
            "activity_type"
        ]
        for e in _events(history)
        if (marker := e.get("markerRecordedEventAttributes", {})).get("markerName")
        == "core_local_activity"
    ]


def test_histories_cover_batches_before_and_after_their_patch() -> None:
    """A batch from before the patch (paged validation, one window, no events) and one from
    after it, whose webhook events start `WebhookDeliveryWorkflow` children."""
    batches = [h for h in HISTORIES.values() if workflow_type(h) == "BatchWorkflow"]
    patched = [
        h
        for h in batches
        if UNIQUE_IDS_WEBHOOKS_PROVIDER_WINDOWS in _patches(h) and CARRIED_WINDOW not in _patches(h)
    ]
    assert patched and len(patched) < len(batches)
    children = {
        e["startChildWorkflowExecutionInitiatedEventAttributes"]["workflowType"]["name"]
        for h in patched
        for e in _events(h)
        if "startChildWorkflowExecutionInitiatedEventAttributes" in e
    }
    assert children == {"WebhookDeliveryWorkflow"}


def workflow_id(name: str, history: str) -> str:
    """A batch replays under its own id (its webhook deliveries' ids derive from it, and it
    upserts it as `ReelayBatch`); any other history under a made-up one."""
    if workflow_type(history) == "BatchWorkflow":
        for e in _events(history):
            fields = e.get("upsertWorkflowSearchAttributesEventAttributes", {})
            batch = fields.get("searchAttributes", {}).get("indexedFields", {}).get("ReelayBatch")
            if batch is not None:
                return str(json.loads(base64.b64decode(batch["data"])))
    return f"replay-{name}"


async def _replay(name: str, history: str) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER, data_converter=pydantic_data_converter
    )
    await replayer.replay_workflow(WorkflowHistory.from_json(workflow_id(name, history), history))


@pytest.mark.parametrize("name", HISTORIES)
async def test_history_replays(name: str) -> None:
    await _replay(name, HISTORIES[name])


def test_histories_cover_lean_jobs_polling_in_one_activity() -> None:
    """Runs since `lean-jobs` (a job, a cancelled one, a chain's segment, a ledger job since
    `local-settle`): no timer and no activity per poll, progress by signal, and the settle a
    local activity's marker."""
    lean = {n: h for n, h in HISTORIES.items() if LEAN_JOBS in _patches(h)}
    assert {"v4_completed", "v4_cancelled", "v4_chained_segment", "v4_ledger_first"} <= set(lean)
    for history in lean.values():
        events = _events(history)
        scheduled = _scheduled(history)
        assert "validate_job" not in scheduled
        assert scheduled.count("poll_until_done") == 1
        assert not any("timerStartedEventAttributes" in e for e in events)
    signals = {
        e["workflowExecutionSignaledEventAttributes"]["signalName"]
        for e in _events(lean["v4_completed"])
        if "workflowExecutionSignaledEventAttributes" in e
    }
    assert PROGRESS_SIGNAL in signals
    ledger = _events(lean["v4_ledger_first"])
    assert LOCAL_SETTLE in _patches(lean["v4_ledger_first"])
    assert any(
        e.get("markerRecordedEventAttributes", {}).get("markerName") == "core_local_activity"
        for e in ledger
    )


def test_histories_cover_jobs_v5_on_one_marker() -> None:
    """Runs since `jobs-v5` (a job, a cancelled one, a chain and its first segment, a ledger
    job): the paths of every earlier job patch, on `jobs-v5`'s marker alone."""
    v5 = {n: h for n, h in HISTORIES.items() if JOBS_V5 in _patches(h)}
    assert set(v5) == {
        "v5_completed",
        "v5_cancelled",
        "v5_chained",
        "v5_chained_segment",
        "v5_ledger_first",
    }
    for history in v5.values():
        assert _patches(history) == {JOBS_V5}
        assert not any("timerStartedEventAttributes" in e for e in _events(history))
    for name in ("v5_completed", "v5_cancelled", "v5_chained_segment", "v5_ledger_first"):
        scheduled = _scheduled(v5[name])
        assert scheduled[0] == "submit_to_provider" and scheduled.count("poll_until_done") == 1
    children = {
        e["startChildWorkflowExecutionInitiatedEventAttributes"]["workflowType"]["name"]
        for e in _events(v5["v5_chained"])
        if "startChildWorkflowExecutionInitiatedEventAttributes" in e
    }
    assert children == {"ClipWorkflow"}
    assert any(
        e.get("markerRecordedEventAttributes", {}).get("markerName") == "core_local_activity"
        for e in _events(v5["v5_ledger_first"])
    )


def test_histories_cover_a_batch_carrying_its_window_over_continue_as_new() -> None:
    """Since `batch-carried-window`: a run that continued as new with lines in flight (each a
    `BatchLineWorkflow` child), the run after it hearing their ends by signal, and a line."""
    carried = {n: h for n, h in HISTORIES.items() if CARRIED_WINDOW in _patches(h)}
    assert {"v5_batch", "v5_batch_continued"} <= set(carried)
    first = _events(carried["v5_batch"])
    assert first[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
    carried_over = first[-1]["workflowExecutionContinuedAsNewEventAttributes"]["input"]
    state = json.loads(base64.b64decode(carried_over["payloads"][0]["data"]))["state"]
    assert state["in_flight"]
    children = {
        e["startChildWorkflowExecutionInitiatedEventAttributes"]["workflowType"]["name"]
        for e in first
        if "startChildWorkflowExecutionInitiatedEventAttributes" in e
    }
    assert "BatchLineWorkflow" in children
    later = _events(carried["v5_batch_continued"])
    assert "continuedExecutionRunId" in later[0]["workflowExecutionStartedEventAttributes"]
    signals = {
        e["workflowExecutionSignaledEventAttributes"]["signalName"]
        for e in later
        if "workflowExecutionSignaledEventAttributes" in e
    }
    assert LINE_DONE_SIGNAL in signals
    assert workflow_type(HISTORIES["v5_batch_line"]) == "BatchLineWorkflow"


def test_histories_cover_jobs_stored_by_their_poll_loop() -> None:
    """Runs since `jobs-v7` (a job, a cancelled one, a chain and its segment, a ledger job):
    the poll loop stores the video, so no store activity follows it."""
    stored = {n: h for n, h in HISTORIES.items() if JOBS_V7 in _patches(h)}
    assert {
        "v7_completed",
        "v7_cancelled",
        "v7_chained",
        "v7_chained_segment",
        "v7_ledger_first",
    } <= set(stored)
    for name in ("v7_completed", "v7_chained_segment", "v7_ledger_first"):
        scheduled = _scheduled(stored[name])
        assert scheduled.count("poll_until_done") == 1
        assert "store_video" not in scheduled
    assert "stitch_segments" in _scheduled(stored["v7_chained"])


def test_histories_cover_jobs_keeping_the_memo_they_started_with() -> None:
    """Runs since `jobs-v8` (a job, a cancelled one, a chain, a ledger job): the API starts
    them with their view marked current, so no memo is written before their first step
    (the submit's end), where runs before it rewrote the memo in their first task."""
    kept = {n: h for n, h in HISTORIES.items() if JOBS_V8 in _patches(h)}
    assert {"v8_completed", "v8_cancelled", "v8_chained", "v8_ledger_first"} <= set(kept)
    for name in ("v8_completed", "v8_cancelled", "v8_ledger_first", "v7_completed"):
        history = HISTORIES[name]
        kinds = [e["eventType"] for e in _events(history)]
        first_step = kinds.index("EVENT_TYPE_ACTIVITY_TASK_COMPLETED")
        written = "EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED" in kinds[:first_step]
        assert written is (name == "v7_completed"), name


def test_histories_cover_batch_lines_reporting_themselves() -> None:
    """Since `batch-lines-report-themselves`: a line's workflow runs on the lines queue with
    its activity, which reports the line's end; the line workflow signals nothing, and the
    batch's runs still hear each line by `line_done`."""
    reporting = {n: h for n, h in HISTORIES.items() if LINES_REPORT_THEMSELVES in _patches(h)}
    assert {"v6_batch", "v6_batch_continued"} <= set(reporting)
    line = _events(HISTORIES["v6_batch_line"])
    kinds = [e["eventType"] for e in line]
    assert "EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED" not in kinds
    queue = line[0]["workflowExecutionStartedEventAttributes"]["taskQueue"]["name"]
    scheduled = next(e for e in line if "activityTaskScheduledEventAttributes" in e)
    assert scheduled["activityTaskScheduledEventAttributes"]["taskQueue"]["name"] == queue
    assert queue.endswith("-batch-lines")
    v5_line = [e["eventType"] for e in _events(HISTORIES["v5_batch_line"])]
    assert "EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED" in v5_line
    signals = [
        e["workflowExecutionSignaledEventAttributes"]["signalName"]
        for name in ("v6_batch", "v6_batch_continued")
        for e in _events(reporting[name])
        if "workflowExecutionSignaledEventAttributes" in e
    ]
    assert LINE_DONE_SIGNAL in signals


def test_histories_cover_jobs_submitted_by_a_local_activity() -> None:
    """Runs since `jobs-v9` (a job, a cancelled one, a chain and its segment, a ledger job):
    a route with `submit_locally` is submitted by a local activity, so no activity task and
    no workflow task of its own stand between the job's start and its poll loop."""
    local = {n: h for n, h in HISTORIES.items() if JOBS_V9 in _patches(h)}
    assert {
        "v9_completed",
        "v9_cancelled",
        "v9_chained",
        "v9_chained_segment",
        "v9_ledger_first",
    } <= set(local)
    for name in ("v9_completed", "v9_cancelled", "v9_chained_segment", "v9_ledger_first"):
        assert "submit_to_provider" not in _scheduled(local[name]), name
        assert _local_activities(local[name])[0] == "submit_to_provider", name
    for name in ("v8_completed", "v8_chained_segment", "v8_ledger_first"):
        assert _scheduled(HISTORIES[name])[0] == "submit_to_provider", name
    kinds = [e["eventType"] for e in _events(local["v9_completed"])]
    first_step = kinds.index("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED")
    assert kinds[:first_step].count("EVENT_TYPE_WORKFLOW_TASK_COMPLETED") == 1


def _job_payload(parsed: dict[str, Any]) -> dict[str, Any]:
    """The job spec's payload in a parsed history's start event."""
    payload: dict[str, Any] = parsed["events"][0]["workflowExecutionStartedEventAttributes"][
        "input"
    ]["payloads"][0]
    return payload


def _with_local_routes(history: str) -> str:
    """`history` as if its job had been admitted by an API that marks routes
    `submit_locally`: a job an older worker ran (through the submit queue) during a deploy."""
    parsed = json.loads(history)
    payload = _job_payload(parsed)
    job = json.loads(base64.b64decode(payload["data"]))
    job["routes"] = [{**route, "submit_locally": True} for route in job["routes"]]
    payload["data"] = base64.b64encode(json.dumps(job).encode()).decode()
    return json.dumps(parsed)


@pytest.mark.parametrize("name", ["v8_completed", "v8_ledger_first", "v8_cancelled"])
async def test_a_job_marked_for_local_submits_that_an_older_worker_ran_replays(name: str) -> None:
    """The route's mark alone does not choose the local submit: a run without the
    `jobs-v9` marker replays through the submit queue it used."""
    history = _with_local_routes(HISTORIES[name])
    assert (
        '"submit_locally": true'
        in base64.b64decode(_job_payload(json.loads(history))["data"]).decode()
    )
    await _replay(name, history)


def test_histories_cover_a_local_submit_handed_over_to_the_queue() -> None:
    """Since `jobs-v9`: a local submit that found its provider's turns taken fails at once
    (a failed local-activity marker), and the job submits through the provider's queue."""
    history = HISTORIES["v9_handed_over"]
    assert JOBS_V9 in _patches(history)
    failed = [
        marker["failure"]["applicationFailureInfo"]["type"]
        for e in _events(history)
        if (marker := e.get("markerRecordedEventAttributes", {})).get("markerName")
        == "core_local_activity"
        and "failure" in marker
    ]
    assert failed == [TURNS_TAKEN_TYPE]
    assert _local_activities(history)[0] == "submit_to_provider"
    assert _scheduled(history) == ["submit_to_provider", "poll_until_done"]
