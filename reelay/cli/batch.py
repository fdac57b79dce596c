"""`reelay batch ...`: submit a JSONL file of requests as a batch, follow it with a live
progress bar, and fetch its results (the output JSONL, and optionally every video, in
parallel and resumable: a video already saved is not fetched again)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reelay.cli.http import DEFAULT_API_URL, Api, ApiKey, ApiUrl, AsJson, console
from reelay.cli.http import print_json as emit_json
from reelay.cli.views import usd

batch = typer.Typer(help="Batches: many jobs from one JSONL file.", no_args_is_help=True)
BATCHES = "/v1/batches"
TERMINAL = {"completed", "failed", "cancelled"}


def _counts(view: dict[str, Any]) -> str:
    counts = view["request_counts"]
    return " ".join(
        f"{name} {counts[name]}"
        for name in ("queued", "running", "completed", "failed", "cancelled", "invalid")
        if counts[name]
    )


def _follow(http: Api, batch_id: str, interval: float, *, show: bool) -> dict[str, Any]:
    """Poll the batch until it ends, drawing counts, cost and ETA."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not show) as progress:
        bar = progress.add_task("validating", total=None, detail="")
        while True:
            view = http.get(f"{BATCHES}/{batch_id}")
            counts = view["request_counts"]
            valid = counts["total"] - counts["invalid"]
            done = counts["completed"] + counts["failed"] + counts["cancelled"]
            eta = view.get("eta_seconds")
            detail = (
                f"{_counts(view)}  {usd(view['cost_usd'])} of ~{usd(view['estimated_cost_usd'])}"
            )
            if eta is not None:
                detail += f"  ETA {eta}s"
            progress.update(
                bar,
                description=view["status"],
                total=valid or None,
                completed=done,
                detail=detail,
            )
            if view["status"] in TERMINAL:
                return view
            time.sleep(interval)


def _show(view: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    for label, value in (
        ("id", view["id"]),
        ("status", view["status"]),
        ("counts", _counts(view) or "-"),
        ("cost", f"{usd(view['cost_usd'])} (estimated {usd(view['estimated_cost_usd'])})"),
        ("eta", f"{view['eta_seconds']} s" if view.get("eta_seconds") is not None else "-"),
        ("created", view.get("created_at") or "-"),
        ("completed", view.get("completed_at") or "-"),
        ("paused", view.get("pause_reason") or "-"),
        ("error", view.get("error") or "-"),
    ):
        table.add_row(label, str(value))
    console.print(table)


@batch.command()
def submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the JSONL file")],
    api: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = "",
    concurrency: Annotated[int | None, typer.Option(help="jobs running at once")] = None,
    max_cost: Annotated[
        float | None, typer.Option("--max-cost", help="refuse the batch above this estimate")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="run the valid lines when some are invalid")
    ] = False,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="re-sending returns the same batch")
    ] = None,
    wait: Annotated[bool, typer.Option(help="follow the batch to its end")] = False,
    interval: Annotated[float, typer.Option(help="seconds between status checks")] = 1.0,
    as_json: AsJson = False,
) -> None:
    """Upload FILE and start it as a batch; with --wait, show its progress until it ends."""
    fields = {"on_invalid_line": "skip" if skip_invalid else "fail"}
    if concurrency is not None:
        fields["concurrency"] = str(concurrency)
    if max_cost is not None:
        fields["max_cost_usd"] = str(max_cost)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    with Api(api, key, as_json=as_json) as http:
        view = http.upload(BATCHES, file, fields, headers)
        if wait:
            view = _follow(http, view["id"], interval, show=not as_json)
    if as_json:
        emit_json(view)
        return
    _show(view)


@batch.command()
def status(
    batch_id: str, api: ApiUrl = DEFAULT_API_URL, key: ApiKey = "", as_json: AsJson = False
) -> None:
    """The batch's status, counts, cost and ETA."""
    with Api(api, key, as_json=as_json) as http:
        view = http.get(f"{BATCHES}/{batch_id}")
    if as_json:
        emit_json(view)
        return
    _show(view)


