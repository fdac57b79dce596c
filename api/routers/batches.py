"""`/v1/batches`: many jobs from one JSONL file (see `api.batches`, `workflows.batch`).

Errors take the native dialect's shape."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from minio import Minio
from minio.error import S3Error
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from api import batches
from api.deps import CurrentTenant, IdempotencyKey, S3Client, SettingsDep, TemporalClient
from api.dialects.bodies import is_form, json_object, parse
from api.dialects.webhooks import webhook_target
from api.errors import errors, native_error, shaped_route
from api.problem import APIError, invalid
from reelay import idempotency
from reelay.batches import (
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    MAX_FILE_BYTES,
    Batch,
    BatchInput,
    BatchStatus,
    CancelRequest,
    is_file_id,
    new_batch_id,
    new_file_id,
    render,
)
from reelay.errors import ErrorCode
from reelay.settings import Settings
from reelay.storage import batch_file_key
from reelay.tenants import Tenant
from workflows.batch import BatchWorkflow

TAG = "batches"
router = APIRouter(
    prefix="/v1/batches", tags=[TAG], route_class=shaped_route(lambda _: native_error)
)

# Multipart framing and the option fields around the file.
_FORM_OVERHEAD = 64 * 1024


class BatchOptions(BaseModel):
    """`POST /v1/batches`'s fields besides `file` (a form's, or a JSON body's)."""

    input_file_id: str | None = Field(
        default=None, description="a file from POST /v1/batches/files"
    )
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY)
    max_cost_usd: float | None = Field(default=None, ge=0)
    on_invalid_line: Literal["fail", "skip"] = "fail"
    webhook_url: str | None = None


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Batch]
    has_more: bool
    last_id: str | None = None


