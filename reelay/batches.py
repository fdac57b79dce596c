"""Batches: the types `BatchWorkflow`, its activities (`api.batches`) and the API share.

A batch is one JSONL file in S3, one submit request a line (OpenAI's batch line shape); every
valid line becomes one ordinary job, whose id is derived from the batch id and line number.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from reelay.jobs import micro_usd_to_usd

BATCH_ID_PREFIX = "batch_"
_BATCH_ID = re.compile(r"batch_[0-9a-f]{32}")
FILE_ID_PREFIX = "file-"
_FILE_ID = re.compile(r"file-[0-9a-f]{32}")

MAX_LINES = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_LINE_BYTES = 256 * 1024
MAX_CONCURRENCY = 500
DEFAULT_CONCURRENCY = 16
#: Lines validated / planned per activity call: bounds the activity's memory and each
#: result's size in history.
PAGE_LINES = 500
#: Lines planned ahead of the window (whole pages), so that lines of a provider with room
#: are found past those of a provider whose share of the window is full.
LOOKAHEAD_LINES = 2 * PAGE_LINES
#: Lines started by one run of the workflow before it continues as new, by default (each line
#: is about four events, plus workflow tasks; a run continues as new sooner when Temporal
#: suggests it, so it stays under Temporal's 10,000-event warning).
LINES_PER_RUN = 1_000


def new_batch_id() -> str:
    return BATCH_ID_PREFIX + uuid.uuid4().hex


def is_batch_id(batch_id: str) -> bool:
    return _BATCH_ID.fullmatch(batch_id) is not None


def new_file_id() -> str:
    return FILE_ID_PREFIX + uuid.uuid4().hex


def is_file_id(file_id: str) -> bool:
    return _FILE_ID.fullmatch(file_id) is not None


def line_idempotency_key(batch_id: str, line: int) -> str:
    """The Idempotency-Key a line's job is submitted under: a restarted batch, a retried
    activity or a re-sent file find the line's job instead of making a second one."""
    return f"batch:{batch_id}:{line}"


def custom_id_digest(custom_id: str) -> bytes:
    """What the validation keeps of a `custom_id` to find its duplicates: 16 bytes whatever
    its length (at most `MAX_LINES` of them, about 6 MB, in the validating activity)."""
    return hashlib.blake2b(custom_id.encode(), digest_size=16).digest()


class BatchStatus(StrEnum):
    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"

    @property
    def is_terminal(self) -> bool:
        return self in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED)


class BatchInput(BaseModel):
    """`BatchWorkflow`'s input (also what an operator gives `temporal workflow start`)."""

    tenant_id: str
    input_key: str = Field(description="the JSONL file's S3 key in the Reelay bucket")
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY)
    max_cost_usd: float | None = Field(default=None, ge=0)
    on_invalid_line: Literal["fail", "skip"] = "fail"
    webhook_url: str | None = None
    idempotency_hash: str | None = None
    lines_per_run: int = Field(
        default=LINES_PER_RUN,
        ge=1,
        le=LINES_PER_RUN,
        description="lines a run of the workflow starts before it continues as new",
    )
    state: BatchState | None = Field(default=None, description="carried over continue-as-new")


class BatchCounts(BaseModel):
    total: int = 0
    queued: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    invalid: int = 0


class BatchState(BaseModel):
    status: BatchStatus = BatchStatus.VALIDATING
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    lines: int = Field(default=0, description="lines in the file")
    invalid: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    cost_micro_usd: int = 0
    estimated_micro_usd: int = 0
    validated: bool = False
    offset: int = Field(default=0, description="byte offset of the next line to plan")
    next_line: int = 1
    eof: bool = False
    pause_reason: str | None = None
    paused_by_refusal: bool = False
    cancel_requested: bool = False
    cancel_running: bool = False
    error: str | None = None
    runs: int = 1
    events_sent: int = Field(default=0, description="webhook events started so far")
    announced: BatchStatus | None = Field(default=None, description="the last one sent")
    in_flight: list[LineRef] = Field(
        default_factory=list, description="lines running when the run continued as new"
    )
    pending: list[LineRef] = Field(
        default_factory=list, description="lines planned, not yet started, at that moment"
    )


