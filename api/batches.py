"""Batches at the API level: a line parsed by its route's dialect, the activities
`BatchWorkflow` runs (wired by `worker.py`; activities may not import `api`), and reading,
starting and listing batches for the router.

A line is OpenAI's batch line: `{"custom_id", "method": "POST", "url", "body"}`, `url` one of
`api.dialects.registry.SUBMIT_ROUTES` and `body` exactly what that route takes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Generator, Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

import structlog
from minio import Minio
from minio.error import S3Error
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowQueryFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import accounts, jobs
from api.dialects.admission import admit
from api.dialects.native.shapes import render as render_native
from api.dialects.registry import SUBMIT_ROUTES, parse_submission
from api.dialects.submission import Submission
from api.problem import APIError, not_found, unavailable
from providers.catalog import CatalogError
from reelay.batches import (
    MAX_FILE_BYTES,
    MAX_LINE_BYTES,
    MAX_LINES,
    PAGE_LINES,
    BatchCounts,
    BatchInput,
    BatchNotice,
    BatchStatus,
    BatchView,
    FundsCheck,
    LineDone,
    LineOutcome,
    LineRef,
    PageRequest,
    PlannedPage,
    RunLine,
    ValidatedPage,
    custom_id_digest,
    is_batch_id,
    line_idempotency_key,
    render,
)
from reelay.errors import ErrorCode
from reelay.jobs import JobStatus, JobView, micro_usd_to_usd, quoted_cost_micro_usd
from reelay.media import InvalidMediaError
from reelay.settings import Settings
from reelay.ssrf import UnsafeURLError, check_url, pinned_stream
from reelay.storage import batch_errors_key, batch_output_key, batch_prefix
from reelay.tenants import Tenant, TenantDirectory
from reelay.webhooks import encode_body, signed_headers, tenant_secret
from workflows import console, search_attributes
from workflows.batch import LINE_DONE_SIGNAL, BatchWorkflow, for_new_batch
from workflows.video_generation import VideoGenerationWorkflow

log = structlog.get_logger()

QUERY_TIMEOUT = timedelta(seconds=5)
RETRY_QUERY_TIMEOUT = timedelta(seconds=20)
# Admission refusals that pause the batch (the line is tried again on resume), and those
# that are worth a retry of the activity as they are.
_PAUSING = frozenset({ErrorCode.INSUFFICIENT_CREDITS, ErrorCode.DAILY_QUOTA_EXCEEDED})
_RETRYING = frozenset({ErrorCode.QUEUE_FULL, ErrorCode.SERVICE_UNAVAILABLE})
#: A line's job admitted but not yet started is looked for again after this, then twice as
#: long each time up to the most (its start lands within milliseconds, or the sweeper's
#: within seconds); before, the line's activity failed and was retried a second later.
START_WAIT_FIRST_SECONDS = 0.02
START_WAIT_MAX_SECONDS = 2.0


class LineError(BaseModel):
    """One invalid line, as the errors file lists it."""

    line: int
    custom_id: str | None = None
    code: str
    message: str
    param: str | None = None


class ParsedLine(BaseModel):
    custom_id: str
    url: str
    submission: Submission


def parse_line(raw: bytes) -> ParsedLine:
    """One JSONL line, its body parsed by the dialect of its `url`; `APIError` otherwise."""
    if len(raw) > MAX_LINE_BYTES:
        raise APIError(
            ErrorCode.INVALID_REQUEST, f"line is over {MAX_LINE_BYTES // 1024} KB", param="body"
        )
    try:
        line = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(ErrorCode.INVALID_REQUEST, f"line is not valid JSON: {exc}") from None
    if not isinstance(line, dict):
        raise APIError(ErrorCode.INVALID_REQUEST, "line must be a JSON object")
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
        raise APIError(
            ErrorCode.INVALID_REQUEST,
            "custom_id is required: a string of 1 to 512 characters",
            param="custom_id",
        )
    if line.get("method", "POST") != "POST":
        raise APIError(ErrorCode.INVALID_REQUEST, "method must be POST", param="method")
    url = line.get("url")
    if url not in SUBMIT_ROUTES:
        raise APIError(
            ErrorCode.INVALID_REQUEST,
            f"url must be one of {', '.join(SUBMIT_ROUTES)}",
            param="url",
        )
    body = line.get("body")
    if not isinstance(body, dict):
        raise APIError(ErrorCode.INVALID_REQUEST, "body must be a JSON object", param="body")
    try:
        submission = parse_submission(url, body)
    except CatalogError as exc:
        raise APIError(ErrorCode.INVALID_REQUEST, exc.message, param=exc.field) from None
    return ParsedLine(custom_id=custom_id, url=url, submission=submission)


def _custom_id_of(raw: bytes) -> str | None:
    try:
        found = json.loads(raw).get("custom_id")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def _lines(s3: Minio, bucket: str, key: str, offset: int) -> Iterator[tuple[int, int, bytes]]:
    """(offset, length, line) from `offset` on, streamed (never the whole file); a line over
    `MAX_LINE_BYTES` comes cut to its first `MAX_LINE_BYTES + 1` bytes (its length is whole)."""
    try:
        response = s3.get_object(bucket, key, offset=offset)
    except S3Error as exc:
        if exc.code == "InvalidRange":  # `offset` is the end: a file of whole pages
            return
        raise
    try:
        kept = bytearray()
        start, length = offset, 0
        for chunk in response.stream(256 * 1024):
            view = memoryview(chunk)
            while view:
                end = chunk.find(b"\n", len(chunk) - len(view))
                piece = view if end < 0 else view[: end - (len(chunk) - len(view))]
                if len(kept) <= MAX_LINE_BYTES:
                    kept += piece[: MAX_LINE_BYTES + 1 - len(kept)]
                length += len(piece)
                if end < 0:
                    break
                yield start, length, bytes(kept)
                start, length = start + length + 1, 0
                kept.clear()
                view = view[len(piece) + 1 :]
        if length:
            yield start, length, bytes(kept)
    finally:
        response.close()
        response.release_conn()


def _page(s3: Minio, bucket: str, request: PageRequest) -> Generator[tuple[int, int, int, bytes]]:
    """(line number, offset, length, line) for one page."""
    number = request.first_line
    for offset, length, raw in _lines(s3, bucket, request.input_key, request.offset):
        if number >= request.first_line + request.max_lines:
            return
        yield number, offset, length, raw
        number += 1


def _end_of(page: list[tuple[int, int, int, bytes]], request: PageRequest) -> tuple[int, bool]:
    """The next page's offset, and whether the file ended in this page."""
    if not page:
        return request.offset, True
    _, offset, length, _ = page[-1]
    return offset + length + 1, len(page) < request.max_lines


