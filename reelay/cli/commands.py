"""The commands. Each calls the API over HTTP like any client (never Temporal), so the CLI
works against any deployment; each prints a readable table or panel, or with `--json` the
API's JSON as it came."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from reelay.cli.batch import batch
from reelay.cli.http import DEFAULT_API_URL, Api, ApiKey, ApiUrl, AsJson, console
from reelay.cli.http import print_json as emit_json
from reelay.cli.views import job_table, models_table, show_account, show_job, usd

app = typer.Typer(
    help="Reelay command line: generate videos and watch jobs through a Reelay API.",
    no_args_is_help=True,
)
jobs = typer.Typer(help="The tenant's jobs, as operators look at them.", no_args_is_help=True)
app.add_typer(jobs, name="jobs")
app.add_typer(batch, name="batch")

TERMINAL = {"complete", "failed", "cancelled"}
JOBS = "/v1/video/generations"

TemporalUi = Annotated[
    str,
    typer.Option("--temporal-ui", envvar="REELAY_TEMPORAL_UI_URL", help="Temporal Web UI base URL"),
]
Namespace = Annotated[
    str, typer.Option("--namespace", envvar="REELAY_TEMPORAL_NAMESPACE", help="Temporal namespace")
]


def _wait(http: Api, job_id: str, interval: float, *, show: bool) -> dict[str, Any]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not show) as progress:
        bar = progress.add_task("pending", total=100)
        while True:
            job = http.get(f"{JOBS}/{job_id}")
            percent = job.get("progress_percent") or (100 if job["status"] == "complete" else 0)
            progress.update(bar, completed=percent, description=job["status"])
            if job["status"] in TERMINAL:
                return job
            time.sleep(interval)


@app.command()
def generate(
    prompt: str,
    api: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = "",
    model: Annotated[str | None, typer.Option(help="model id, see `reelay models`")] = None,
    duration: Annotated[int | None, typer.Option(help="seconds")] = None,
    resolution: Annotated[str | None, typer.Option(help="720p or 1080p")] = None,
    aspect_ratio: Annotated[
        str | None, typer.Option("--aspect-ratio", help="16:9, 9:16, ...")
    ] = None,
    wait: Annotated[bool, typer.Option(help="wait for the video and show progress")] = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="save the MP4 here")] = None,
    interval: Annotated[float, typer.Option(help="seconds between status checks")] = 1.0,
    as_json: AsJson = False,
) -> None:
    """Submit a prompt; with --wait, follow it to the end (and save it with -o).

    With --json, prints the accepted job (with --wait, the finished one) and nothing else on
    stdout."""
    body = {
        "prompt": prompt,
        "model": model,
        "duration_seconds": duration,
        "resolution": resolution,
        "aspect_ratio": aspect_ratio,
    }
    with Api(api, key, as_json=as_json) as http:
        notes = http.notes
        job = http.post(JOBS, {k: v for k, v in body.items() if v is not None})
        cost = usd(job["estimated_cost_usd"])
        notes.print(Text.assemble("job ", (job["id"], "bold"), f" accepted; estimated cost {cost}"))
        if wait or output:
            job = _wait(http, job["id"], interval, show=not as_json)
            if job["status"] == "complete" and output is not None:
                http.download(f"{JOBS}/{job['id']}/content", output)
        if as_json:
            emit_json(job)
        if not (wait or output):
            return
        if job["status"] != "complete":
            notes.print(Text.assemble((job["status"], "red"), f": {job.get('error_message', '')}"))
            raise typer.Exit(1)
        notes.print(Text.assemble(("complete", "green"), f"; cost {usd(job['perf']['cost_usd'])}"))
        if output is not None:
            notes.print(f"saved {output} ({output.stat().st_size} bytes)")
        elif not as_json:
            console.print(job["video_url"], soft_wrap=True)


@app.command()
def status(
    job_id: str, api: ApiUrl = DEFAULT_API_URL, key: ApiKey = "", as_json: AsJson = False
) -> None:
    """Show a job as its client sees it (its JSON); `reelay jobs show` is the operator's view."""
    with Api(api, key, as_json=as_json) as http:
        job = http.get(f"{JOBS}/{job_id}")
    if as_json:
        emit_json(job)
    else:
        console.print_json(data=job)


