"""A batch through the zero-delay emulator against the same jobs submitted over the API at
the same concurrency: lines per second sustained, time to validate, peak worker and API RSS
(the processes' high-water marks), and the batch workflow's largest history (events and
bytes, over its continue-as-new runs).

`python -m bench.batch [--lines 10000] [--concurrency 32] [--api-jobs 2000]` (the output
file is streamed whole at the end, as a check that every line has its record). Each line is
the job the other benchmarks make (`bench.stack.MODEL`, `SECONDS`, 720p); the API baseline
makes `--api-jobs` of them (a steady rate needs no more), half before the batch and half
after it, and the batch is compared with their mean: the server grows as the batch runs, so
a baseline run only before it (or only after) would favour one side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from bench.stack import BENCH_KEY, MODEL, SECONDS, own_stack
from reelay.settings import Settings
from reelay.temporal import connect

TERMINAL = {"complete", "failed", "cancelled"}


BODY = {"model": MODEL, "duration_seconds": SECONDS, "resolution": "720p"}


def _lines(count: int, tag: str) -> bytes:
    return "".join(
        json.dumps(
            {
                "custom_id": f"{tag}-{n}",
                "method": "POST",
                "url": "/v1/video/generations",
                "body": {**BODY, "prompt": f"[emu gen=0] {tag} {n}"},
            }
        )
        + "\n"
        for n in range(count)
    ).encode()


async def run_batch(api: str, lines: int, concurrency: int) -> dict[str, float | str]:
    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {BENCH_KEY}"}, timeout=120
    ) as http:
        files = {"file": ("bench.jsonl", _lines(lines, "batch"), "application/jsonl")}
        response = await http.post(
            "/v1/batches", files=files, data={"concurrency": str(concurrency)}
        )
        response.raise_for_status()
        batch_id = response.json()["id"]
        # status reads that got no view (a 503 while the batch's worker is busy, say)
        unanswered = 0
        while True:
            read = await http.get(f"/v1/batches/{batch_id}")
            if read.status_code != 200:
                unanswered += 1
            elif (view := read.json())["status"] in ("completed", "failed", "cancelled"):
                break
            await asyncio.sleep(1)
        # the output file streamed whole (its listing paged: memory flat in lines)
        began, records = time.perf_counter(), 0
        async with http.stream("GET", f"/v1/batches/{batch_id}/output") as output:
            async for line in output.aiter_lines():
                records += bool(line.strip())
        output_s = time.perf_counter() - began
    created = datetime.fromisoformat(view["created_at"])
    started = datetime.fromisoformat(view["started_at"])
    completed = datetime.fromisoformat(view["completed_at"])
    running = (completed - started).total_seconds()
    return {
        "batch_id": batch_id,
        "status": view["status"],
        "validate_s": (started - created).total_seconds(),
        "run_s": running,
        "lines_per_s": view["request_counts"]["completed"] / running if running else 0.0,
        "output_records": records,
        "output_s": output_s,
        "unanswered_reads": unanswered,
    }


async def run_api(api: str, jobs: int, concurrency: int) -> float:
    """The same jobs over the API, `concurrency` in flight (each followed to its end)."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=api,
        headers={"Authorization": f"Bearer {BENCH_KEY}"},
        timeout=120,
        limits=httpx.Limits(max_connections=concurrency + 4),
    ) as http:

        async def one(n: int) -> None:
            async with gate:
                body = {**BODY, "prompt": f"[emu gen=0] api {n}"}
                job = (await http.post("/v1/video/generations", json=body)).json()
                while job["status"] not in TERMINAL:
                    await asyncio.sleep(0.2)
                    job = (await http.get(f"/v1/video/generations/{job['id']}")).json()

        began = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(jobs)))
        return jobs / (time.perf_counter() - began)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


def peak_rss_mb() -> dict[str, float]:
    """VmHWM (peak resident set) of the stack's worker and API processes (the API
    baseline's first half ran before the batch, with far fewer jobs in flight)."""
    peaks: dict[str, float] = {}
    for pid in _descendants(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        role = "worker" if "worker" in cmdline else "api" if "api" in cmdline.split() else None
        if role is None or "python" not in cmdline:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[role] = max(peaks.get(role, 0.0), int(line.split()[1]) / 1024)
    return peaks


async def largest_history(settings: Settings, batch_id: str) -> tuple[int, int, int]:
    """(runs, most events, most bytes) over the batch workflow's runs."""
    client = await connect(settings)
    runs, events, size = 0, 0, 0
    async for execution in client.list_workflows(f"WorkflowId = '{batch_id}'"):
        runs += 1
        history = await client.get_workflow_handle(
            batch_id, run_id=execution.run_id
        ).fetch_history()
        events = max(events, len(history.events))
        size = max(size, len(history.to_json()))
    return runs, events, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--api-jobs", type=int, default=2000, help="jobs of the API baseline")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp,
        own_stack(Path(tmp), emulator_generation_seconds=0.0) as settings,
    ):
        api_jobs = min(args.lines, args.api_jobs)
        api_before = asyncio.run(run_api(settings.public_url, api_jobs // 2, args.concurrency))
        batch = asyncio.run(run_batch(settings.public_url, args.lines, args.concurrency))
        peaks = peak_rss_mb()
        api_after = asyncio.run(
            run_api(settings.public_url, api_jobs - api_jobs // 2, args.concurrency)
        )
        runs, events, size = asyncio.run(largest_history(settings, str(batch["batch_id"])))
    api_rate = (api_before + api_after) / 2
    print(f"batch of {args.lines} lines at concurrency {args.concurrency}: {batch['status']}")
    print(f"  validate {batch['validate_s']:.1f} s, run {batch['run_s']:.1f} s")
    rate = float(batch["lines_per_s"])
    print(
        f"  batch {rate:.1f} lines/s vs API {api_rate:.1f} jobs/s ({rate / api_rate:.2f}x; "
        f"{api_jobs} jobs: {api_before:.1f} jobs/s before the batch, {api_after:.1f} after)"
    )
    print(f"  output: {batch['output_records']} records streamed in {batch['output_s']:.1f} s")
    print(f"  status reads without a view: {batch['unanswered_reads']}")
    print(f"  peak RSS: worker {peaks.get('worker', 0):.0f} MB, API {peaks.get('api', 0):.0f} MB")
    print(f"  history: {runs} runs, largest {events} events / {size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
