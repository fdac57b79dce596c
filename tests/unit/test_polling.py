"""The adaptive poll interval, the poll loop, and the loop as an activity that stores."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import polling
from activities.errors import STORAGE_TYPE
from activities.inputs import PollRequest, ProviderTaskRef, StoreRequest
from activities.polling import (
    PROGRESS_SHOWN_STEP,
    STORING,
    PollingActivities,
    PollOutcome,
    PollProgress,
    estimate_remaining,
    next_poll_delay,
    poll_loop,
    show_position,
)
from providers.base import ProviderTaskStatus, TaskState
from providers.errors import PermanentProviderError, RetryableProviderError
from reelay.jobs import JobStatus, JobView, Route, StoredVideo

START = datetime(2026, 1, 1, tzinfo=UTC)
RUNWAY = Route(adapter="runway", upstream_model="veo3")


def test_remaining_time_is_extrapolated_from_progress() -> None:
    assert estimate_remaining(10.0, 0.5) == 10.0
    assert estimate_remaining(30.0, 0.75) == 10.0
    assert estimate_remaining(10.0, None) is None
    assert estimate_remaining(10.0, 0.01) is None
    assert estimate_remaining(10.0, 1.0) == 0.0


def test_delay_is_half_the_remaining_time_within_bounds() -> None:
    assert next_poll_delay(polls=3, remaining=20.0, min_seconds=1, max_seconds=30) == 10.0
    assert next_poll_delay(polls=3, remaining=0.5, min_seconds=1, max_seconds=30) == 1
    assert next_poll_delay(polls=3, remaining=600, min_seconds=1, max_seconds=30) == 30


def test_without_an_eta_the_delay_backs_off_gently() -> None:
    delays = [
        next_poll_delay(polls=n, remaining=None, min_seconds=1, max_seconds=30) for n in range(12)
    ]
    assert delays == sorted(delays)
    assert delays[0] == 1
    assert delays[-1] == 30


# The poll loop (activities.polling.poll_loop) on a clock of its own: sleeps move the clock.


@dataclass
class Upstream:
    """A provider task answering `answers` in turn (an exception is raised); the clock's
    time of every poll is kept."""

    answers: list[ProviderTaskStatus | Exception]
    clock: datetime = START
    polls_at: list[float] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)
    reports: list[PollProgress] = field(default_factory=list)
    beats: list[dict[str, Any]] = field(default_factory=list)

    async def now(self) -> datetime:
        return self.clock

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.clock += timedelta(seconds=seconds)

    async def poll(self) -> ProviderTaskStatus:
        self.polls_at.append((self.clock - START).total_seconds())
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def report(self, progress: PollProgress) -> None:
        self.reports.append(progress)

    async def run(self, resumed: dict[str, Any] | None = None, **request: Any) -> PollOutcome:
        fields: dict[str, Any] = {
            "workflow_id": "job_vid_x",
            "task": ProviderTaskRef(
                route=Route(adapter="runway", upstream_model="veo3"), task_id="t"
            ),
            "started_at": START,
            "deadline": START + timedelta(seconds=600),
            "poll_min_seconds": 1.0,
            "poll_max_seconds": 30.0,
        }
        return await poll_loop(
            PollRequest(**{**fields, **request}),
            self.poll,
            now=self.now,
            sleep=self.sleep,
            report=self.report,
            heartbeat=self.beats.append,
            resumed=resumed,
        )


def running(progress: float | None = None) -> ProviderTaskStatus:
    return ProviderTaskStatus(state=TaskState.RUNNING, progress=progress)


DONE = ProviderTaskStatus(state=TaskState.SUCCEEDED)


async def test_the_loop_polls_by_the_rule_until_the_task_ends() -> None:
    upstream = Upstream([running(), running(), running(), DONE])
    outcome = await upstream.run()
    assert outcome.status.state is TaskState.SUCCEEDED and outcome.polls == 4
    rule = [
        next_poll_delay(polls=n, remaining=None, min_seconds=1, max_seconds=30) for n in (1, 2, 3)
    ]
    # The task was just created: the first poll waits the shortest interval.
    assert upstream.polls_at[0] == 1.0
    assert upstream.slept == pytest.approx([1.0, *rule])
    assert [b["polls"] for b in upstream.beats] == [1, 2, 3]  # where a retry would resume


async def test_a_loop_that_carries_on_from_earlier_polls_polls_at_once() -> None:
    upstream = Upstream([DONE])
    outcome = await upstream.run(polls=3)  # as a run continued as new asks it to
    assert outcome.polls == 4 and upstream.polls_at == [0.0] and upstream.slept == []


async def test_progress_is_reported_only_when_it_moves_by_a_step() -> None:
    steps = [0.01, 0.02, 0.06, 0.07, 0.5, 0.52]
    upstream = Upstream([*(running(p) for p in steps), DONE])
    await upstream.run(report_step=0.05)
    assert [r.progress for r in upstream.reports] == [0.06, 0.5]
    assert upstream.reports[-1].polls == 5
    assert upstream.reports[-1].eta_seconds is not None


async def test_transient_errors_are_waited_out_inside_the_loop() -> None:
    busy = RetryableProviderError("429", retry_after=7)
    upstream = Upstream([RetryableProviderError("503"), busy, running(), DONE])
    outcome = await upstream.run()
    assert outcome.status.state is TaskState.SUCCEEDED
    # The first wait, the back-off, then the provider's Retry-After.
    assert upstream.slept[:3] == [1.0, 1.0, 7.0]
    assert outcome.polls == 2  # answered polls only


async def test_a_permanent_error_ends_the_loop_as_a_non_retryable_failure() -> None:
    upstream = Upstream([running(), PermanentProviderError("task not found")])
    with pytest.raises(ApplicationError) as raised:
        await upstream.run()
    assert raised.value.non_retryable and raised.value.message == "task not found"


async def test_at_the_deadline_the_loop_returns_without_polling_past_it() -> None:
    upstream = Upstream([running()] * 1000)
    outcome = await upstream.run(deadline=START + timedelta(seconds=100))
    assert outcome.deadline_passed and outcome.status.state is TaskState.RUNNING
    assert max(upstream.polls_at) < 100
    assert (upstream.clock - START).total_seconds() == pytest.approx(100)


async def test_a_retried_attempt_resumes_from_the_heartbeat() -> None:
    upstream = Upstream([running(0.4), DONE])
    outcome = await upstream.run(resumed={"polls": 7, "progress": 0.3})
    assert outcome.polls == 9
    assert upstream.slept == [
        pytest.approx(
            next_poll_delay(polls=8, remaining=upstream.slept[0] * 2, min_seconds=1, max_seconds=30)
        )
    ]


# The loop as an activity that stores the video of the task it saw succeed (`store-in-poll`).

OUTPUT_URL = "https://provider.example/out.mp4?signature=s3cr3t"
VIDEO = StoredVideo(
    key="videos/job_vid_x.mp4",
    sha256="0" * 64,
    size_bytes=10,
    width=1280,
    height=720,
    duration_seconds=4.0,
)


class FinishedTask:
    """A provider whose task has succeeded (the loop only polls it)."""

    async def poll(self, route: Route, task_id: str) -> ProviderTaskStatus:
        return ProviderTaskStatus(state=TaskState.SUCCEEDED, output_url=OUTPUT_URL)


@dataclass
class Storage:
    """Stores what it is asked to, or fails as S3 does when `down`; a `slow` store lasts
    until the loop has heartbeated."""

    down: bool = False
    slow: bool = False
    calls: list[tuple[StoreRequest, str | None, dict[str, Any]]] = field(default_factory=list)
    firsts: list[bool] = field(default_factory=list)
    beaten: asyncio.Event = field(default_factory=asyncio.Event)

    async def store(
        self,
        request: StoreRequest,
        progress: dict[str, Any],
        *,
        finished: ProviderTaskStatus,
        first: bool,
    ) -> StoredVideo:
        self.calls.append((request, finished.output_url, dict(progress)))
        self.firsts.append(first)
        if self.slow:
            await self.beaten.wait()
        if self.down:
            raise ApplicationError("object storage is unavailable", type=STORAGE_TYPE)
        return VIDEO


def loop_request(
    *, lasting: float = 600.0, poll_min: float = 0.01, poll_max: float = 30.0, store: bool = False
) -> PollRequest:
    """A poll loop's request for one Runway task, its deadline `lasting` seconds away."""
    task = ProviderTaskRef(route=RUNWAY, task_id="t")
    return PollRequest(
        workflow_id="job_vid_x",
        task=task,
        started_at=datetime.now(UTC),
        deadline=datetime.now(UTC) + timedelta(seconds=lasting),
        poll_min_seconds=poll_min,
        poll_max_seconds=poll_max,
        store=StoreRequest(job_id="job_vid_x", task=task) if store else None,
    )


