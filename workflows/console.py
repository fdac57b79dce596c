"""What operators read in the Temporal Web UI: the summaries and details Reelay's workflows
and activities carry (Temporal's user metadata, rendered as Temporal markdown).

Pure and deterministic (no I/O, no clock), so workflow code and the API use the same
renderings. Nothing secret or signed is ever rendered: webhook and callback URLs show their
host only, a URL inside free text (a prompt, an error) loses its path and query, source
images are named, never linked, and prompts are cut to an excerpt. Every string fits
`SUMMARY_MAX_BYTES` / `DETAILS_MAX_BYTES`.

A run that continues as new loses its static summary and details (Temporal does not carry
them over, and the SDK's `continue_as_new` cannot set them), so current details also say
what the workflow is.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from reelay.batches import BatchInput, BatchView
from reelay.jobs import JobSpec, JobView, Route, micro_usd_to_usd
from reelay.webhooks import WebhookDelivery, WebhookDeliveryStatus

#: The bounds Reelay keeps, so that no server's limit on user metadata can refuse a start (a
#: summary is one short line; the dev server, measured, accepted 100 KB of details).
SUMMARY_MAX_BYTES = 400
DETAILS_MAX_BYTES = 20_000
#: Characters of a prompt shown in details, and in a one-line summary.
PROMPT_EXCERPT = 80
SUMMARY_PROMPT_EXCERPT = 40
#: Characters of a provider task id shown in an activity summary.
TASK_ID_EXCERPT = 12

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>`]+")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#!|~])")
_SPACE = re.compile(r"\s+")
_UNSAFE_ID = re.compile(r"[^\w.:/@+-]")


# Jobs ---------------------------------------------------------------------------------


def job_summary(job: JobSpec, *, segments_total: int | None = None) -> str:
    """One line for the workflow list: what is made, for whom, from which prompt.

    A chain segment (`job.segment` set) leads with its place, `segment 2 of 4 of job_x`;
    pass `segments_total` (the chain's `len(segments)`), which a segment's spec lacks.
    """
    parts = [_made(job)]
    if job.segment is not None:
        parts.insert(0, _segment_place(job, segments_total))
    elif job.segments:
        parts.append(f"{len(job.segments)} segments")
    parts.append(_who(job))
    parts.append(_quote(job.prompt, SUMMARY_PROMPT_EXCERPT))
    return _fit(" · ".join(parts), SUMMARY_MAX_BYTES)


def job_details(job: JobSpec, *, segments_total: int | None = None) -> str:
    """The job's page: the request as validated, the routes, the estimate (markdown)."""
    lines = [
        f"**{_made(job)}**"
        + (f" (asked as {_code(job.requested_model)})" if job.requested_model != job.model else "")
    ]
    if job.segment is not None:
        lines.append(f"- {_segment_place(job, segments_total)}")
        if job.continue_from:
            lines.append(f"- continues provider task {_code(_task_label(job.continue_from))}")
    elif job.segments:
        clips = " + ".join(f"{seconds} s" for seconds in job.segments)
        lines.append(f"- chain of {len(job.segments)} segments: {clips}")
    lines.append(
        f"- tenant {_code(job.tenant_id)}, app {_code(job.app_id) if job.app_id else 'none'}, "
        f"dialect {_code(job.dialect)}"
    )
    if job.batch_id:
        lines.append(f"- line of batch {_code(job.batch_id)}")
    lines.append(f"- prompt: {_quote(job.prompt, PROMPT_EXCERPT)}")
    if job.negative_prompt:
        lines.append(f"- negative prompt: {_quote(job.negative_prompt, PROMPT_EXCERPT)}")
    extras = [
        name
        for name, on in (
            ("audio", job.audio),
            ("prompt enhancement", job.enhance_prompt),
            ("from a source image", job.image is not None),
        )
        if on
    ]
    if job.seed is not None:
        extras.append(f"seed {job.seed}")
    if extras:
        lines.append(f"- {', '.join(extras)}")
    lines.append("- routes, in failover order: " + "; ".join(_route(r) for r in job.routes))
    if job.webhook is not None:
        events = ", ".join(_text(event, 20) for event in job.webhook.events)
        lines.append(f"- webhook to {_host(job.webhook.url)}: {events}")
    estimate = micro_usd_to_usd(job.estimated_cost_micro_usd)
    price = micro_usd_to_usd(job.price_micro_usd_per_second)
    lines.append(
        f"- estimate ${estimate:.2f} (${price:.4g}/s), deadline {job.deadline_seconds // 60} min"
        + (", queued for a slot" if job.queued else "")
    )
    lines.append(f"- request {_code(job.request_id)}, created {_when(job.created_at)}")
    return _fit("\n".join(lines), DETAILS_MAX_BYTES)


def job_current_details(view: JobView, *, next_poll_at: datetime | None) -> str:
    """The running job's line (Temporal's current details): state, progress, who makes it,
    its provider task, the next poll and the ETA."""
    head = f"**{view.status.value}** {round(view.progress * 100)} %"
    lines = [f"{head} · {_code(view.provider)} {_code(view.model_used)}"]
    if view.queue_position is not None:
        lines.append(f"- position {view.queue_position} in the tenant's queue")
    if view.segments_total:
        lines.append(f"- segments {view.segments_done} of {view.segments_total} made")
    if view.provider_task_id:
        lines.append(f"- provider task {_code(_task_label(view.provider_task_id))}")
    timing = []
    if next_poll_at is not None:
        timing.append(f"next poll {_when(next_poll_at)}")
    if view.eta_seconds is not None and not view.status.is_terminal:
        timing.append(f"ETA ~{view.eta_seconds:.0f} s")
    if timing:
        lines.append("- " + ", ".join(timing))
    if view.video is not None:
        video = view.video
        lines.append(
            f"- video {video.duration_seconds:.1f} s {video.width}x{video.height}, "
            f"sha256 {_code(video.sha256[:12])}…"
        )
    if view.cost_micro_usd is not None:
        lines.append(f"- cost ${micro_usd_to_usd(view.cost_micro_usd):.2f}")
    if view.error is not None:
        lines.append(f"- error {_code(view.error.code)}: {_text(view.error.message, 300)}")
    lines.append(
        f"- {_plain(view.model)} {view.duration_seconds} s {_plain(view.resolution)} for tenant "
        f"{_plain(view.tenant_id)}"
    )
    return _fit("\n".join(lines), DETAILS_MAX_BYTES)


# Job activities -------------------------------------------------------------------------


def validate_summary(job: JobSpec) -> str:
    return _fit(f"validate {_made(job)}", SUMMARY_MAX_BYTES)


def submit_summary(route: Route) -> str:
    """`submit to gemini veo-3.0-generate-001`."""
    return _fit(
        f"submit to {_plain(route.adapter)} {_plain(route.upstream_model)}", SUMMARY_MAX_BYTES
    )


def poll_summary(route: Route, task_id: str) -> str:
    """`poll runway task 3f9a0c1e-7b2…`."""
    return _fit(f"poll {_plain(route.adapter)} task {_task_excerpt(task_id)}", SUMMARY_MAX_BYTES)


def cancel_summary(route: Route, task_id: str) -> str:
    return _fit(f"cancel {_plain(route.adapter)} task {_task_excerpt(task_id)}", SUMMARY_MAX_BYTES)


def store_summary(job: JobSpec, route: Route) -> str:
    """`store 8.0 s 1080p`, and what it is trimmed from when the route made a longer clip."""
    text = f"store {job.duration_seconds:.1f} s {_plain(job.resolution)}"
    if (route.clip_seconds or 0) > job.duration_seconds:
        text += f" (trimmed from {route.clip_seconds} s)"
    return _fit(text, SUMMARY_MAX_BYTES)


def stitch_summary(job: JobSpec) -> str:
    """`stitch 4 segments into 32.0 s 1080p`."""
    return _fit(
        f"stitch {len(job.segments)} segments into {job.duration_seconds:.1f} s "
        f"{_plain(job.resolution)}",
        SUMMARY_MAX_BYTES,
    )


def settle_summary(job_id: str, cost_micro_usd: int) -> str:
    """`settle job_x at $0.80`."""
    return _fit(
        f"settle {_plain(job_id)} at ${micro_usd_to_usd(cost_micro_usd):.2f}", SUMMARY_MAX_BYTES
    )


# Batches --------------------------------------------------------------------------------


def batch_summary(batch: BatchInput) -> str:
    """`batch of uploads/x.jsonl (1200 lines) · tenant acme · 16 at once · max $50.00`."""
    parts = [f"batch of {_file(batch)}", f"tenant {_plain(batch.tenant_id)}"]
    parts.append(f"{batch.concurrency} at once")
    if batch.max_cost_usd is not None:
        parts.append(f"max ${batch.max_cost_usd:.2f}")
    return _fit(" · ".join(parts), SUMMARY_MAX_BYTES)


def batch_details(batch: BatchInput) -> str:
    lines = [
        f"**batch of {_file(batch)}**",
        f"- tenant {_code(batch.tenant_id)}",
        f"- up to {batch.concurrency} lines running at once per provider",
        "- max cost "
        + (f"${batch.max_cost_usd:.2f}" if batch.max_cost_usd is not None else "none")
        + " (the estimate is checked before any line starts)",
        "- an invalid line "
        + ("fails the batch" if batch.on_invalid_line == "fail" else "is skipped"),
    ]
    if batch.webhook_url:
        lines.append(f"- end reported to {_host(batch.webhook_url)}")
    if batch.state is not None and batch.state.runs > 1:
        lines.append(f"- run {batch.state.runs} (continued as new)")
    return _fit("\n".join(lines), DETAILS_MAX_BYTES)


def batch_current_details(view: BatchView) -> str:
    """Status and counts of a running batch, and what it is (its runs after the first have
    no static summary)."""
    counts = view.request_counts
    what = f"batch of {_code(view.input_key)} · {view.concurrency} at once"
    if view.max_cost_usd is not None:
        what += f" · max ${view.max_cost_usd:.2f}"
    lines = [f"**{view.status.value}** · {counts.total} lines · {what}"]
    lines.append(
        f"- {counts.completed} completed, {counts.failed} failed, {counts.cancelled} cancelled, "
        f"{counts.running} running, {counts.queued} queued, {counts.invalid} invalid"
    )
    lines.append(
        f"- cost ${micro_usd_to_usd(view.cost_micro_usd):.2f} of an estimated "
        f"${micro_usd_to_usd(view.estimated_micro_usd):.2f}"
    )
    if view.pause_reason:
        lines.append(f"- paused: {_text(view.pause_reason, 300)}")
    if view.error:
        lines.append(f"- error: {_text(view.error, 300)}")
    return _fit("\n".join(lines), DETAILS_MAX_BYTES)


def batch_page_summary(verb: str, first_line: int, max_lines: int | None) -> str:
    """`validate lines 1-500`, `plan lines 501-1000`; `validate every line` (`max_lines` None:
    the whole file in one call)."""
    if max_lines is None:
        return _fit(f"{_plain(verb)} every line", SUMMARY_MAX_BYTES)
    return _fit(
        f"{_plain(verb)} lines {first_line}-{first_line + max_lines - 1}", SUMMARY_MAX_BYTES
    )


def batch_line_summary(line: int, job_id: str) -> str:
    """`run line 17 as job_vid_…`."""
    return _fit(f"run line {line} as {_plain(job_id)}", SUMMARY_MAX_BYTES)


def batch_funds_summary(estimated_micro_usd: int) -> str:
    return _fit(f"check funds for ${micro_usd_to_usd(estimated_micro_usd):.2f}", SUMMARY_MAX_BYTES)


def batch_notify_summary(url: str, view: BatchView) -> str:
    return _fit(f"notify {_host(url)}: batch {view.status.value}", SUMMARY_MAX_BYTES)


# Webhook deliveries ---------------------------------------------------------------------


def webhook_summary(delivery: WebhookDelivery) -> str:
    """`video.completed of job_x to hooks.example.com`."""
    return _fit(
        f"{_event(delivery)} of {_plain(delivery.job_id)} to {_host(delivery.url)}",
        SUMMARY_MAX_BYTES,
    )


def webhook_details(delivery: WebhookDelivery) -> str:
    lines = [
        f"**{_event(delivery)}** of job {_code(delivery.job_id)} to {_host(delivery.url)}",
        f"- tenant {_code(delivery.tenant_id)}, `webhook-id` {_code(delivery.message_id)}",
        f"- retried from {delivery.first_retry_seconds:g} s, doubling up to "
        f"{delivery.max_retry_seconds:g} s, for {delivery.give_up_after_seconds / 3600:g} h",
    ]
    return _fit("\n".join(lines), DETAILS_MAX_BYTES)


def webhook_current_details(status: WebhookDeliveryStatus) -> str:
    lines = [f"**{status.state}** after {status.attempts} attempt(s)"]
    if status.last_status_code is not None:
        lines.append(f"- last answer HTTP {status.last_status_code}")
    if status.last_error:
        lines.append(f"- last error: {_text(status.last_error, 300)}")
    if status.next_attempt_at is not None:
        lines.append(f"- next attempt {_when(status.next_attempt_at)}")
    if status.delivered_at is not None:
        lines.append(f"- delivered {_when(status.delivered_at)}")
    return _fit("\n".join(lines), DETAILS_MAX_BYTES)


def webhook_attempt_summary(delivery: WebhookDelivery, attempt: int) -> str:
    """`deliver video.completed to hooks.example.com (attempt 2)`."""
    return _fit(
        f"deliver {_event(delivery)} to {_host(delivery.url)} (attempt {attempt})",
        SUMMARY_MAX_BYTES,
    )


# The legacy account workflow ------------------------------------------------------------


def account_details(tenant_id: str, opening_balance_micro_usd: int) -> str:
    """The legacy account's current details (nothing starts one any more, so it has no static
    summary to set)."""
    lines = [
        f"**account of tenant {_code(tenant_id)}** (legacy `AccountWorkflow`)",
        f"- opening balance ${micro_usd_to_usd(opening_balance_micro_usd):.2f}",
        "- no longer started: jobs are admitted and settled in the ledger store; this run "
        "serves the jobs still settling with it",
    ]
    return _fit("\n".join(lines), DETAILS_MAX_BYTES)


# Rendering ------------------------------------------------------------------------------


def _made(job: JobSpec) -> str:
    audio = " with audio" if job.audio else ""
    return (
        f"{_plain(job.model)} {job.duration_seconds} s {_plain(job.resolution)} "
        f"{_plain(job.aspect_ratio)}{audio}"
    )


def _who(job: JobSpec) -> str:
    who = f"tenant {_plain(job.tenant_id)}"
    if job.app_id:
        who += f" app {_plain(job.app_id)}"
    if job.dialect != "native":
        who += f" ({_plain(job.dialect)})"
    if job.batch_id:
        who += f" batch {_plain(job.batch_id)}"
    return who


def _segment_place(job: JobSpec, total: int | None) -> str:
    assert job.segment is not None
    of = f" of {total}" if total else ""
    return f"segment {job.segment.index + 1}{of} of {_plain(job.segment.parent_id)}"


def _route(route: Route) -> str:
    text = f"{_plain(route.adapter)} {_code(route.upstream_model)}"
    if route.clip_seconds:
        text += f" (makes {route.clip_seconds} s, trimmed)"
    if route.continuation is not None:
        text += f" (continues by {route.continuation.value})"
    return text


def _file(batch: BatchInput) -> str:
    name = _code(batch.input_key)
    if batch.state is not None and batch.state.lines:
        name += f" ({batch.state.lines} lines)"
    return name


def _event(delivery: WebhookDelivery) -> str:
    suffix = f" #{delivery.sequence}" if delivery.sequence is not None else ""
    return f"video.{delivery.event}{suffix}"


def _host(url: str) -> str:
    """A URL as its host only (its path and query may carry tokens)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    return _code(host) if host else "an unparsable URL"


def _task_label(task_id: str) -> str:
    """A provider task id as an operator can look it up: an opaque JSON handle (fal's,
    which holds request URLs) shows its id only; URLs lose their path and query."""
    if task_id.startswith("{"):
        try:
            handle = json.loads(task_id)
        except ValueError:
            handle = None
        if isinstance(handle, dict):
            for key in ("request_id", "id", "name"):
                if isinstance(handle.get(key), str):
                    return _redact(handle[key])[:200]
        return "an opaque handle"
    return _redact(task_id)[:200]


def _task_excerpt(task_id: str) -> str:
    label = _plain(_task_label(task_id))
    return label if len(label) <= TASK_ID_EXCERPT else label[:TASK_ID_EXCERPT] + "…"


def _redact(text: str) -> str:
    """URLs in free text cut to scheme and host: a signed URL's query is its secret."""

    def host_only(match: re.Match[str]) -> str:
        try:
            parts = urlsplit(match.group(0))
            host = parts.hostname
        except ValueError:
            return "<url>"
        return f"{parts.scheme}://{host}/…" if host else "<url>"

    return _URL.sub(host_only, text)


def _text(text: str, limit: int) -> str:
    """User or upstream text on one line, URLs redacted, markdown escaped, at most `limit`
    characters (before escaping)."""
    flat = _SPACE.sub(" ", _redact(text)).strip()
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return _MARKDOWN.sub(r"\\\1", flat)


def _quote(text: str, limit: int) -> str:
    return f"“{_text(text, limit)}”"


def _plain(value: str) -> str:
    """An identifier (model, tenant, job id) safe in one markdown line: no character that
    could start a link, an image or HTML."""
    return _UNSAFE_ID.sub("?", _redact(value))[:120]


def _code(value: str) -> str:
    """An identifier as inline code (backticks cannot close it early)."""
    flat = _SPACE.sub(" ", _redact(value)).replace("`", "'").strip()
    return f"`{flat[:120]}`"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fit(text: str, max_bytes: int) -> str:
    """`text` cut to `max_bytes` of UTF-8 (on a character boundary), marked with `…`."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    ellipsis = "…".encode()
    return data[: max_bytes - len(ellipsis)].decode(errors="ignore") + "…"
