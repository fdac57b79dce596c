"""Veo jobs on a deployment that serves Veo through Vertex AI (`REELAY_VEO_PLATFORM=vertex`):
the whole workflow on real Temporal and S3 against the emulator's Vertex AI protocol, the
video coming back inline or through Cloud Storage, stored as a real MP4."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from activities.media import probe_video
from providers.base import SourceImage
from providers.catalog import MODELS, CatalogError
from providers.registry import build_adapters
from reelay.jobs import Continuation, JobStatus
from reelay.settings import Settings
from reelay.storage import s3_client
from tests.integration.test_adapters_contract import PNG
from tests.integration.test_chains import assert_continuous
from tests.support import emulator_submissions, job_spec, running_worker, start, unique_prompt

STORED = "gs://reelay-test/veo/"


def on_vertex(settings: Settings, output: str) -> Settings:
    return settings.model_copy(update={"veo_platform": "vertex", "vertex_output_uri": output})


@pytest.mark.parametrize("output", ["", STORED], ids=["inline", "gcs"])
async def test_a_veo_3_job_runs_on_vertex_ai_to_a_stored_mp4(
    settings: Settings, tmp_path: Path, output: str
) -> None:
    vertex = on_vertex(settings, output)
    prompt = unique_prompt("[emu gen=0.5] a sunrise over the sea")
    spec = job_spec(vertex, prompt, model="veo-3", duration_seconds=4)
    assert [route.adapter for route in spec.routes] == ["vertex", "runway"]
    async with running_worker(vertex) as client:
        result = await (await start(client, vertex, spec)).result()
    assert result.status is JobStatus.COMPLETED, result.error
    assert (result.provider, result.model_used) == ("vertex", "veo-3.0-generate-001")
    assert result.video is not None
    local = tmp_path / "veo.mp4"
    s3_client(vertex).fget_object(vertex.s3_bucket, result.video.key, str(local))
    info = probe_video(local)
    assert info.duration_seconds == pytest.approx(4, abs=0.1)
    assert info.width > info.height  # 16:9
    [made] = await emulator_submissions(vertex, prompt, provider="vertex")
    assert made["model"] == "veo-3.0-generate-001"
    assert made.get("storage_uri") == (output or None)


async def test_veo_3_1_extends_its_own_stored_video_on_vertex_ai(
    settings: Settings, tmp_path: Path
) -> None:
    """A chain's further segment extends the earlier `gs://` output (Vertex AI's video
    extension), so the stitched video runs on without a jump."""
    vertex = on_vertex(settings, STORED)
    prompt = unique_prompt("[emu gen=1] an extended shot")
    spec = job_spec(vertex, prompt, model="veo-3.1", duration_seconds=8, resolution="720p")
    route = spec.routes[0].model_copy(
        update={"continuation": Continuation.EXTEND, "continue_model": "veo-3.1-generate-preview"}
    )
    spec = spec.model_copy(update={"routes": [route], "segments": [8, 8], "duration_seconds": 14})
    async with running_worker(vertex) as client:
        result = await (await start(client, vertex, spec)).result()
    assert result.status is JobStatus.COMPLETED, result.error
    assert result.video is not None
    assert result.video.duration_seconds == pytest.approx(14, abs=0.1)
    local = tmp_path / "extended.mp4"
    s3_client(vertex).fget_object(vertex.s3_bucket, result.video.key, str(local))
    assert_continuous(local)
    first, second = await emulator_submissions(vertex, prompt, provider="vertex")
    assert second["continues"] == first["task_id"]


async def test_every_veo_route_is_accepted_by_the_emulated_vertex_ai(settings: Settings) -> None:
    """Each Veo model's default request, text and image, with inline and stored output,
    passes the Vertex AI emulator's validation (`[emu fail=internal]` skips rendering)."""
    image = SourceImage(url="https://bucket.test/in.png", content_type="image/png", data=PNG)
    accepted = 0
    for output in ("", STORED):
        vertex = on_vertex(settings, output)
        adapter = build_adapters(vertex)["vertex"]
        for model, with_image in itertools.product(MODELS, (False, True)):
            prompt = unique_prompt(f"{model.id} [emu fail=internal]")
            try:
                spec = job_spec(vertex, prompt, model=model.id, with_image=with_image)
            except CatalogError:
                continue
            for route in spec.routes:
                if route.adapter == "vertex":
                    job = spec.model_copy(update={"routes": [route]})
                    await adapter.submit(job, route, image=image if with_image else None)
                    accepted += 1
        await adapter.aclose()
    assert accepted == 2 * 2 * 7  # seven Veo models, text and image, two outputs