def loops_on(provider: Any, storage: Storage) -> PollingActivities:
    """The poll loop activities with `provider` as Runway's adapter."""
    return PollingActivities(cast(Client, None), {"runway": provider}, storage.store)


async def run_activity(
    storage: Storage, *, store: bool, resumed: dict[str, Any] | None = None
) -> tuple[PollOutcome, list[Any]]:
    """The loop as an activity's first attempt, or (`resumed`) a retry with that heartbeat."""
    request = loop_request(store=store)
    loops = loops_on(FinishedTask(), storage)
    env = ActivityEnvironment()
    if resumed is not None:
        env.info = replace(env.info, attempt=2, heartbeat_details=[resumed])
    beats: list[Any] = []

    def beat(*details: Any) -> None:
        beats.append(details[0])
        storage.beaten.set()

    env.on_heartbeat = beat
    return await env.run(loops.poll_until_done, request), beats


async def test_the_loop_stores_the_video_with_the_url_its_poll_returned() -> None:
    storage = Storage()
    outcome, beats = await run_activity(storage, store=True)
    assert outcome.video == VIDEO
    assert outcome.status.state is TaskState.SUCCEEDED
    assert outcome.status.output_url is None  # no signed URL in the workflow's history
    ((request, url, progress),) = storage.calls
    assert url == OUTPUT_URL and request.job_id == "job_vid_x"
    assert progress[STORING] is True  # what the store step saw: the loop's position, storing
    assert beats == []  # a quick store costs Temporal no heartbeat
    assert storage.firsts == [True]  # nothing can have stored it before: no check