def _refused(error: str) -> ValidatedPage:
    """The file as a whole cannot run: the batch fails with `error`."""
    return ValidatedPage(
        lines=0, invalid=0, estimated_micro_usd=0, next_offset=0, eof=True, error=error
    )


class BatchActivities:
    """The activities of `BatchWorkflow`. A line is admitted through `api.jobs.start_job`
    (via the dialect's own `admit`), exactly as the API admits a request."""

    def __init__(
        self, client: Client, settings: Settings, s3: Minio, tenants: TenantDirectory
    ) -> None:
        self._client = client
        self._settings = settings
        self._s3 = s3
        self._tenants = tenants

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise RuntimeError(f"tenant {tenant_id} is not in the tenants file")
        return tenant

    @activity.defn(name="batch_validate_page")
    async def validate_page(self, request: PageRequest) -> ValidatedPage:
        """Up to `max_lines` lines from `offset`, a page of `PAGE_LINES` at a time (each
        page's invalid lines one errors object, a heartbeat between pages). A `custom_id`
        used by an earlier line of the call is an invalid line: the workflow validates the
        whole file in one call, so the digests of every `custom_id` (16 bytes each, at most
        `MAX_LINES`) are all the state it needs to find every duplicate."""
        refused = await asyncio.to_thread(self._refusal, request)
        if refused is not None:
            return refused
        lines = await asyncio.to_thread(_page, self._s3, self._settings.s3_bucket, request)
        seen: dict[bytes, int] = {}
        total = ValidatedPage(
            lines=0, invalid=0, estimated_micro_usd=0, next_offset=request.offset, eof=False
        )
        first = request.first_line
        while True:
            chunk = await asyncio.to_thread(lambda: list(itertools.islice(lines, PAGE_LINES)))
            if chunk:
                invalid, estimate = await asyncio.to_thread(
                    self._validate_chunk, request.batch_id, first, chunk, seen
                )
                total.lines += len(chunk)
                total.invalid += invalid
                total.estimated_micro_usd += estimate
                _, offset, length, _ = chunk[-1]
                total.next_offset = offset + length + 1
                first += len(chunk)
                activity.heartbeat(total.lines)
            if len(chunk) < PAGE_LINES or total.lines >= request.max_lines:
                total.eof = total.lines < request.max_lines
                break
        await asyncio.to_thread(lines.close)
        if request.first_line + total.lines - 1 > MAX_LINES:
            total.error = f"input file has more than {MAX_LINES} lines"
        return total

    def _refusal(self, request: PageRequest) -> ValidatedPage | None:
        """Why the file as a whole cannot run, if it cannot."""
        if self._tenants.get(request.tenant_id) is None:
            return _refused(f"tenant {request.tenant_id} is not in the tenants file")
        try:
            size = self._s3.stat_object(self._settings.s3_bucket, request.input_key).size or 0
        except S3Error as exc:
            if exc.code != "NoSuchKey":
                raise
            return _refused(f"input file {request.input_key} not found")
        if size > MAX_FILE_BYTES:
            return _refused(f"input file is over {MAX_FILE_BYTES // 2**20} MB")
        return None

    def _validate_chunk(
        self,
        batch_id: str,
        first_line: int,
        chunk: list[tuple[int, int, int, bytes]],
        seen: dict[bytes, int],
    ) -> tuple[int, int]:
        """One page's lines checked (invalid ones written to its errors object); how many
        were invalid, and the estimate of the valid ones."""
        errors: list[LineError] = []
        estimate = 0
        for number, _, _, raw in chunk:
            if not raw.strip():
                errors.append(LineError(line=number, code="invalid_request", message="empty line"))
                continue
            custom_id = _custom_id_of(raw)
            if custom_id is not None:
                earlier = seen.setdefault(custom_id_digest(custom_id), number)
                if earlier != number:
                    errors.append(
                        LineError(
                            line=number,
                            custom_id=custom_id,
                            code=ErrorCode.INVALID_REQUEST.value,
                            message=f"custom_id {custom_id!r} is already used by line {earlier}",
                            param="custom_id",
                        )
                    )
                    continue
            try:
                parsed = parse_line(raw)
            except APIError as exc:
                errors.append(
                    LineError(
                        line=number,
                        custom_id=custom_id,
                        code=exc.error_type,
                        message=exc.message,
                        param=exc.param,
                    )
                )
                continue
            resolved = parsed.submission.resolved
            estimate += quoted_cost_micro_usd(
                resolved.price_micro_usd_per_second, resolved.duration_seconds
            )
        if errors:
            body = "".join(error.model_dump_json(exclude_none=True) + "\n" for error in errors)
            self._put(batch_errors_key(batch_id, first_line), body.encode())
        return len(errors), estimate

    @activity.defn(name="batch_plan_page")
    async def plan_page(self, request: PageRequest) -> PlannedPage:
        return await asyncio.to_thread(self._plan_page, request)

    def _plan_page(self, request: PageRequest) -> PlannedPage:
        """The page's valid lines, each with its provider. Invalid are the lines the errors
        object of the page names (planned pages start where validated ones do: at line 1,
        `PAGE_LINES` a page)."""
        bucket = self._settings.s3_bucket
        page = list(_page(self._s3, bucket, request))
        invalid = self._invalid_lines(request.batch_id, request.first_line)
        refs = []
        for number, offset, length, raw in page:
            if number in invalid:
                continue
            try:
                parsed = parse_line(raw)
            except APIError:
                continue
            provider = parsed.submission.resolved.routes[0].adapter
            refs.append(LineRef(line=number, offset=offset, length=length, provider=provider))
        next_offset, eof = _end_of(page, request)
        return PlannedPage(
            lines=refs, next_offset=next_offset, next_line=request.first_line + len(page), eof=eof
        )

    def _invalid_lines(self, batch_id: str, first_line: int) -> set[int]:
        try:
            data = _get_object(
                self._s3, self._settings.s3_bucket, batch_errors_key(batch_id, first_line)
            )
        except S3Error as exc:
            if exc.code != "NoSuchKey":
                raise
            return set()
        return {json.loads(line)["line"] for line in data.splitlines() if line.strip()}

    @activity.defn(name="batch_check_funds")
    async def check_funds(self, check: FundsCheck) -> str:
        """'' when the balance covers the estimate (or limits are off), else why not."""
        if not self._settings.limits_enabled:
            return ""
        snapshot = await accounts.snapshot(self._settings, self._tenant(check.tenant_id))
        if snapshot.available_micro_usd >= check.estimated_micro_usd:
            return ""
        return (
            f"estimated cost ${micro_usd_to_usd(check.estimated_micro_usd):.2f} exceeds the "
            f"available balance ${micro_usd_to_usd(snapshot.available_micro_usd):.2f}"
        )

    @activity.defn(name="batch_run_line")
    async def run_line(self, run: RunLine) -> LineOutcome:
        """Admit the line's job (found again when it exists), wait for its end, write the
        line's output record; then, when `run.report`, tell the batch (a line's workflow
        that ends here needs no workflow task of its own to report)."""
        outcome = await self._run_line(run)
        if run.report:
            await self._report(run, outcome)
        return outcome

    async def _report(self, run: RunLine, outcome: LineOutcome) -> None:
        """The batch's `line_done` (a report twice, from a retried attempt, is ignored by
        the batch); a batch that has ended hears nothing."""
        batch = self._client.get_workflow_handle(run.batch_id)
        try:
            await batch.signal(LINE_DONE_SIGNAL, LineDone(ref=run.ref, outcome=outcome))
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise

    async def _run_line(self, run: RunLine) -> LineOutcome:
        ref = run.ref
        raw = await asyncio.to_thread(self._read_line, run.input_key, ref)
        parsed = parse_line(raw)
        tenant = self._tenant(run.tenant_id)
        try:
            admission = await admit(
                parsed.submission,
                self._client,
                self._s3,
                self._settings,
                tenant,
                idempotency_key=line_idempotency_key(run.batch_id, ref.line),
                batch_id=run.batch_id,
            )
        except APIError as exc:
            if exc.code in _PAUSING:
                return LineOutcome(
                    line=ref.line,
                    status="refused",
                    error_code=exc.error_type,
                    error_message=exc.message,
                )
            if exc.code in _RETRYING:
                raise
            return await self._record(run, parsed.custom_id, None, exc.error_type, exc.message)
        except InvalidMediaError as exc:
            return await self._record(run, parsed.custom_id, None, "invalid_request", str(exc))
        job_id = admission.view.job_id
        try:
            completed = await self._wait_for(job_id)
        except asyncio.CancelledError:
            await self._cancel_job(job_id)
            await self._record(run, parsed.custom_id, job_id, None, None, cancelled=True)
            raise
        return await self._record(run, parsed.custom_id, job_id, None, None, view=completed)

    async def _wait_for(self, job_id: str) -> JobView | None:
        """Until the job ends: its final view if it completed (its workflow's result), None
        if it failed or was cancelled (its view then says how). A job admitted but not yet
        started (admission starts it just after, or the sweeper later) is waited for."""
        handle = self._client.get_workflow_handle_for(VideoGenerationWorkflow.run, job_id)
        not_started_delay = START_WAIT_FIRST_SECONDS
        while True:
            result = asyncio.ensure_future(handle.result())
            try:
                while not (await asyncio.wait({result}, timeout=5))[0]:
                    activity.heartbeat(job_id)
            finally:
                result.cancel()
            try:
                return result.result()
            except WorkflowFailureError:
                return None
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
            activity.heartbeat(job_id)
            await asyncio.sleep(not_started_delay)
            not_started_delay = min(not_started_delay * 2, START_WAIT_MAX_SECONDS)

    async def _cancel_job(self, job_id: str) -> None:
        handle = self._client.get_workflow_handle(job_id)
        try:
            await handle.cancel()
            await handle.result()
        except (RPCError, WorkflowFailureError):
            pass

    async def _record(
        self,
        run: RunLine,
        custom_id: str,
        job_id: str | None,
        error_code: str | None,
        error_message: str | None,
        *,
        cancelled: bool = False,
        view: JobView | None = None,
    ) -> LineOutcome:
        """Write the line's output record; `view` is the job's final one when the caller has
        it (else it is read)."""
        record: dict[str, Any] = {"custom_id": custom_id, "line": run.ref.line, "job_id": job_id}
        outcome = LineOutcome(line=run.ref.line, status="failed", job_id=job_id)
        if job_id is not None:
            if view is None:
                view, _ = await jobs.read_job(self._client, self._settings, job_id, None)
            rendered = render_native(view, self._settings)
            status = view.status
            if cancelled and not status.is_terminal:
                status = JobStatus.CANCELLED
            outcome.status = (
                "completed"
                if status is JobStatus.COMPLETED
                else "cancelled"
                if status is JobStatus.CANCELLED
                else "failed"
            )
            outcome.cost_micro_usd = view.cost_micro_usd or 0
            if view.error is not None:
                error_code, error_message = view.error.code, view.error.message
            record |= {
                "status": outcome.status,
                "video_url": rendered.video_url,
                "cost_usd": micro_usd_to_usd(outcome.cost_micro_usd),
            }
        else:
            record |= {"status": "failed", "video_url": None, "cost_usd": 0.0}
        outcome.error_code, outcome.error_message = error_code, error_message
        record["error"] = (
            {"code": error_code, "message": error_message} if error_code is not None else None
        )
        data = (json.dumps(record) + "\n").encode()
        await asyncio.to_thread(self._put, batch_output_key(run.batch_id, run.ref.line), data)
        return outcome

    @activity.defn(name="batch_notify")
    async def notify(self, notice: BatchNotice) -> str:
        """POST the batch's end to its `webhook_url`, signed as job webhooks are; raises on
        an answer that is not 2xx (Temporal retries); '' when delivered, else why not."""
        try:
            checked = await check_url(notice.url, self._settings, field="webhook_url")
        except UnsafeURLError as exc:
            return str(exc)
        view = notice.view
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        payload = {
            "type": f"batch.{view.status.value}",
            "timestamp": stamp,
            "data": render(view).model_dump(mode="json"),
        }
        body = encode_body(payload)
        secret = tenant_secret(self._settings, view.tenant_id)
        message_id = f"msg_{view.batch_id}_{view.status.value}"
        headers = signed_headers(secret, message_id, int(time.time()), body)
        async with pinned_stream(
            checked,
            "POST",
            time_limit=self._settings.webhook_timeout_seconds,
            headers=headers,
            content=body,
        ) as response:
            if not 200 <= response.status_code < 300:
                raise RuntimeError(f"webhook answered {response.status_code}")
        return ""

    def _read_line(self, key: str, ref: LineRef) -> bytes:
        response = self._s3.get_object(
            self._settings.s3_bucket, key, offset=ref.offset, length=ref.length
        )
        try:
            data: bytes = response.read()
        finally:
            response.close()
            response.release_conn()
        return data[: ref.length]

    def _put(self, key: str, data: bytes) -> None:
        self._s3.put_object(
            self._settings.s3_bucket,
            key,
            BytesIO(data),
            len(data),
            content_type="application/jsonl",
        )


