"""The submit activity's retry: where the adapter can find a lost attempt's task, it is taken
instead of submitting again; anywhere else (no lookup, nothing found, lookup failing) the
retry submits as the first attempt did."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.errors import TURNS_TAKEN_TYPE
from activities.inputs import SubmitRequest
from activities.jobs import SUBMIT_CLOCK_SKEW, JobActivities
from providers.base import FindsSubmitted, SourceImage
from providers.errors import RetryableProviderError
from reelay.callbacks import callback_url
from reelay.jobs import JobSpec, Route
from tests.conftest import isolated_settings
from tests.support import job_spec

SETTINGS = isolated_settings(public_url="https://gw.test")


class Submits:
    """An adapter without a lookup (as Runway, fal, Veo): counts its creates."""

    name = "fake"

    def __init__(self) -> None:
        self.created: list[str | None] = []

    async def submit(
        self,
        job: JobSpec,
        route: Route,
        *,
        image: SourceImage | None = None,
        callback_url: str | None = None,
    ) -> str:
        self.created.append(callback_url)
        return f"new-{len(self.created)}"


class Finds(Submits):
    """An adapter whose provider lists its tasks (as Luma, Replicate)."""

    def __init__(self, found: str | None = None, error: Exception | None = None) -> None:
        super().__init__()
        self.found, self.error = found, error
        self.lookups: list[dict[str, Any]] = []

    async def find_submitted(
        self,
        job: JobSpec,
        route: Route,
        *,
        since: datetime,
        image: SourceImage | None = None,
        callback_url: str | None = None,
    ) -> str | None:
        self.lookups.append({"since": since, "image": image, "callback_url": callback_url})
        if self.error is not None:
            raise self.error
        return self.found


async def run_attempt(adapter: Submits, attempt: int) -> tuple[str, SubmitRequest]:
    job = job_spec(SETTINGS, "a lighthouse at dusk", duration_seconds=4)
    route = job.routes[0].model_copy(update={"adapter": "fake"})
    request = SubmitRequest(job=job, route=route)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    activities = JobActivities(SETTINGS, {"fake": adapter}, s3=None)
    return await env.run(activities.submit_to_provider, request), request


def test_the_fakes_are_what_they_stand_for() -> None:
    assert isinstance(Finds(), FindsSubmitted)
    assert not isinstance(Submits(), FindsSubmitted)


async def test_a_first_attempt_submits_without_looking() -> None:
    adapter = Finds(found="lost")
    task_id, request = await run_attempt(adapter, attempt=1)
    assert task_id == "new-1"
    assert adapter.lookups == []
    assert adapter.created == [callback_url(SETTINGS, "fake", request.job.job_id)]


async def test_a_retry_takes_the_task_its_lost_predecessor_made() -> None:
    adapter = Finds(found="lost")
    task_id, request = await run_attempt(adapter, attempt=2)
    assert task_id == "lost"
    assert adapter.created == []
    (lookup,) = adapter.lookups
    assert lookup["callback_url"] == callback_url(SETTINGS, "fake", request.job.job_id)
    scheduled = ActivityEnvironment.default_info().scheduled_time
    assert lookup["since"] == scheduled - SUBMIT_CLOCK_SKEW


@pytest.mark.parametrize(
    "adapter",
    [
        pytest.param(Finds(found=None), id="nothing-found"),
        pytest.param(Finds(error=RetryableProviderError("503", provider="fake")), id="failing"),
        pytest.param(Submits(), id="no-lookup"),
    ],
)
async def test_a_retry_submits_when_nothing_is_found(adapter: Submits) -> None:
    task_id, _ = await run_attempt(adapter, attempt=3)
    assert task_id == "new-1"
    assert len(adapter.created) == 1


@pytest.mark.parametrize(
    ("model", "paced", "local"),
    [
        ("runway-gen4.5", {}, True),  # no lookup, no pace: a local activity
        ("runway-gen4.5", {"runway": 2.0}, False),  # paced across workers: its queue
        ("luma-ray-2", {}, False),  # a retry looks for the lost attempt's task: its queue
    ],
)
def test_a_route_is_submitted_locally_unless_paced_or_looked_up(
    model: str, paced: dict[str, float], local: bool
) -> None:
    settings = isolated_settings(provider_submits_per_second=paced)
    job = job_spec(settings, "a lighthouse at dusk", model=model)
    assert [route.submit_locally for route in job.routes] == [local]


async def test_a_local_submit_without_a_free_turn_hands_over_to_the_queue() -> None:
    """Local submits run in the workflow worker's slots: at most `provider_concurrent_submits`
    at once per provider, as its submit queue's worker would take. One more fails at once
    (its job's workflow submits through the queue instead), where a queued one waits."""
    settings = isolated_settings(provider_concurrent_submits=2)
    release, both_sending = asyncio.Event(), asyncio.Event()
    sending: list[int] = []

    class Slow(Submits):
        async def submit(self, job: JobSpec, route: Route, **_: Any) -> str:
            sending.append(1)
            if len(sending) == 2:
                both_sending.set()
            await release.wait()
            return await super().submit(job, route)

    activities = JobActivities(settings, {"fake": Slow()}, s3=None)
    job = job_spec(settings, "a lighthouse at dusk", duration_seconds=4)
    request = SubmitRequest(job=job, route=job.routes[0].model_copy(update={"adapter": "fake"}))
    local, queued = ActivityEnvironment(), ActivityEnvironment()
    local.info = dataclasses.replace(local.info, is_local=True)
    submit = activities.submit_to_provider
    taking = [asyncio.create_task(local.run(submit, request)) for _ in range(2)]
    await both_sending.wait()
    with pytest.raises(ApplicationError) as refused:
        await local.run(submit, request)
    assert refused.value.type == TURNS_TAKEN_TYPE and refused.value.non_retryable
    waiting = asyncio.create_task(queued.run(submit, request))
    release.set()
    assert sorted(await asyncio.gather(*taking, waiting)) == ["new-1", "new-2", "new-3"]
    assert len(sending) == 3