async def test_a_retried_loop_stores_as_one_that_may_find_the_video_stored() -> None:
    storage = Storage()
    outcome, _ = await run_activity(storage, store=True, resumed={"polls": 3, STORING: True})
    assert outcome.video == VIDEO
    assert storage.firsts == [False]


async def test_a_slow_store_heartbeats_that_it_is_storing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polling, "STORING_SHOWN_AFTER_SECONDS", 0.01)
    storage = Storage(slow=True)
    outcome, beats = await run_activity(storage, store=True)
    assert outcome.video == VIDEO
    assert beats[0] == {"polls": 1, "progress": 0.0, STORING: True}


async def test_a_store_that_fails_in_the_loop_is_handed_back_to_the_workflow() -> None:
    storage = Storage(down=True)
    outcome, _ = await run_activity(storage, store=True)
    assert len(storage.calls) == 1
    assert outcome.video is None and outcome.status.state is TaskState.SUCCEEDED


async def test_a_loop_not_asked_to_store_does_not() -> None:
    storage = Storage()
    outcome, beats = await run_activity(storage, store=False)
    assert storage.calls == [] and beats == []
    assert outcome.video is None and outcome.status.state is TaskState.SUCCEEDED


class RunningTask:
    """A provider whose task is still being made."""

    async def poll(self, route: Route, task_id: str) -> ProviderTaskStatus:
        return ProviderTaskStatus(state=TaskState.RUNNING, progress=0.1)


async def test_the_loop_beats_as_seldom_as_its_heartbeat_timeout_allows() -> None:
    timeout = timedelta(seconds=0.3)
    run_for = 1.2
    request = loop_request(lasting=run_for, poll_min=0.02, poll_max=0.02)
    loops = loops_on(RunningTask(), Storage())
    env = ActivityEnvironment()
    env.info = replace(env.info, heartbeat_timeout=timeout)
    beats: list[float] = []
    env.on_heartbeat = lambda *_: beats.append(asyncio.get_running_loop().time())
    outcome = await env.run(loops.poll_until_done, request)
    every = timeout.total_seconds() * 2 / 3
    assert 1 <= len(beats) <= run_for / every
    # It polled every 20 ms meanwhile (as often as a loaded machine let it): more than it beat.
    assert outcome.deadline_passed and outcome.polls > len(beats)
    gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
    assert all(gap >= every * 0.95 for gap in gaps)  # never sooner than two thirds of it