async def start_batch(
    client: Client, settings: Settings, batch_id: str, batch: BatchInput
) -> tuple[BatchView, bool]:
    """Start the batch (or find it: the same id answers with the batch that has it); the
    view, and whether it already existed."""
    try:
        await client.start_workflow(
            BatchWorkflow.run,
            batch,
            id=batch_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=for_new_batch(batch_id, batch.tenant_id),
            static_summary=console.batch_summary(batch),
            static_details=console.batch_details(batch),
        )
    except WorkflowAlreadyStartedError:
        return await read_batch(client, batch_id, None), True
    except RPCError as exc:
        raise unavailable("batch queue") from exc
    view = BatchView(
        batch_id=batch_id,
        tenant_id=batch.tenant_id,
        input_key=batch.input_key,
        status=BatchStatus.VALIDATING,
        request_counts=BatchCounts(),
        concurrency=batch.concurrency,
        max_cost_usd=batch.max_cost_usd,
        on_invalid_line=batch.on_invalid_line,
        cost_micro_usd=0,
        estimated_micro_usd=0,
        created_at=datetime.now(UTC),
        started_at=None,
        completed_at=None,
        idempotency_hash=batch.idempotency_hash,
    )
    return view, False


async def read_batch(client: Client, batch_id: str, tenant: Tenant | None) -> BatchView:
    """The batch's view; 404 when it does not exist or belongs to another tenant."""
    if not is_batch_id(batch_id):
        raise not_found()
    handle = client.get_workflow_handle_for(BatchWorkflow.run, batch_id)
    try:
        try:
            view = await handle.query(BatchWorkflow.view, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise
            # A worker that died held the batch: the server hands the query on to another
            # one once the dead worker's sticky queue times out (5 s).
            log.info("batch query retried", batch_id=batch_id, status=exc.status, error=str(exc))
            view = await handle.query(BatchWorkflow.view, rpc_timeout=RETRY_QUERY_TIMEOUT)
    except WorkflowQueryFailedError as exc:
        raise not_found() from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise not_found() from exc
        log.warning("batch query failed", batch_id=batch_id, status=exc.status, error=str(exc))
        raise unavailable("batch store") from exc
    if tenant is not None and view.tenant_id != tenant.id:
        raise not_found()
    return view


async def list_batches(
    client: Client, tenant: Tenant, *, limit: int, after: str | None
) -> tuple[list[BatchView], bool]:
    """The tenant's batches, newest first (`after`: the last id of the previous page)."""
    query = f"WorkflowType = 'BatchWorkflow' AND {search_attributes.TENANT.name} = '{tenant.id}'"
    ids: list[tuple[Any, str]] = []
    try:
        async for execution in client.list_workflows(query, limit=jobs.LIST_SCAN_LIMIT):
            ids.append((execution.start_time, execution.id))
    except RPCError as exc:
        raise unavailable("batch listing") from exc
    ids.sort(reverse=True)
    names = [batch_id for _, batch_id in ids]
    if after is not None and after in names:
        names = names[names.index(after) + 1 :]
    page = names[:limit]
    views = [await read_batch(client, batch_id, tenant) for batch_id in page]
    return views, len(names) > limit


async def stream_records(
    s3: Minio, settings: Settings, batch_id: str, part: str
) -> AsyncIterator[bytes]:
    """Every object under the batch's `part` (`output` or `errors`), in line order (S3
    lists keys in order, and they are zero-padded line numbers), listed a page at a time so
    that memory stays flat in the number of lines."""
    prefix = batch_prefix(batch_id, part)
    after: str | None = None
    while True:
        names = await asyncio.to_thread(_list_page, s3, settings.s3_bucket, prefix, after)
        for name in names:
            yield await asyncio.to_thread(_get_object, s3, settings.s3_bucket, name)
        if len(names) < LIST_PAGE:
            return
        after = names[-1]


#: Object names listed per S3 call by `stream_records`.
LIST_PAGE = 1000


def _list_page(s3: Minio, bucket: str, prefix: str, after: str | None) -> list[str]:
    listing = s3.list_objects(bucket, prefix=prefix, recursive=True, start_after=after)
    return [item.object_name for item in itertools.islice(listing, LIST_PAGE) if item.object_name]


def _get_object(s3: Minio, bucket: str, key: str) -> bytes:
    response = s3.get_object(bucket, key)
    try:
        data: bytes = response.read()
    finally:
        response.close()
        response.release_conn()
    return data