class BatchView(BaseModel):
    """What the workflow's `view` query returns and the API renders."""

    batch_id: str
    tenant_id: str
    input_key: str
    status: BatchStatus
    request_counts: BatchCounts
    concurrency: int
    max_cost_usd: float | None
    on_invalid_line: str
    cost_micro_usd: int
    estimated_micro_usd: int
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    pause_reason: str | None = None
    error: str | None = None
    idempotency_hash: str | None = None


class Batch(BaseModel):
    """A batch as the API shows it (and its webhook events carry as `data`)."""

    id: str
    object: Literal["batch"] = "batch"
    status: BatchStatus
    input_file: str
    request_counts: BatchCounts
    concurrency: int
    max_cost_usd: float | None
    on_invalid_line: str
    cost_usd: float
    estimated_cost_usd: float
    eta_seconds: int | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    pause_reason: str | None = None
    error: str | None = None
    output_url: str
    errors_url: str


def _eta(view: BatchView, now: datetime) -> int | None:
    counts = view.request_counts
    done = counts.completed + counts.failed + counts.cancelled
    left = counts.queued + counts.running
    if view.status is not BatchStatus.IN_PROGRESS or not done or view.started_at is None:
        return None
    elapsed = (now - view.started_at).total_seconds()
    return round(elapsed / done * left)


def render(view: BatchView, now: datetime | None = None) -> Batch:
    """The view as the API shows it at `now` (default: the clock; workflow code passes
    `workflow.now()`)."""
    return Batch(
        id=view.batch_id,
        status=view.status,
        input_file=view.input_key,
        request_counts=view.request_counts,
        concurrency=view.concurrency,
        max_cost_usd=view.max_cost_usd,
        on_invalid_line=view.on_invalid_line,
        cost_usd=micro_usd_to_usd(view.cost_micro_usd),
        estimated_cost_usd=micro_usd_to_usd(view.estimated_micro_usd),
        eta_seconds=_eta(view, now or datetime.now(UTC)),
        created_at=view.created_at,
        started_at=view.started_at,
        completed_at=view.completed_at,
        pause_reason=view.pause_reason,
        error=view.error,
        output_url=f"/v1/batches/{view.batch_id}/output",
        errors_url=f"/v1/batches/{view.batch_id}/errors",
    )


class BatchNotice(BaseModel):
    """The batch's end, for its `webhook_url`."""

    url: str
    view: BatchView


class CancelRequest(BaseModel):
    cancel_running: bool = False


class PageRequest(BaseModel):
    batch_id: str
    tenant_id: str
    input_key: str
    offset: int
    first_line: int
    max_lines: int = PAGE_LINES


class ValidatedPage(BaseModel):
    lines: int
    invalid: int
    estimated_micro_usd: int
    next_offset: int
    eof: bool
    error: str | None = Field(default=None, description="the file as a whole is refused")


class LineRef(BaseModel):
    line: int
    offset: int
    length: int
    provider: str | None = Field(
        default=None, description="the provider of the line's first route (its window)"
    )
    attempt: int = Field(
        default=0, description="times the line was refused before (e.g. credits ran out)"
    )


class PlannedPage(BaseModel):
    lines: list[LineRef]
    next_offset: int
    next_line: int
    eof: bool


class FundsCheck(BaseModel):
    tenant_id: str
    estimated_micro_usd: int


class RunLine(BaseModel):
    batch_id: str
    tenant_id: str
    input_key: str
    ref: LineRef
    report: bool = Field(
        default=False,
        description="the line's activity reports the line's end to the batch itself "
        "(`line_done`); lines since `batch-lines-report-themselves`",
    )


LineStatus = Literal["completed", "failed", "cancelled", "refused"]


class LineOutcome(BaseModel):
    """One line's end (`refused`: not admitted for now, e.g. credits ran out; the batch
    pauses and the line is tried again on resume)."""

    line: int
    status: LineStatus
    job_id: str | None = None
    cost_micro_usd: int = 0
    error_code: str | None = None
    error_message: str | None = None


class LineDone(BaseModel):
    """A line's workflow telling its batch the line ended (the batch's `line_done` signal)."""

    ref: LineRef
    outcome: LineOutcome


BatchInput.model_rebuild()
BatchState.model_rebuild()
