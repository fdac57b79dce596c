"""`VideoGenerationWorkflow` on a real Temporal dev server, real S3 and the real emulator."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from activities.media import probe_video
from reelay.jobs import JobStatus, JobView, WebhookTarget
from reelay.settings import Settings
from reelay.storage import s3_client
from tests.support import (
    emulator_submissions,
    job_spec,
    rolling_over,
    running_worker,
    start,
    status_is,
    unique_prompt,
    view_of,
    wait_until,
)
from workflows import search_attributes
from workflows.video_generation import MEMO_CURRENT, MEMO_VIEW, VideoGenerationWorkflow


async def test_happy_path_stores_a_checked_video_and_settles_the_cost(
    settings: Settings, tmp_path: Path
) -> None:
    prompt = unique_prompt()
    spec = job_spec(
        settings,
        prompt,
        model="runway-gen3",
        duration_seconds=3,
        aspect_ratio="9:16",
        resolution="720p",  # gen4.5's resolution (1080p is made by Runway's veo3.1_fast)
    )
    async with running_worker(settings) as client:
        handle = await start(client, settings, spec)
        result = await handle.result()
        assert isinstance(result, JobView)
        description = await handle.describe()

    assert result.status is JobStatus.COMPLETED
    assert result.model_used == "gen4.5"
    assert result.cost_micro_usd == 300_000 == spec.estimated_cost_micro_usd
    assert result.video is not None
    assert result.video.height > result.video.width  # 9:16
    assert result.video.duration_seconds == pytest.approx(3.0, abs=0.1)
    assert description.typed_search_attributes.get(search_attributes.STATUS) == "completed"
    assert description.typed_search_attributes.get(search_attributes.TENANT) == "tenant-a"

    s3 = s3_client(settings)
    local = tmp_path / "video.mp4"
    s3.fget_object(settings.s3_bucket, result.video.key, str(local))
    assert hashlib.sha256(local.read_bytes()).hexdigest() == result.video.sha256
    info = probe_video(local)
    assert (info.codec, info.width, info.height) == (
        "h264",
        result.video.width,
        result.video.height,
    )
    assert result.video.thumbnail_key
    assert s3.stat_object(settings.s3_bucket, result.video.thumbnail_key).size
    assert len(await emulator_submissions(settings, prompt)) == 1


async def test_the_memo_follows_a_running_jobs_view(settings: Settings) -> None:
    """What the API reads with one `describe` is the view the workflow's own query answers,
    at each step (the query is the oracle; a read between a change and its workflow task's
    completion may differ, so only matching reads are collected)."""
    spec = job_spec(settings, unique_prompt("[emu gen=3 steps=6] a kite in the wind"))
    seen: list[JobView] = []
    async with running_worker(settings) as client:
        handle = await start(client, settings, spec)

        async def memo_matches_query() -> bool:
            description = await handle.describe()
            memo = await description.memo_value(MEMO_VIEW, type_hint=JobView)
            queried = await handle.query(VideoGenerationWorkflow.view)
            if memo == queried and await description.memo_value(MEMO_CURRENT, default=False):
                seen.append(memo)
            return memo.status is JobStatus.COMPLETED

        await wait_until(memo_matches_query, interval=0.05)
    processing = [v for v in seen if v.status is JobStatus.PROCESSING]
    assert any(0 < v.progress < 1 and v.provider_task_id for v in processing)
    assert seen[-1].status is JobStatus.COMPLETED and seen[-1].video is not None


async def test_content_refusal_fails_at_once_with_the_providers_reason(settings: Settings) -> None:
    prompt = unique_prompt("[emu refuse] something forbidden")
    spec = job_spec(settings, prompt)
    async with running_worker(settings) as client:
        handle = await start(client, settings, spec)
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
        view = await view_of(handle)
        description = await handle.describe()

    assert isinstance(caught.value.cause, ApplicationError)
    assert caught.value.cause.type == "content_policy_violation"
    assert view.status is JobStatus.FAILED
    assert view.error is not None
    assert view.error.message.startswith("Content policy violation:")
    assert view.video is None and view.cost_micro_usd is None
    assert description.status == WorkflowExecutionStatus.FAILED
    assert len(await emulator_submissions(settings, prompt)) == 1


async def test_transient_provider_errors_are_retried_and_submit_once(settings: Settings) -> None:
    prompt = unique_prompt(
        "[emu create_429=1 retry_after=1 create_5xx=2 poll_5xx=2 truncate=1] a storm at sea"
    )
    spec = job_spec(settings, prompt, duration_seconds=2)
    async with running_worker(settings) as client:
        result = await (await start(client, settings, spec)).result()
    assert result.status is JobStatus.COMPLETED
    assert result.video is not None
    assert len(await emulator_submissions(settings, prompt)) == 1


async def test_cancel_stops_the_provider_task_and_ends_cancelled(settings: Settings) -> None:
    prompt = unique_prompt("[emu gen=60] a slow sunrise")
    spec = job_spec(settings, prompt)
    async with running_worker(settings) as client:
        handle = await start(client, settings, spec)
        await wait_until(lambda: status_is(handle, JobStatus.PROCESSING))
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
        view = await view_of(handle)

    assert isinstance(caught.value.cause, CancelledError)
    assert view.status is JobStatus.CANCELLED
    assert view.provider_task_id
    async with httpx.AsyncClient(base_url=settings.emulator_url) as http:
        task = await http.get(
            f"/runway/v1/tasks/{view.provider_task_id}",
            headers={"Authorization": "Bearer x", "X-Runway-Version": "2024-11-06"},
        )
    assert task.json()["status"] == "CANCELLED"


async def test_deadline_fails_the_job_and_cancels_upstream(settings: Settings) -> None:
    prompt = unique_prompt("[emu gen=60] a glacier melting")
    spec = job_spec(settings, prompt).model_copy(update={"deadline_seconds": 2})
    async with running_worker(settings) as client:
        handle = await start(client, settings, spec)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        view = await view_of(handle)
    assert view.status is JobStatus.FAILED
    assert view.error is not None and view.error.code == "deadline_exceeded"


async def test_a_job_survives_its_worker_stopping_mid_poll(settings: Settings) -> None:
    prompt = unique_prompt("[emu gen=4] a train crossing a bridge")
    spec = job_spec(settings, prompt)
    async with running_worker(settings) as client:
        handle = await start(client, settings, spec)
        await wait_until(lambda: status_is(handle, JobStatus.PROCESSING))
    # No worker now; the job waits durably. A new worker picks it up.
    async with running_worker(settings) as client:
        result = await client.get_workflow_handle_for(
            VideoGenerationWorkflow.run, spec.job_id
        ).result()
    assert result.status is JobStatus.COMPLETED
    assert len(await emulator_submissions(settings, prompt)) == 1


async def test_provider_event_signal_wakes_the_poll_loop(settings: Settings) -> None:
    """With hour-long poll intervals only the signal can make the job finish in time."""
    slow = settings.model_copy(update={"poll_min_seconds": 3600.0, "poll_max_seconds": 3600.0})
    prompt = unique_prompt("[emu gen=1 queue=0] a hummingbird")
    spec = job_spec(slow, prompt)
    async with running_worker(slow) as client:
        handle = await start(client, slow, spec)
        await wait_until(lambda: status_is(handle, JobStatus.PROCESSING))
        task_id = (await view_of(handle)).provider_task_id

        async def provider_done() -> bool:
            async with httpx.AsyncClient(base_url=settings.emulator_url) as http:
                task = await http.get(
                    f"/runway/v1/tasks/{task_id}",
                    headers={"Authorization": "Bearer x", "X-Runway-Version": "2024-11-06"},
                )
            return bool(task.json()["status"] == "SUCCEEDED")

        await wait_until(provider_done)
        await handle.signal(VideoGenerationWorkflow.provider_event)
        result = await asyncio.wait_for(handle.result(), timeout=120)
    assert result.status is JobStatus.COMPLETED


async def test_a_longer_clip_is_trimmed_to_the_requested_duration(settings: Settings) -> None:
    prompt = unique_prompt("[emu gen=1] a tide pool")
    spec = job_spec(settings, prompt, duration_seconds=3, resolution="720p")  # gen4.5: 2-10 s
    spec.routes[0] = spec.routes[0].model_copy(update={"clip_seconds": 5})
    async with running_worker(settings) as client:
        result = await (await start(client, settings, spec)).result()
    assert result.video is not None
    assert result.video.duration_seconds == pytest.approx(3.0, abs=0.05)
    assert result.cost_micro_usd == spec.estimated_cost_micro_usd
    submitted = await emulator_submissions(settings, prompt)
    assert [s["duration"] for s in submitted] == [5]


async def test_no_secret_ever_enters_a_workflow_history(settings: Settings) -> None:
    """Real-looking provider keys (aimed at the emulator): none may reach any history."""
    secrets = {
        "runway_api_key": "sk-runway-0123456789-secret",
        "s3_secret_key": settings.s3_secret_key.get_secret_value(),
        "url_signing_secret": "signing-secret-0123456789",
        "webhook_secret_seed": "webhook-seed-0123456789",
    }
    keyed = settings.model_copy(
        update={
            "runway_api_key": SecretStr(secrets["runway_api_key"]),
            "runway_base_url": f"{settings.emulator_url}/runway",
            "url_signing_secret": SecretStr(secrets["url_signing_secret"]),
            "webhook_secret_seed": SecretStr(secrets["webhook_secret_seed"]),
        }
    )
    spec = job_spec(keyed, unique_prompt("[emu gen=1] a secret garden"), duration_seconds=2)
    async with running_worker(keyed) as client:
        handle = await start(client, keyed, spec)
        await handle.result()
        history = (await handle.fetch_history()).to_json()
    assert len(history) > 1000
    for name, secret in secrets.items():
        assert secret not in history, f"{name} leaked into the workflow history"


async def test_a_job_continued_as_new_starts_its_next_run_with_its_view_as_memo(
    settings: Settings,
) -> None:
    """A long job's history rolls over mid-poll (a server that suggests it early; a job with
    progress webhooks, told each of their steps): the next run's memo is the view so far, so
    a read before its first task shows it."""
    async with rolling_over(settings) as rolling, running_worker(rolling) as client:
        spec = job_spec(rolling, unique_prompt("[emu gen=12 steps=48] a river at night"))
        hook = WebhookTarget(url="https://hooks.example.com/river", events=["progress"])
        spec = spec.model_copy(update={"webhook": hook})
        handle = await start(client, rolling, spec)
        result = await handle.result()
        # The handle follows the chain to the run the job ended in, which was continued into.
        history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert result.status is JobStatus.COMPLETED and started.continued_execution_run_id
    carried = started.memo.fields[MEMO_VIEW]
    view = client.data_converter.payload_converter.from_payload(carried, JobView)
    assert view.job_id == spec.job_id and view.provider_task_id
