"""One job per provider family through `VideoGenerationWorkflow` on real Temporal, S3 and the
emulator: each routes to its own adapter, completes, and is submitted exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from reelay.jobs import JobStatus, JobView
from reelay.settings import Settings
from tests.support import job_spec, running_worker, start, unique_prompt

# model -> (provider, upstream model that runs)
JOBS = {
    "luma-dream-machine": ("luma", "ray-2"),
    "veo-3": ("gemini", "veo-3.0-generate-001"),
    "pika": ("fal", "fal-ai/pika/v2.2/text-to-video"),
    "kling-2.5-turbo-pro": ("fal", "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"),
    "wan-2.5-fast": ("replicate", "wan-video/wan-2.5-t2v-fast"),
}


async def _submissions(settings: Settings, provider: str, prompt: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=settings.emulator_url) as http:
        response = await http.get("/_emulator/submissions", params={"provider": provider})
        response.raise_for_status()
        return [s for s in response.json() if s["prompt"] == prompt]


async def test_one_job_per_provider_family_completes(settings: Settings) -> None:
    prompts = {model: unique_prompt(f"{model} [emu queue=0 gen=0.3]") for model in JOBS}
    specs = {model: job_spec(settings, prompts[model], model=model) for model in JOBS}
    async with running_worker(settings) as client:
        handles = [await start(client, settings, spec) for spec in specs.values()]
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 90)

    for model, result in zip(JOBS, results, strict=True):
        assert isinstance(result, JobView)
        provider, upstream = JOBS[model]
        assert result.status is JobStatus.COMPLETED, (model, result.error)
        assert (result.provider, result.model_used) == (provider, upstream)
        assert result.video is not None and result.video.size_bytes > 0
        [record] = await _submissions(settings, provider, prompts[model])
        assert record["model"] == upstream
