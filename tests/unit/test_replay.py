"""Replay recorded histories: a workflow change that would break running jobs fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.video_generation import VideoGenerationWorkflow

HISTORIES = {
    path.stem: path.read_text()
    for path in sorted((Path(__file__).parents[1] / "histories").glob("*.json"))
}


def test_histories_are_recorded() -> None:
    assert {"completed", "content_refused", "cancelled", "transient_errors", "chained"} <= set(
        HISTORIES
    )


@pytest.mark.parametrize("name", HISTORIES)
async def test_history_replays(name: str) -> None:
    replayer = Replayer(workflows=[VideoGenerationWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(WorkflowHistory.from_json(f"replay-{name}", HISTORIES[name]))
