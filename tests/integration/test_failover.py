"""Failover against the real emulator: a route is left only after its whole budget."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx

from reelay.jobs import JobStatus
from reelay.settings import Settings
from tests.support import emulator_submissions, job_spec, running_worker, start, unique_prompt

BUDGET_SECONDS = 8.0


@contextmanager
def outage(settings: Settings, provider: str) -> Iterator[None]:
    """`provider` answers every submit with 503 until the block ends."""
    with httpx.Client(base_url=settings.emulator_url) as http:
        http.post("/_emulator/config", json={"outages": {provider: 503}}).raise_for_status()
        try:
            yield
        finally:
            http.post("/_emulator/config", json={"outages": {}}).raise_for_status()


async def test_an_unavailable_route_is_tried_for_its_whole_budget_before_failover(
    settings: Settings,
) -> None:
    """Back-off of 1, 2, 4 s would cross an 8 s budget at 7 s; the next route must still
    wait until the budget is spent."""
    quick = settings.model_copy(update={"provider_failover_after_seconds": BUDGET_SECONDS})
    prompt = unique_prompt("[emu gen=1] a patient failover")
    spec = job_spec(quick, prompt, model="kling-2.5-turbo-pro", duration_seconds=5)
    assert [r.adapter for r in spec.routes] == ["fal", "replicate"]
    with outage(settings, "fal"):
        async with running_worker(quick) as client:
            started = datetime.now(UTC)
            result = await (await start(client, quick, spec)).result()
    assert result.status is JobStatus.COMPLETED
    assert result.provider == "replicate"
    (taken,) = await emulator_submissions(settings, prompt, provider="replicate")
    received = datetime.fromisoformat(taken["received_at"])
    received = received if received.tzinfo else received.replace(tzinfo=UTC)
    waited = (received - started).total_seconds()
    assert BUDGET_SECONDS <= waited < BUDGET_SECONDS + 5
