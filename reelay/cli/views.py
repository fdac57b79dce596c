"""Readable renderings of the API's JSON (the CLI's default; `--json` prints the JSON itself).

They read the native dialect's fields (`api.schemas`) and show "—" for what a job does not
have yet, so a job of any age or state renders."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

NONE = "—"
STATUS_STYLES = {
    "pending": "blue",
    "processing": "cyan",
    "complete": "green",
    "failed": "red",
    "cancelled": "yellow",
}


def usd(amount: float | None) -> str:
    """Dollars with cents, and the fractions of a cent the API has (it counts micro-dollars)."""
    if amount is None:
        return NONE
    whole, _, fraction = f"{amount:,.6f}".rstrip("0").partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def status_text(status: str) -> Text:
    return Text(status, style=f"bold {STATUS_STYLES.get(status, '')}".strip())


def _progress(job: dict[str, Any]) -> str:
    if job.get("queue_position") is not None:
        return f"queued, position {job['queue_position']}"
    if job.get("progress_percent") is None:
        return NONE
    eta = job.get("estimated_remaining_seconds")
    return f"{job['progress_percent']}%" + (f", about {eta} s left" if eta is not None else "")


def _shape(job: dict[str, Any]) -> str:
    return f"{job['duration_seconds']} s {job['resolution']} {job['aspect_ratio']}"


def _cost(job: dict[str, Any]) -> str:
    cost = job["perf"].get("cost_usd")
    if cost is not None:
        return usd(cost)
    return f"~{usd(job['estimated_cost_usd'])}"


def _plain_table(title: str) -> Table:
    """A table without borders: one space between columns, so more fits a terminal."""
    return Table(
        title=title,
        title_justify="left",
        box=None,
        pad_edge=False,
        collapse_padding=True,
        header_style="bold underline",
    )


def _status_cell(job: dict[str, Any]) -> Text:
    text = status_text(job["status"])
    if job.get("progress_percent") is not None and job["status"] == "processing":
        text.append(f" {job['progress_percent']}%")
    elif job.get("queue_position") is not None:
        text.append(f" #{job['queue_position']}")
    return text


def job_table(jobs: list[dict[str, Any]], width: int) -> Table:
    """One row a job in at most `width` columns. The id, status, model and cost are always
    there and whole (the id is what an operator copies into `jobs show`); the video's shape
    and the creation time only when they fit whole too."""
    columns: list[tuple[str, list[str | Text], dict[str, Any]]] = [
        ("id", [job["id"] for job in jobs], {"style": "bold"}),
        ("status", [_status_cell(job) for job in jobs], {}),
        ("model", [job["model"] for job in jobs], {}),
        ("cost", [_cost(job) for job in jobs], {"justify": "right"}),
        ("video", [_shape(job) for job in jobs], {}),
        ("created (UTC)", [job["created_at"][:19].replace("T", " ") for job in jobs], {}),
    ]
    table = _plain_table(f"{len(jobs)} job{'s' * (len(jobs) != 1)}")
    shown: list[list[str | Text]] = []
    used = 0
    for number, (header, cells, options) in enumerate(columns):
        need = max([len(header), *(len(cell) for cell in cells)])
        if number >= 4 and used + 1 + need > width:
            break
        used += need + (1 if used else 0)
        table.add_column(header, no_wrap=True, min_width=need, **options)
        shown.append(cells)
    for row in zip(*shown, strict=True):
        table.add_row(*row)
    return table


def _grid(rows: Iterable[tuple[str, str | Text]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def _webhooks(deliveries: list[dict[str, Any]]) -> Table:
    table = _plain_table("webhook deliveries")
    for column in ("event", "state", "attempts", "last status", "last error"):
        table.add_column(column)
    for delivery in deliveries:
        code = delivery.get("last_status_code")
        table.add_row(
            delivery["event"],
            delivery["state"],
            str(delivery["attempts"]),
            NONE if code is None else str(code),
            delivery.get("last_error") or NONE,
        )
    return table


def _other_dialect(job: dict[str, Any]) -> list[tuple[str, str | Text]]:
    """A job another dialect answers for (seed 001's operation): its fields as they are."""
    return [(key, str(value)) for key, value in job.items() if key not in ("id", "video_url")]


def show_job(console: Console, job: dict[str, Any], history_url: str) -> None:
    """A job's panel, its webhook deliveries, then its links on lines of their own (long
    URLs stay whole for copying)."""
    rows = _native(job) if "perf" in job else _other_dialect(job)
    console.print(Panel(_grid(rows), title=Text(job["id"], "bold"), title_align="left"))
    if job.get("webhooks"):
        console.print(_webhooks(job["webhooks"]))
    if job.get("video_url"):
        console.print(Text.assemble(("video URL  ", "bold cyan"), job["video_url"]), soft_wrap=True)
    console.print(Text.assemble(("history    ", "bold cyan"), history_url), soft_wrap=True)


def _native(job: dict[str, Any]) -> list[tuple[str, str | Text]]:
    perf = job["perf"]
    segments = job.get("segments")
    error = job.get("error_message")
    rows: list[tuple[str, str | Text]] = [
        ("status", status_text(job["status"])),
        ("progress", _progress(job)),
        ("model", job["model"]),
        ("model used", perf["model_used"]),
        ("provider", perf["provider"]),
        ("provider task", perf.get("provider_task_id") or NONE),
        ("request", perf["request_id"]),
        ("video", _shape(job)),
        ("prompt", job["prompt"]),
        ("created", job["created_at"]),
        ("estimated cost", usd(job["estimated_cost_usd"])),
        ("cost", usd(perf.get("cost_usd"))),
    ]
    if segments:
        rows.append(("segments", f"{segments['completed']} of {segments['total']} done"))
    if error:
        rows.append(("error", Text(f"{job.get('error_code') or 'error'}: {error}", "red")))
    return rows


def _usage(usage: dict[str, Any]) -> str:
    return f"{usage['jobs']} jobs, {usage['seconds_of_video']:g} s of video, {usd(usage['usd'])}"


def show_account(console: Console, account: dict[str, Any]) -> None:
    """The tenant's balance, usage and limits (the webhook secret only with `--json`)."""
    limits = account["limits"]
    rows: list[tuple[str, str | Text]] = [
        ("tier", account["tier"]),
        ("balance", usd(account["balance_usd"])),
        ("available", usd(account["available_usd"])),
        ("reserved", usd(account["reserved_usd"])),
        ("spent", usd(account["spent_usd"])),
        ("jobs", f"{account['running_jobs']} running, {account['queued_jobs']} queued"),
        ("limits", f"{limits['concurrent_jobs']} at once, {limits['jobs_per_day']} per day"),
        (f"today ({account['day']})", _usage(account["usage_today"])),
    ]
    title = Text.assemble("account ", (account["tenant_id"], "bold"))
    console.print(Panel(_grid(rows), title=title, title_align="left"))
    by_app = account["usage_today_by_app"]
    if by_app:
        table = _plain_table("usage today by app")
        table.add_column("app", style="bold")
        table.add_column("jobs", justify="right")
        table.add_column("seconds of video", justify="right")
        table.add_column("usd", justify="right")
        for app, usage in sorted(by_app.items()):
            table.add_row(
                app, str(usage["jobs"]), f"{usage['seconds_of_video']:g}", usd(usage["usd"])
            )
        console.print(table)


def models_table(models: list[dict[str, Any]]) -> Table:
    table = _plain_table("models")
    table.add_column("id", no_wrap=True, style="bold")
    table.add_column("vendor", no_wrap=True)
    table.add_column("longest", justify="right", no_wrap=True)
    table.add_column("price", justify="right", no_wrap=True)
    table.add_column("resolutions")
    table.add_column("aspect ratios")
    table.add_column("status", no_wrap=True)
    for model in models:
        table.add_row(
            model["id"],
            model["vendor"],
            f"{model['max_duration_seconds']} s",
            f"${model['price_usd_per_second']:g}/s",
            " ".join(model["resolutions"]),
            " ".join(model["aspect_ratios"]),
            Text(model["status"], "green" if model["status"] == "available" else "dim"),
        )
    return table