class BatchFile(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    sha256: str


async def _store_file(
    upload: UploadFile, s3: Minio, settings: Settings, tenant: Tenant
) -> tuple[str, int, str]:
    """The upload streamed into S3 (Starlette spooled it to disk, so memory stays bounded);
    its key, size and SHA-256."""
    digest = hashlib.sha256()
    size = 0
    while chunk := await upload.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise APIError(
                ErrorCode.PAYLOAD_TOO_LARGE, f"file is over {MAX_FILE_BYTES // 2**20} MB"
            )
    if size == 0:
        raise invalid("file is empty", "file")
    await upload.seek(0)
    key = batch_file_key(tenant.id, new_file_id())
    await asyncio.to_thread(
        s3.put_object,
        settings.s3_bucket,
        key,
        upload.file,
        size,
        content_type="application/jsonl",
    )
    return key, size, digest.hexdigest()


async def _form(request: Request) -> tuple[dict[str, Any], UploadFile | None]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FILE_BYTES + _FORM_OVERHEAD:
        raise APIError(ErrorCode.PAYLOAD_TOO_LARGE, f"file is over {MAX_FILE_BYTES // 2**20} MB")
    try:
        form = await request.form(max_files=1, max_fields=16, max_part_size=64 * 1024)
    except MultiPartException as exc:
        raise invalid(f"invalid multipart body: {exc.message}") from exc
    fields: dict[str, Any] = {}
    upload: UploadFile | None = None
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value
        elif key == "file":
            upload = value
    return fields, upload


@router.post("/files", status_code=201, responses=errors(400, 401, 408, 413, 415, 503))
async def upload_file(
    request: Request, tenant: CurrentTenant, s3: S3Client, settings: SettingsDep
) -> BatchFile:
    """Store a JSONL batch input file (multipart `file`, ≤ 200 MB) for `input_file_id`."""
    if not is_form(request):
        raise APIError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send the file as multipart/form-data")
    _, upload = await _form(request)
    if upload is None:
        raise invalid("file is required", "file")
    key, size, sha256 = await _store_file(upload, s3, settings, tenant)
    file_id = key.rsplit("/", 1)[-1].removesuffix(".jsonl")
    return BatchFile(id=file_id, bytes=size, sha256=sha256)


@router.post("", status_code=201, responses=errors(400, 401, 408, 409, 413, 415, 503))
async def create_batch(
    request: Request,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Batch:
    """Start a batch: multipart `file` (JSONL, one `{custom_id, method, url, body}` a line)
    or `input_file_id`, and the options. With `Idempotency-Key`, the same key and request
    return the first batch."""
    upload: UploadFile | None = None
    if is_form(request):
        fields, upload = await _form(request)
    else:
        fields = await json_object(request)
    options = _options(fields)
    if (upload is None) == (options.input_file_id is None):
        raise invalid("give file or input_file_id (one of them)", "file")
    if options.webhook_url is not None:
        await webhook_target(
            options.webhook_url, None, settings, url_field="webhook_url", events_field="events"
        )
    batch_id, fingerprint = new_batch_id(), None
    if idempotency_key:
        try:
            idempotency.check_key(idempotency_key)
        except idempotency.InvalidKeyError as exc:
            raise invalid(str(exc), "Idempotency-Key") from exc
        batch_id = "batch_" + idempotency.job_digest(tenant.id, f"batches:{idempotency_key}")
    if upload is not None:
        key, _, sha256 = await _store_file(upload, s3, settings, tenant)
        source = {"sha256": sha256}
    else:
        file_id = options.input_file_id or ""
        if not is_file_id(file_id):
            raise invalid("input_file_id is not a batch file id", "input_file_id")
        key = batch_file_key(tenant.id, file_id)
        if not await asyncio.to_thread(_exists, s3, settings.s3_bucket, key):
            raise APIError(ErrorCode.NOT_FOUND, f"input_file_id {file_id} not found")
        source = {"file_id": file_id}
    if idempotency_key:
        fingerprint = idempotency.fingerprint(
            TAG, {"source": source, **options.model_dump(exclude={"input_file_id"})}
        )
    batch = BatchInput(
        tenant_id=tenant.id,
        input_key=key,
        concurrency=options.concurrency,
        max_cost_usd=options.max_cost_usd,
        on_invalid_line=options.on_invalid_line,
        webhook_url=options.webhook_url,
        idempotency_hash=fingerprint,
    )
    view, existed = await batches.start_batch(client, settings, batch_id, batch)
    if existed and (
        view.tenant_id != tenant.id
        or not idempotency.same_request(view.idempotency_hash, fingerprint)
    ):
        raise APIError(ErrorCode.IDEMPOTENCY_CONFLICT, idempotency.CONFLICT_MESSAGE)
    return render(view)


def _options(fields: dict[str, Any]) -> BatchOptions:
    return parse(BatchOptions, fields)


def _exists(s3: Minio, bucket: str, key: str) -> bool:
    try:
        s3.stat_object(bucket, key)
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            return False
        raise
    return True


@router.get("", responses=errors(400, 401, 503))
async def list_batches(
    tenant: CurrentTenant,
    client: TemporalClient,
    after: Annotated[
        str | None, Query(description="id of the last batch of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BatchList:
    """The tenant's batches, newest first."""
    views, has_more = await batches.list_batches(client, tenant, limit=limit, after=after)
    data = [render(view) for view in views]
    return BatchList(data=data, has_more=has_more, last_id=data[-1].id if data else None)


@router.get("/{batch_id}", responses=errors(401, 404, 503))
async def get_batch(batch_id: str, tenant: CurrentTenant, client: TemporalClient) -> Batch:
    return render(await batches.read_batch(client, batch_id, tenant))


async def _records(
    batch_id: str, tenant: Tenant, client: TemporalClient, s3: Minio, settings: Settings, part: str
) -> StreamingResponse:
    await batches.read_batch(client, batch_id, tenant)

    async def body() -> AsyncIterator[bytes]:
        async for record in batches.stream_records(s3, settings, batch_id, part):
            yield record

    return StreamingResponse(body(), media_type="application/jsonl")


@router.get(
    "/{batch_id}/output",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}}, **errors(401, 404, 503)},
)
async def get_output(
    batch_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> StreamingResponse:
    """One JSONL record a finished line (`custom_id`, `line`, `job_id`, `status`,
    `video_url`, `cost_usd`, `error`), in line order; grows while the batch runs."""
    return await _records(batch_id, tenant, client, s3, settings, "output")


@router.get(
    "/{batch_id}/errors",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}}, **errors(401, 404, 503)},
)
async def get_errors(
    batch_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> StreamingResponse:
    """One JSONL record an invalid line (`line`, `custom_id`, `code`, `message`, `param`)."""
    return await _records(batch_id, tenant, client, s3, settings, "errors")


class CancelOptions(BaseModel):
    cancel_running: bool = Field(
        default=False, description="cancel the running jobs too (else they finish)"
    )


async def _signal(
    request: Request, batch_id: str, tenant: Tenant, client: TemporalClient, action: str
) -> Batch:
    view = await batches.read_batch(client, batch_id, tenant)
    if view.status.is_terminal:
        raise APIError(ErrorCode.CONFLICT, f"batch is already {view.status.value}")
    handle = client.get_workflow_handle_for(BatchWorkflow.run, batch_id)
    if action == "cancel":
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise invalid("request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise invalid("request body must be a JSON object")
        options = parse(CancelOptions, body)
        await handle.signal(
            BatchWorkflow.cancel, CancelRequest(cancel_running=options.cancel_running)
        )
    elif action == "pause":
        if view.status is BatchStatus.PAUSED:
            raise APIError(ErrorCode.CONFLICT, "batch is already paused")
        await handle.signal(BatchWorkflow.pause, "paused by request")
    else:
        if view.status is not BatchStatus.PAUSED:
            raise APIError(ErrorCode.CONFLICT, f"batch is {view.status.value}, not paused")
        await handle.signal(BatchWorkflow.resume)
    return render(await batches.read_batch(client, batch_id, tenant))


@router.post("/{batch_id}/cancel", status_code=202, responses=errors(400, 401, 404, 409, 503))
async def cancel_batch(
    request: Request, batch_id: str, tenant: CurrentTenant, client: TemporalClient
) -> Batch:
    """No new jobs; the running ones finish, or with `{"cancel_running": true}` are cancelled."""
    return await _signal(request, batch_id, tenant, client, "cancel")


@router.post("/{batch_id}/pause", status_code=202, responses=errors(401, 404, 409, 503))
async def pause_batch(
    request: Request, batch_id: str, tenant: CurrentTenant, client: TemporalClient
) -> Batch:
    """No new jobs until `/resume`; the running ones go on."""
    return await _signal(request, batch_id, tenant, client, "pause")


@router.post("/{batch_id}/resume", status_code=202, responses=errors(401, 404, 409, 503))
async def resume_batch(
    request: Request, batch_id: str, tenant: CurrentTenant, client: TemporalClient
) -> Batch:
    return await _signal(request, batch_id, tenant, client, "resume")
