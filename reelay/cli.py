"""`reelay`: submit a prompt, watch it, save the MP4. Talks to the API like any client."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(help="Reelay command line: generate videos through a Reelay API.")
console = Console()

ApiUrl = Annotated[str, typer.Option("--api", envvar="REELAY_API_URL", help="Reelay API base URL")]
ApiKey = Annotated[
    str,
    typer.Option("--key", envvar=["REELAY_API_KEY", "REELAY_DEV_API_KEY"], help="API key"),
]
TERMINAL = {"complete", "failed", "cancelled"}


def _client(api: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=api.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.is_success:
        body: dict[str, Any] = response.json()
        return body
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text
    console.print(f"[red]error {response.status_code}:[/red] {message}")
    raise typer.Exit(1)


def _wait(http: httpx.Client, job_id: str, interval: float) -> dict[str, Any]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("pending", total=100)
        while True:
            job = _check(http.get(f"/v1/video/generations/{job_id}"))
            percent = job.get("progress_percent") or (100 if job["status"] == "complete" else 0)
            progress.update(bar, completed=percent, description=job["status"])
            if job["status"] in TERMINAL:
                return job
            time.sleep(interval)


@app.command()
def generate(
    prompt: str,
    api: ApiUrl = "http://127.0.0.1:8000",
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
) -> None:
    """Submit a prompt; with --wait, follow it to the end (and save it with -o)."""
    body = {
        "prompt": prompt,
        "model": model,
        "duration_seconds": duration,
        "resolution": resolution,
        "aspect_ratio": aspect_ratio,
    }
    with _client(api, key) as http:
        job = _check(
            http.post(
                "/v1/video/generations", json={k: v for k, v in body.items() if v is not None}
            )
        )
        cost = job["estimated_cost_usd"]
        console.print(f"job [bold]{job['id']}[/bold] accepted; estimated cost ${cost:.2f}")
        if not (wait or output):
            return
        job = _wait(http, job["id"], interval)
        if job["status"] != "complete":
            console.print(f"[red]{job['status']}[/red]: {job.get('error_message', '')}")
            raise typer.Exit(1)
        console.print(f"[green]complete[/green]; cost ${job['perf']['cost_usd']:.2f}")
        if output is not None:
            with http.stream("GET", f"/v1/video/generations/{job['id']}/content") as stream:
                stream.raise_for_status()
                with output.open("wb") as out:
                    for chunk in stream.iter_bytes():
                        out.write(chunk)
            console.print(f"saved {output} ({output.stat().st_size} bytes)")
        else:
            console.print(job["video_url"])


@app.command()
def status(job_id: str, api: ApiUrl = "http://127.0.0.1:8000", key: ApiKey = "") -> None:
    """Show a job's status."""
    with _client(api, key) as http:
        console.print_json(data=_check(http.get(f"/v1/video/generations/{job_id}")))


@app.command()
def cancel(job_id: str, api: ApiUrl = "http://127.0.0.1:8000", key: ApiKey = "") -> None:
    """Cancel a job."""
    with _client(api, key) as http:
        console.print_json(data=_check(http.post(f"/v1/video/generations/{job_id}/cancel")))


@app.command()
def models(api: ApiUrl = "http://127.0.0.1:8000", key: ApiKey = "") -> None:
    """List the models with their limits and prices."""
    with _client(api, key) as http:
        for model in _check(http.get("/v1/models"))["data"]:
            console.print(
                f"[bold]{model['id']:<22}[/bold] up to {model['max_duration_seconds']:>3} s  "
                f"${model['price_usd_per_second']}/s  {', '.join(model['aspect_ratios'])}"
            )
