"""Failover between a model's routes, and per-provider submit pacing."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from reelay.jobs import JobStatus
from reelay.settings import Settings
from tests.support import emulator_submissions, job_spec, running_worker, start, unique_prompt


@pytest.fixture
def fal_down(settings: Settings) -> Iterator[None]:
    """fal answers every submit with 503 until the test ends."""
    with httpx.Client(base_url=settings.emulator_url) as http:
        http.post("/_emulator/config", json={"outages": {"fal": 503}}).raise_for_status()
        try:
            yield
        finally:
            http.post("/_emulator/config", json={"outages": {}}).raise_for_status()


@pytest.mark.usefixtures("fal_down")
async def test_an_unavailable_primary_route_fails_over_to_the_next(settings: Settings) -> None:
    quick = settings.model_copy(update={"provider_failover_after_seconds": 2.0})
    prompts = [unique_prompt("[emu gen=1] failover") for _ in range(2)]
    specs = [job_spec(quick, p, model="kling-2.5-turbo-pro", duration_seconds=5) for p in prompts]
    assert [r.adapter for r in specs[0].routes] == ["fal", "replicate"]
    async with running_worker(quick) as client:
        handles = [await start(client, quick, spec) for spec in specs]
        results = await asyncio.gather(*(h.result() for h in handles))
    for prompt, result in zip(prompts, results, strict=True):
        assert result.status is JobStatus.COMPLETED
        assert result.provider == "replicate"
        assert result.model_used.startswith("kwaivgi/")
        assert await emulator_submissions(settings, prompt, provider="fal") == []
        assert len(await emulator_submissions(settings, prompt, provider="replicate")) == 1


async def test_submits_are_paced_per_provider_across_workers(settings: Settings) -> None:
    paced = settings.model_copy(update={"provider_submits_per_second": {"runway": 1.0}})
    prompts = [unique_prompt("[emu gen=1] paced") for _ in range(4)]
    async with running_worker(paced) as client:
        handles = [await start(client, paced, job_spec(paced, p)) for p in prompts]
        await asyncio.gather(*(h.result() for h in handles))
    records = [(await emulator_submissions(settings, p))[0] for p in prompts]
    received = sorted(datetime.fromisoformat(r["received_at"]) for r in records)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(received)]
    # One submit a second at most: four submits span about three seconds, not a burst.
    assert (received[-1] - received[0]).total_seconds() >= 2.0, gaps