@batch.command("list")
def list_batches(
    api: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = "",
    limit: Annotated[int, typer.Option(help="batches per page")] = 20,
    after: Annotated[str | None, typer.Option(help="the last id of the previous page")] = None,
    as_json: AsJson = False,
) -> None:
    """The tenant's batches, newest first."""
    params: dict[str, str | int] = {"limit": limit}
    if after:
        params["after"] = after
    with Api(api, key, as_json=as_json) as http:
        page = http.get(BATCHES, params=params)
    if as_json:
        emit_json(page)
        return
    table = Table("id", "status", "counts", "cost", "created")
    for view in page["data"]:
        table.add_row(
            view["id"], view["status"], _counts(view), usd(view["cost_usd"]), view["created_at"]
        )
    console.print(table)


def _save_video(http: Api, record: dict[str, Any], folder: Path) -> str:
    """The line's MP4 into `folder` as `<custom_id>.mp4`, unless it is there already."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in record["custom_id"])
    target = folder / f"{name}.mp4"
    if target.exists() and target.stat().st_size > 0:
        return "kept"
    partial = target.with_suffix(".mp4.part")
    http.download(record["video_url"], partial)
    partial.rename(target)
    return "saved"


@batch.command()
def results(
    batch_id: str,
    api: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = "",
    output: Annotated[Path, typer.Option("-o", "--output", help="the output JSONL")] = Path(
        "results.jsonl"
    ),
    errors: Annotated[
        Path | None, typer.Option("--errors", help="also save the invalid lines here")
    ] = None,
    videos: Annotated[
        Path | None, typer.Option("--videos", help="download every finished video here")
    ] = None,
    parallel: Annotated[int, typer.Option(help="downloads at once")] = 4,
) -> None:
    """Save the batch's output (and errors) as JSONL; with --videos, its MP4s (resumable)."""
    with Api(api, key) as http:
        lines = http.lines(f"{BATCHES}/{batch_id}/output")
        output.write_text("".join(line + "\n" for line in lines))
        console.print(f"{len(lines)} results saved to {output}")
        if errors is not None:
            invalid = http.lines(f"{BATCHES}/{batch_id}/errors")
            errors.write_text("".join(line + "\n" for line in invalid))
            console.print(f"{len(invalid)} invalid lines saved to {errors}")
        if videos is None:
            return
        videos.mkdir(parents=True, exist_ok=True)
        records = [json.loads(line) for line in lines]
        ready = [record for record in records if record.get("video_url")]
        with ThreadPoolExecutor(max_workers=max(parallel, 1)) as pool:
            outcomes = list(pool.map(lambda record: _save_video(http, record, videos), ready))
        console.print(
            f"{outcomes.count('saved')} videos saved, {outcomes.count('kept')} already there, "
            f"in {videos}"
        )


def _signal(action: str, batch_id: str, api: str, key: str, body: dict[str, Any] | None) -> None:
    with Api(api, key) as http:
        view = http.post(f"{BATCHES}/{batch_id}/{action}", body)
    _show(view)


@batch.command()
def cancel(
    batch_id: str,
    api: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = "",
    cancel_running: Annotated[
        bool, typer.Option("--cancel-running", help="cancel the running jobs too")
    ] = False,
) -> None:
    """Start no more lines; the running ones finish (or, with --cancel-running, stop)."""
    _signal("cancel", batch_id, api, key, {"cancel_running": cancel_running})


@batch.command()
def pause(batch_id: str, api: ApiUrl = DEFAULT_API_URL, key: ApiKey = "") -> None:
    """Start no more lines until `resume`."""
    _signal("pause", batch_id, api, key, None)


@batch.command()
def resume(batch_id: str, api: ApiUrl = DEFAULT_API_URL, key: ApiKey = "") -> None:
    """Start lines again after a pause."""
    _signal("resume", batch_id, api, key, None)
