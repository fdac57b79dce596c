"""The front door side by side: POST (create) and GET (status) latency at concurrency 1 and
16 for the provider emulator answering directly (the floor), LiteLLM's proxy in front of it,
and Reelay with credits and limits on (native and OpenAI dialect) and off.

`python -m bench.front_door [--requests 100] [--concurrency 1 16] [--litellm-venv DIR]`

Everything runs on 127.0.0.1 in one temp dir: one Reelay stack (its emulator is the floor
and LiteLLM's upstream, Runway protocol), a second API on it with limits off, and LiteLLM
installed from PyPI into a venv of its own (`--litellm-venv` keeps one between runs). Jobs
stay in flight and are polled rarely (`QUIET_IN_FLIGHT`), so only the front door is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.stack import (
    BENCH_KEY,
    METERED_KEY,
    MODEL,
    QUIET_IN_FLIGHT,
    RUNWAY_MODEL,
    RUNWAY_RATIO,
    RUNWAY_VERSION,
    SECONDS,
    Batch,
    own_stack,
    quantile_ms,
    second_api,
    table,
    timed_many,
)
from reelay import devstack
from reelay.settings import Settings

LITELLM_MASTER_KEY = "sk-bench-litellm"
LITELLM_MODEL = "runway-gen4.5"
#: LiteLLM's data it would otherwise fetch from GitHub (`LITELLM_LOCAL_<NAME>=True` each).
LITELLM_LOCAL_DATA = (
    "MODEL_COST_MAP",
    "ANTHROPIC_BETA_HEADERS",
    "AUTOROUTER_PRESETS",
    "BLOG_POSTS",
    "POLICY_TEMPLATES",
)
#: Port 9 (discard) of 127.0.0.1: nothing listens, so a request through it fails at once.
CLOSED_PROXY = "http://127.0.0.1:9"
#: Requests per target before measuring (connections open, caches warm); not counted.
WARMUP = 5
#: How long one phase (N POSTs or N GETs at one concurrency) may take before it stops.
PHASE_SECONDS = 300.0


@dataclass
class Target:
    """One row: how to create a video and read its status, or why it cannot run."""

    name: str
    base_url: str
    key: str
    create: Callable[[httpx.AsyncClient, int], Awaitable[str]] | None = None
    status: Callable[[httpx.AsyncClient, str], Awaitable[None]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    skipped: str = ""


def _id_of(response: httpx.Response) -> str:
    response.raise_for_status()
    return str(response.json()["id"])


def floor(settings: Settings) -> Target:
    """The emulator's Runway protocol, called as Runway's own clients call it."""

    async def create(http: httpx.AsyncClient, n: int) -> str:
        body = {
            "model": RUNWAY_MODEL,
            "promptText": f"front door bench {n}",
            "ratio": RUNWAY_RATIO,
            "duration": SECONDS,
        }
        return _id_of(await http.post("/runway/v1/text_to_video", json=body))

    async def status(http: httpx.AsyncClient, task_id: str) -> None:
        (await http.get(f"/runway/v1/tasks/{task_id}")).raise_for_status()

    return Target(
        "floor (emulator direct, Runway protocol)",
        settings.emulator_url,
        "emulator-key",
        create,
        status,
        headers={"X-Runway-Version": RUNWAY_VERSION},
    )


def openai_shape(name: str, base_url: str, key: str, model: str) -> Target:
    """`POST /v1/videos` and `GET /v1/videos/{id}` (OpenAI's Videos API)."""

    async def create(http: httpx.AsyncClient, n: int) -> str:
        body = {
            "model": model,
            "prompt": f"front door bench {n}",
            "seconds": str(SECONDS),
            "size": RUNWAY_RATIO.replace(":", "x"),
        }
        return _id_of(await http.post("/v1/videos", json=body))

    async def status(http: httpx.AsyncClient, video_id: str) -> None:
        (await http.get(f"/v1/videos/{video_id}")).raise_for_status()

    return Target(name, base_url, key, create, status)


def reelay_native(name: str, base_url: str, key: str) -> Target:
    """`POST /v1/video/generations` and `GET /v1/video/generations/{id}`."""

    async def create(http: httpx.AsyncClient, n: int) -> str:
        body = {
            "prompt": f"front door bench {n}",
            "model": MODEL,
            "duration_seconds": SECONDS,
            "resolution": "720p",
            "aspect_ratio": "16:9",
        }
        return _id_of(await http.post("/v1/video/generations", json=body))

    async def status(http: httpx.AsyncClient, job_id: str) -> None:
        (await http.get(f"/v1/video/generations/{job_id}")).raise_for_status()

    return Target(name, base_url, key, create, status)


# --- LiteLLM, in a venv of its own -----------------------------------------------------


def _install_litellm(venv: Path) -> str:
    """`litellm[proxy]` from PyPI into `venv` (kept if it has it); '' or why it failed."""
    litellm = venv / "bin" / "litellm"
    if litellm.exists():
        return ""
    print(f"installing litellm[proxy] into {venv} (pip, PyPI) ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "--quiet", "litellm[proxy]"],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=1200)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{step[0]} failed: {exc}"
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            return f"`{' '.join(step[-2:])}` exited {done.returncode}: {lines[-1] if lines else ''}"
    return ""


def _litellm_config(root: Path, settings: Settings) -> Path:
    """One model: Runway Gen-4.5 through LiteLLM's RunwayML provider, pointed at the emulator."""
    path = root / "litellm.yaml"
    path.write_text(
        "model_list:\n"
        f"  - model_name: {LITELLM_MODEL}\n"
        "    litellm_params:\n"
        f"      model: runwayml/{RUNWAY_MODEL}\n"
        "      custom_llm_provider: runwayml\n"
        f"      api_base: {settings.emulator_url}/runway/v1\n"
        "      api_key: emulator-key\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_MASTER_KEY}\n"
    )
    return path


@contextmanager
def litellm_proxy(root: Path, venv: Path, settings: Settings) -> Iterator[Target]:
    """LiteLLM's proxy on a free port of 127.0.0.1, or a Target that says why not."""
    name = "LiteLLM proxy (/v1/videos, RunwayML provider)"
    problem = _install_litellm(venv)
    if problem:
        yield Target(name, "", "", skipped=f"not installed: {problem}")
        return
    port = devstack.free_port()
    env = {
        **os.environ,
        # Its bundled copies instead of downloads (cost map, presets, ...), no telemetry,
        # and anything but 127.0.0.1 sent to a closed local port: it reaches only the emulator.
        **{f"LITELLM_LOCAL_{name}": "True" for name in LITELLM_LOCAL_DATA},
        "LITELLM_TELEMETRY": "False",
        "HTTP_PROXY": CLOSED_PROXY,
        "HTTPS_PROXY": CLOSED_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    args = [str(venv / "bin" / "litellm"), "--config", str(_litellm_config(root, settings))]
    args += ["--host", "127.0.0.1", "--port", str(port)]
    proc = devstack.ManagedProcess("litellm", args, log_path=root / "logs" / "litellm.log", env=env)
    try:
        proc.start()
        devstack.wait_for_http(
            f"http://127.0.0.1:{port}/health/liveliness", timeout=180, process=proc
        )
    except devstack.StackError as exc:
        proc.stop()
        yield Target(name, "", "", skipped=f"did not start: {str(exc).splitlines()[0]}")
        return
    try:
        yield openai_shape(name, f"http://127.0.0.1:{port}", LITELLM_MASTER_KEY, LITELLM_MODEL)
    finally:
        proc.stop()


# --- measuring ---------------------------------------------------------------------------


@dataclass
class Phase:
    posts: Batch
    gets: Batch


async def measure(target: Target, requests: int, concurrency: int) -> Phase:
    """`requests` creates, then `requests` status reads of the videos made, at `concurrency`."""
    assert target.create is not None and target.status is not None
    create, status = target.create, target.status
    async with httpx.AsyncClient(
        base_url=target.base_url,
        headers={"Authorization": f"Bearer {target.key}", **target.headers},
        timeout=httpx.Timeout(60.0),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    ) as http:
        warm = await timed_many(lambda n: create(http, -n - 1), WARMUP, concurrency)
        ids = [r for r in warm.results if isinstance(r, str)]
        posts = await timed_many(lambda n: create(http, n), requests, concurrency, PHASE_SECONDS)
        ids += [r for r in posts.results if isinstance(r, str)]
        if not ids:
            return Phase(posts, Batch([], [], 0.0, requests))
        await timed_many(lambda n: status(http, ids[n % len(ids)]), WARMUP, concurrency)
        gets = await timed_many(
            lambda n: status(http, ids[n % len(ids)]), requests, concurrency, PHASE_SECONDS
        )
    return Phase(posts, gets)


def _cell(batch: Batch) -> str:
    ok = batch.ok()
    text = "/".join(f"{quantile_ms(ok, q):.0f}" for q in (0.5, 0.9, 0.99)) if ok else "-"
    if failures := batch.failures():
        text += f" ({failures})"
    if batch.skipped:
        text += f" ({batch.skipped} skipped: time bound)"
    return text


def _p50(batch: Batch) -> float | None:
    ok = batch.ok()
    return quantile_ms(ok, 0.5) if ok else None


def _ratio(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.1f}x"


def report(
    targets: list[Target], results: dict[tuple[str, int], Phase], levels: list[int], n: int
) -> None:
    header = ["target"]
    for c in levels:
        header += [f"c={c} POST p50/p90/p99 ms", f"c={c} GET p50/p90/p99 ms"]
    rows = []
    for target in targets:
        if target.skipped:
            rows.append([target.name, *([target.skipped] + [""] * (2 * len(levels) - 1))])
            continue
        row = [target.name]
        for c in levels:
            phase = results[(target.name, c)]
            row += [_cell(phase.posts), _cell(phase.gets)]
        rows.append(row)
    print(f"\nFront door: {n} requests per cell, after {WARMUP} warm-up requests (not counted)")
    print(table(header, rows))

    base_floor, base_litellm = targets[0], targets[1]
    ratio_header = ["p50 ratio"]
    for c in levels:
        ratio_header += [f"c={c} POST vs floor / LiteLLM", f"c={c} GET vs floor / LiteLLM"]
    ratio_rows = []
    for target in targets[2:]:
        if target.skipped:
            continue
        row = [target.name]
        for c in levels:
            for part in ("posts", "gets"):
                mine = _p50(getattr(results[(target.name, c)], part))
                bases = [
                    None if b.skipped else _p50(getattr(results[(b.name, c)], part))
                    for b in (base_floor, base_litellm)
                ]
                row.append(" / ".join(_ratio(mine, b) for b in bases))
        ratio_rows.append(row)
    print()
    print(table(ratio_header, ratio_rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="per target and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--litellm-venv", type=Path, help="LiteLLM venv to keep (default: new, in the temp dir)"
    )
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp:
        root = Path(tmp)
        venv = args.litellm_venv or root / "litellm-venv"
        with (
            own_stack(root, **QUIET_IN_FLIGHT) as settings,
            second_api(settings, root, limits_enabled=False) as limits_off,
            litellm_proxy(root, venv, settings) as litellm,
        ):
            api = devstack.api_base_url(settings)
            targets = [
                floor(settings),
                litellm,
                reelay_native("Reelay, credits+limits on (native)", api, METERED_KEY),
                reelay_native("Reelay, limits off (native)", limits_off, BENCH_KEY),
                openai_shape("Reelay, limits on (OpenAI /v1/videos)", api, METERED_KEY, MODEL),
            ]
            results: dict[tuple[str, int], Phase] = {}
            for c in args.concurrency:
                for target in targets:
                    if not target.skipped:
                        print(f"measuring {target.name} at c={c} ...", flush=True)
                        results[(target.name, c)] = asyncio.run(measure(target, args.requests, c))
    report(targets, results, args.concurrency, args.requests)
    print(f"\ntook {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
