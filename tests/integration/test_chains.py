"""Videos longer than one clip: chained, continued segments stitched into one MP4."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import av
import pytest
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from emulator.render import PHASE_STEP, gradient_phase
from reelay import devstack
from reelay.jobs import Continuation, JobStatus, settled_cost_micro_usd
from reelay.settings import Settings
from reelay.storage import s3_client
from reelay.temporal import connect
from tests.conftest import clean_env
from tests.support import (
    emulator_submissions,
    job_spec,
    running_worker,
    start,
    unique_prompt,
    view_of,
    wait_until,
)
from workflows.clip import ClipWorkflow


def phases(path: Path) -> tuple[list[int], int]:
    """Each frame's gradient phase (the emulator's frame number) and the phase period."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    return [gradient_phase(f) for f in frames], frames[0].shape[1] // PHASE_STEP


ONE_FRAME = 1 / 8 + 0.01  # the emulator renders 8 fps in tests


def assert_continuous(path: Path) -> None:
    """Every frame moves the picture on by exactly one step: no gap, no repeat, no jump."""
    values, period = phases(path)
    steps = [(b - a) % period for a, b in itertools.pairwise(values)]
    assert steps and set(steps) == {1}, steps


@pytest.mark.parametrize(
    ("model", "seconds", "provider", "segments"),
    [
        ("runway-gen3", 16, "runway", 2),  # last frame through image-to-video
        ("luma-dream-machine", 10, "luma", 2),  # Luma generation keyframe
        ("veo-3", 60, "gemini", 8),  # seed 000's longest: eight Veo clips
    ],
)
async def test_a_chain_makes_one_continuous_video_of_the_exact_length(
    settings: Settings, tmp_path: Path, model: str, seconds: int, provider: str, segments: int
) -> None:
    prompt = unique_prompt(f"[emu gen=1] a long take for {model}")
    spec = job_spec(settings, prompt, model=model, duration_seconds=seconds)
    assert len(spec.segments) == segments
    async with running_worker(settings) as client:
        result = await (await start(client, settings, spec)).result()
    assert result.status is JobStatus.COMPLETED
    assert result.video is not None
    # A last-frame seam may leave the chain one frame short (1/8 s at the emulator's 8 fps)
    # rather than buy another clip for it.
    assert result.video.duration_seconds == pytest.approx(seconds, abs=ONE_FRAME)
    assert result.segments_total == segments and result.segments_done == segments
    # Billed for what was stored (to 0.1 s): a frame short of the estimate at most.
    assert result.cost_micro_usd == settled_cost_micro_usd(spec, result.video.duration_seconds)
    assert (
        result.cost_micro_usd
        >= spec.estimated_cost_micro_usd - spec.price_micro_usd_per_second // 10
    )
    local = tmp_path / "chain.mp4"
    s3_client(settings).fget_object(settings.s3_bucket, result.video.key, str(local))
    assert_continuous(local)
    made = await emulator_submissions(settings, prompt, provider=provider)
    assert len(made) == segments  # each segment submitted exactly once
    assert made[0].get("image") is False or made[0].get("image") is None


async def test_veo_video_extension_continues_the_same_video(
    settings: Settings, tmp_path: Path
) -> None:
    """Veo 3.1 extends its own output (no repeated frame to drop at the seams)."""
    prompt = unique_prompt("[emu gen=1] an extended shot")
    spec = job_spec(settings, prompt, model="veo-3.1", duration_seconds=8, resolution="720p")
    route = spec.routes[0].model_copy(
        update={
            "continuation": Continuation.EXTEND,
            "continue_model": spec.routes[0].upstream_model,
        }
    )
    spec = spec.model_copy(update={"routes": [route], "segments": [8, 8], "duration_seconds": 14})
    async with running_worker(settings) as client:
        result = await (await start(client, settings, spec)).result()
    assert result.video is not None
    assert result.video.duration_seconds == pytest.approx(14, abs=0.1)
    local = tmp_path / "extended.mp4"
    s3_client(settings).fget_object(settings.s3_bucket, result.video.key, str(local))
    assert_continuous(local)
    made = await emulator_submissions(settings, prompt, provider="gemini")
    assert len(made) == 2
    assert made[1]["continues"] == made[0]["task_id"]


async def test_cancelling_a_chain_pays_only_for_the_segments_made(settings: Settings) -> None:
    prompt = unique_prompt("[emu gen=1] a chain stopped half way")
    # 720p: gen4.5's 10 s clips (at 1080p runway-gen3 is Runway's veo3.1_fast, 8 s clips).
    spec = job_spec(settings, prompt, model="runway-gen3", duration_seconds=16, resolution="720p")
    async with running_worker(settings) as client:
        handle = await start(client, settings, spec)

        async def first_segment_made() -> bool:
            view = await view_of(handle)
            return view.segments_done >= 1

        await wait_until(first_segment_made)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        view = await view_of(handle)
    assert view.status is JobStatus.CANCELLED
    assert view.cost_micro_usd == 10 * 100_000  # the first 10 s clip, not the 16 s asked for
    assert view.cost_micro_usd < spec.estimated_cost_micro_usd


async def test_sigkill_during_a_segment_resumes_it_without_making_any_segment_twice(
    settings: Settings, stack_dir: Path
) -> None:
    prompt = unique_prompt("[emu gen=3] a chain through a crash")
    spec = job_spec(settings, prompt, model="runway-gen3", duration_seconds=16, resolution="720p")
    logs = stack_dir / "logs"
    client = await connect(settings)
    worker = devstack.start_worker(settings, log_path=logs / "chain-worker-1.log", env=clean_env())
    try:
        handle = await start(client, settings, spec)

        segment = client.get_workflow_handle(f"{spec.job_id}:segment:1")

        async def second_segment_running() -> bool:
            """Segment 2 is polling (its submission is recorded, not just sent)."""
            try:
                view = await segment.query(ClipWorkflow.view)
            except RPCError:
                return False  # not started yet
            return view.status is JobStatus.PROCESSING

        await wait_until(second_segment_running)
        worker.kill()
    finally:
        worker.stop()
    with devstack.start_worker(settings, log_path=logs / "chain-worker-2.log", env=clean_env()):
        result = await asyncio.wait_for(handle.result(), 180)
    assert result.status is JobStatus.COMPLETED
    assert result.video is not None
    assert result.video.duration_seconds == pytest.approx(16, abs=ONE_FRAME)
    assert len(await emulator_submissions(settings, prompt)) == 2
