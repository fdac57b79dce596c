"""Time from the provider finishing a video to the job being `complete`: with provider
callbacks (Luma calls back at once) and with polling only (no public URL, adaptive polls).

`python -m bench.callbacks [--jobs 8]`
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.stack import BENCH_KEY, own_stack
from reelay import devstack
from reelay.settings import Settings
from reelay.temporal import connect
from workflows.video_generation import VideoGenerationWorkflow

# Generation times spread out, as real ones are, so polling cannot happen to line up.
GENERATION_SECONDS = (9.0, 13.0, 17.0, 21.0, 25.0, 29.0)


async def lags(settings: Settings, jobs: int) -> list[float]:
    """Seconds from each provider task's end to its job's completion (storing included)."""
    client = await connect(settings)
    async with httpx.AsyncClient(
        base_url=devstack.api_base_url(settings),
        headers={"Authorization": f"Bearer {BENCH_KEY}"},
        timeout=60,
    ) as http:
        ids = []
        for n in range(jobs):
            seconds = GENERATION_SECONDS[n % len(GENERATION_SECONDS)]
            body = {
                "prompt": f"[emu gen={seconds} queue=0] callback bench {n}",
                "model": "luma-dream-machine",
                "duration_seconds": 5,
            }
            ids.append((await http.post("/v1/video/generations", json=body)).json()["id"])
        views = await asyncio.gather(
            *(client.get_workflow_handle_for(VideoGenerationWorkflow.run, i).result() for i in ids)
        )
        made = (await http.get(f"{settings.emulator_url}/_emulator/submissions")).json()
    finished: dict[str, datetime] = {
        s["prompt"]: datetime.fromisoformat(s["received_at"].replace("Z", "+00:00"))
        + timedelta(seconds=float(s["prompt"].split("gen=")[1].split()[0]))
        for s in made
    }
    return [
        (view.completed_at - finished[view.prompt]).total_seconds()
        for view in views
        if view.completed_at is not None
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    args = parser.parse_args()
    modes: dict[str, dict[str, Any]] = {
        # Polls every 30 s at most: a callback is what makes the job finish promptly.
        "callbacks": {"poll_min_seconds": 30.0, "poll_max_seconds": 30.0},
        # No public URL, so no callback URL: the adaptive poll loop alone (1-30 s).
        "polling only": {"public_url": "", "poll_min_seconds": 1.0, "poll_max_seconds": 30.0},
    }
    for name, overrides in modes.items():
        with (
            tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp,
            own_stack(Path(tmp), **overrides) as settings,
        ):
            samples = asyncio.run(lags(settings, args.jobs))
        print(
            f"{name:>12}: provider done -> job complete: mean {statistics.mean(samples):.2f} s, "
            f"median {statistics.median(samples):.2f} s, max {max(samples):.2f} s "
            f"(n={len(samples)})"
        )


if __name__ == "__main__":
    main()