@app.command()
def cancel(
    job_id: str, api: ApiUrl = DEFAULT_API_URL, key: ApiKey = "", as_json: AsJson = False
) -> None:
    """Cancel a job."""
    with Api(api, key, as_json=as_json) as http:
        job = http.post(f"{JOBS}/{job_id}/cancel")
    if as_json:
        emit_json(job)
    else:
        console.print(Text.assemble("cancelling job ", (job_id, "bold"), f" (was {job['status']})"))


@app.command()
def models(api: ApiUrl = DEFAULT_API_URL, key: ApiKey = "", as_json: AsJson = False) -> None:
    """List the models with their limits and prices."""
    with Api(api, key, as_json=as_json) as http:
        body = http.get("/v1/models")
    if as_json:
        emit_json(body)
    else:
        console.print(models_table(body["data"]))


@app.command()
def account(api: ApiUrl = DEFAULT_API_URL, key: ApiKey = "", as_json: AsJson = False) -> None:
    """The tenant's balance, usage today (in all and by app) and limits."""
    with Api(api, key, as_json=as_json) as http:
        body = http.get("/v1/account")
    if as_json:
        emit_json(body)
    else:
        show_account(console, body)


@jobs.command("list")
def list_jobs(
    status: Annotated[
        str | None, typer.Option(help="pending, processing, complete, failed or cancelled")
    ] = None,
    model: Annotated[str | None, typer.Option(help="model id as requested")] = None,
    app_id: Annotated[str | None, typer.Option("--app-id", help="the job's app id")] = None,
    created_after: Annotated[
        str | None, typer.Option("--created-after", help="ISO 8601, e.g. 2026-12-01T09:00:00Z")
    ] = None,
    created_before: Annotated[
        str | None, typer.Option("--created-before", help="ISO 8601, e.g. 2026-12-01T10:00:00Z")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="jobs per page (the API's default: 20)")] = None,
    cursor: Annotated[str | None, typer.Option(help="`next_cursor` of the page before")] = None,
    all_pages: Annotated[
        bool, typer.Option("--all", help="follow `next_cursor` through every page")
    ] = False,
    api: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = "",
    as_json: AsJson = False,
) -> None:
    """The tenant's jobs, newest first, filtered as `GET /v1/video/generations` filters them.

    With --all, every page; its --json is one list in the API's shape with all the jobs."""
    filters = {
        "status": status,
        "model": model,
        "app_id": app_id,
        "created_after": created_after,
        "created_before": created_before,
        "limit": limit,
        "cursor": cursor,
    }
    params = {name: value for name, value in filters.items() if value is not None}
    with Api(api, key, as_json=as_json) as http:
        page = http.get(JOBS, params)
        found = list(page["data"])
        while all_pages and page["has_more"]:
            page = http.get(JOBS, {**params, "cursor": page["next_cursor"]})
            found += page["data"]
    listing = {**page, "data": found}
    if as_json:
        emit_json(listing)
        return
    console.print(job_table(found, console.width))
    if page["has_more"] and not all_pages:
        console.print(f"more: --cursor {page['next_cursor']} (or --all)", soft_wrap=True)


def history_url(temporal_ui: str, namespace: str, job_id: str) -> str:
    """The job's workflow in the Temporal Web UI (which opens its latest run)."""
    return (
        f"{temporal_ui.rstrip('/')}/namespaces/{quote(namespace, safe='')}"
        f"/workflows/{quote(job_id, safe='')}"
    )


@jobs.command("show")
def show(
    job_id: str,
    temporal_ui: TemporalUi = "http://127.0.0.1:8233",
    namespace: Namespace = "default",
    api: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = "",
    as_json: AsJson = False,
) -> None:
    """One job: status, progress, provider and its task, model used, cost, video URL, errors,
    webhook deliveries, and a link to its history in the Temporal Web UI."""
    with Api(api, key, as_json=as_json) as http:
        job = http.get(f"{JOBS}/{job_id}")
    if as_json:
        emit_json(job)
    else:
        show_job(console, job, history_url(temporal_ui, namespace, job["id"]))