@dataclass
class AdvancingTask:
    """A provider whose task's progress moves by 2 points a poll until it is done."""

    polls: int = 0

    async def poll(self, route: Route, task_id: str) -> ProviderTaskStatus:
        self.polls += 1
        if self.polls == 50:
            return ProviderTaskStatus(state=TaskState.SUCCEEDED, output_url=OUTPUT_URL)
        return ProviderTaskStatus(state=TaskState.RUNNING, progress=round(self.polls * 0.02, 2))


async def test_progress_that_moved_by_a_step_is_heartbeated_at_once() -> None:
    """Long before a beat is due, each poll that moves progress `PROGRESS_SHOWN_STEP` past
    the progress last heartbeated beats, with the ETA: what a read of the job shows."""
    request = loop_request(poll_min=0.001, poll_max=0.001)
    loops = loops_on(AdvancingTask(), Storage())
    env = ActivityEnvironment()
    env.info = replace(env.info, heartbeat_timeout=timedelta(hours=1))
    beats: list[dict[str, Any]] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    outcome = await env.run(loops.poll_until_done, request)
    assert outcome.status.state is TaskState.SUCCEEDED and outcome.polls == 50
    assert PROGRESS_SHOWN_STEP == 0.05  # polls move it by 2 points: every third one beats
    assert [b["progress"] for b in beats] == [round(0.06 * n, 2) for n in range(1, 17)]
    assert all(b["eta_seconds"] is not None and b["polls"] == 3 * n for n, b in enumerate(beats, 1))


def processing(progress: float, eta_seconds: float | None = 90.0) -> JobView:
    view = JobView.model_validate(
        {
            "job_id": "job_vid_x",
            "tenant_id": "t",
            "request_id": "req_vid_x",
            "status": JobStatus.PROCESSING,
            "model": "veo-3",
            "requested_model": "veo-3",
            "provider": "gemini",
            "model_used": "veo-3.0-generate-001",
            "prompt": "a kite",
            "duration_seconds": 8,
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "estimated_cost_micro_usd": 1,
            "created_at": START,
        }
    )
    return view.model_copy(update={"progress": progress, "eta_seconds": eta_seconds})


def test_a_read_shows_the_loops_progress_where_it_is_ahead_of_the_memo() -> None:
    view = processing(0.25)
    show_position(view, {"polls": 9, "progress": 0.4, "eta_seconds": 30.0})
    assert (view.status, view.progress, view.eta_seconds) == (JobStatus.PROCESSING, 0.4, 30.0)
    behind = processing(0.5)
    show_position(behind, {"polls": 9, "progress": 0.4, "eta_seconds": 30.0})
    assert (behind.progress, behind.eta_seconds) == (0.5, 90.0)
    show_position(capped := processing(0.5), {"progress": 1.0})  # not done until it is stored
    assert capped.progress == polling.PROGRESS_BEFORE_STORED


def test_a_read_shows_a_loop_storing_the_video_as_storing() -> None:
    view = processing(0.5)
    show_position(view, {"polls": 9, "progress": 0.5, STORING: True})
    assert view.status is JobStatus.STORING


@pytest.mark.parametrize("details", [None, [0.7], "storing", {"polls": 3}])
def test_a_read_without_a_position_shows_the_memo(details: object) -> None:
    view = processing(0.25)
    show_position(view, details)
    assert view == processing(0.25)


def test_only_a_processing_jobs_view_takes_the_loops_position() -> None:
    queued = processing(0.0).model_copy(update={"status": JobStatus.QUEUED})
    show_position(queued, {"progress": 0.6, STORING: True})
    assert (queued.status, queued.progress) == (JobStatus.QUEUED, 0.0)
