"""The OpenAI Videos API shape (what the `openai` SDK's `client.videos` and LiteLLM speak):
create (JSON or multipart with an `input_reference` image), retrieve, list, delete, content.

Model ids are Reelay's catalog ids (`sora-2` / `sora-2-pro` are retired: a 400 naming the
date); without a model, Reelay's default model. `seconds` is a whole number as a string;
`size` is `WIDTHxHEIGHT`, mapped to the model's nearest aspect ratio (within 3 %) and
resolution, and echoed as the size Reelay makes. Statuses: `queued`, `in_progress`,
`completed`, `failed` (a cancelled job too, with the error code `cancelled`). Errors:
`{"error": {"message", "type", "param", "code"}}` with OpenAI's status codes (insufficient
credits is a 429 `insufficient_quota`, not retried by the SDK). `expires_at` is null: videos
are kept until deleted.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from minio import Minio
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.datastructures import UploadFile
from temporalio.client import Client

from api import jobs
from api.deps import CurrentTenant, S3Client, SettingsDep, TemporalClient
from api.dialects import deletion
from api.dialects.bodies import parse
from api.dialects.common import read_live_job, stream_thumbnail, stream_video, submit
from api.errors import APIError, shaped_route
from providers.catalog import DEFAULT_MODEL, ModelSpec, find_model, resolve_request
from reelay.jobs import ImageRef, JobStatus, JobView
from reelay.media import resolve_image, store_upload
from reelay.settings import Settings
from reelay.tenants import Tenant

DIALECT = "openai"
FIELDS = ("seconds", "size", "input_reference")
POLL_AFTER_HEADER = "openai-poll-after-ms"
POLL_AFTER_MS = (1000, 10_000)
SIZE_TOLERANCE = 0.03

_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_NAMES = {
    "duration_seconds": "seconds",
    "aspect_ratio": "size",
    "resolution": "size",
    "image": "input_reference",
}
_STATUS_WORDS = {
    JobStatus.QUEUED: "queued",
    JobStatus.PROCESSING: "in_progress",
    JobStatus.STORING: "in_progress",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "failed",
}


def error_response(exc: APIError) -> JSONResponse:
    status, error_type, code = exc.status_code, "invalid_request_error", None
    headers = dict(exc.headers or {})
    if status == 401:
        code = "invalid_api_key"
    elif status == 402:
        status, error_type, code = 429, "insufficient_quota", "insufficient_quota"
        headers["x-should-retry"] = "false"
    elif status == 429:
        error_type, code = "rate_limit_exceeded", exc.error_type
    elif status >= 500:
        error_type = "server_error"
    elif exc.error_type not in ("invalid_request", "not_found"):
        code = exc.error_type
    body = {"message": exc.message, "type": error_type, "param": exc.param, "code": code}
    return JSONResponse({"error": body}, status, headers=headers or None)


router = APIRouter(tags=["OpenAI videos"], route_class=shaped_route(lambda _: error_response))


def _int_as_text(value: Any) -> Any:
    """`seconds` is a string in OpenAI's API; an integer is taken too."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class OpenAIImageReference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_url: str | None = Field(default=None, description="https URL of the image")
    file_id: str | None = Field(default=None, description="a media id from POST /v1/media")


class OpenAICreateVideo(BaseModel):
    """`POST /v1/videos` in OpenAI's shape (JSON, or multipart with an image file)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "runway-gen3",
                    "prompt": "A calico cat playing a piano on stage",
                    "seconds": "4",
                    "size": "1280x720",
                }
            ]
        },
    )

    prompt: str
    model: str | None = Field(default=None, description="Reelay catalog id; default runway-gen3")
    seconds: Annotated[str | None, BeforeValidator(_int_as_text)] = Field(
        default=None, description='whole seconds, e.g. "8"'
    )
    size: str | None = Field(default=None, description="WIDTHxHEIGHT, e.g. 1280x720")
    input_reference: OpenAIImageReference | None = None


class OpenAICreateVideoForm(BaseModel):
    """The multipart form of `POST /v1/videos`."""

    prompt: str
    model: str | None = None
    seconds: str | None = None
    size: str | None = None
    input_reference: bytes | None = Field(
        default=None,
        description="PNG, JPEG or WebP image file",
        json_schema_extra={"format": "binary"},
    )


class OpenAIVideoError(BaseModel):
    code: str
    message: str


class OpenAIVideo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "job_vid_3f4a",
                    "object": "video",
                    "model": "runway-gen3",
                    "status": "in_progress",
                    "progress": 40,
                    "created_at": 1795285265,
                    "completed_at": None,
                    "expires_at": None,
                    "prompt": "A calico cat playing a piano on stage",
                    "seconds": "4",
                    "size": "1280x720",
                    "error": None,
                    "remixed_from_video_id": None,
                }
            ]
        }
    )

    id: str
    object: Literal["video"] = "video"
    model: str
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int = Field(description="0 to 100")
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = None
    prompt: str
    seconds: str
    size: str
    error: OpenAIVideoError | None = None
    remixed_from_video_id: str | None = None


class OpenAIVideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIVideo]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


class OpenAIVideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


async def create(
    fields: dict[str, Any],
    files: dict[str, UploadFile],
    tenant: Tenant,
    client: Client,
    s3: Minio,
    settings: Settings,
    idempotency_key: str | None = None,
) -> OpenAIVideo:
    order = parse(OpenAICreateVideo, fields)
    upload = files.get("input_reference")
    if upload is not None and order.input_reference is not None:
        raise _invalid(
            "give input_reference as a file or as a reference, not both", "input_reference"
        )
    spec = find_model(order.model or DEFAULT_MODEL)
    resolution, aspect_ratio = _shape(order.size, spec) if order.size and spec else (None, None)
    resolved = resolve_request(
        prompt=order.prompt,
        model=order.model,
        duration_seconds=_seconds(order.seconds),
        resolution=resolution,
        aspect_ratio=aspect_ratio,
        with_image=upload is not None or order.input_reference is not None,
        names=_NAMES,
    )
    image: ImageRef | None
    if upload is not None:
        data = await upload.read(settings.media_max_bytes + 1)
        stored = await store_upload(
            s3, settings, tenant.id, data, upload.content_type, field="input_reference"
        )
        image = stored.ref
    else:
        reference = order.input_reference or OpenAIImageReference()
        image = await resolve_image(
            s3,
            settings,
            tenant.id,
            image_url=reference.image_url,
            media_id=reference.file_id,
            image_field="input_reference.image_url",
            media_field="input_reference.file_id",
        )
    admission = await submit(
        client,
        settings,
        tenant,
        resolved,
        dialect=DIALECT,
        image=image,
        idempotency_key=idempotency_key,
    )
    return render(admission.view)


def _invalid(message: str, param: str) -> APIError:
    return APIError(400, "invalid_request", message, param=param)


def _seconds(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit():
        raise _invalid(
            f'seconds must be a whole number of seconds, e.g. "8" (got "{value}")', "seconds"
        )
    return int(value)


def _ratio(aspect_ratio: str) -> float:
    width, _, height = aspect_ratio.partition(":")
    return int(width) / int(height)


def _short_side(resolution: str) -> int:
    return 2160 if resolution.lower() == "4k" else int(resolution.rstrip("pP"))


def size_of(resolution: str, aspect_ratio: str) -> str:
    """The `WIDTHxHEIGHT` Reelay makes at `resolution` (the short side) and `aspect_ratio`."""
    short, ratio = _short_side(resolution), _ratio(aspect_ratio)
    long = 2 * round(short * max(ratio, 1 / ratio) / 2)
    return f"{long}x{short}" if ratio >= 1 else f"{short}x{long}"


def _shape(size: str, spec: ModelSpec) -> tuple[str, str]:
    """(resolution, aspect ratio) of `spec` nearest to `size`."""
    match = _SIZE.match(size.strip())
    if match is None or 0 in (int(match[1]), int(match[2])):
        raise _invalid(f"size must be WIDTHxHEIGHT, e.g. 1280x720 (got {size!r})", "size")
    width, height = int(match[1]), int(match[2])
    ratio = min(spec.aspect_ratios, key=lambda r: abs(math.log(_ratio(r) * height / width)))
    if abs(_ratio(ratio) * height / width - 1) > SIZE_TOLERANCE:
        sizes = [size_of(res, r) for r in spec.aspect_ratios for res in spec.resolutions]
        raise _invalid(
            f"size {size} is not available for {spec.id} model; sizes: {', '.join(sizes)}", "size"
        )
    resolution = min(spec.resolutions, key=lambda r: abs(_short_side(r) - min(width, height)))
    return resolution, ratio


def render(view: JobView) -> OpenAIVideo:
    video = OpenAIVideo(
        id=view.job_id,
        model=view.requested_model,
        status=_STATUS_WORDS[view.status],
        progress=100 if view.status is JobStatus.COMPLETED else round(view.progress * 100),
        created_at=int(view.created_at.timestamp()),
        completed_at=int(view.completed_at.timestamp()) if view.completed_at else None,
        prompt=view.prompt,
        seconds=str(view.duration_seconds),
        size=size_of(view.resolution, view.aspect_ratio),
    )
    if view.error is not None:
        video.error = OpenAIVideoError(code=view.error.code, message=view.error.message)
    elif view.status is JobStatus.CANCELLED:
        video.error = OpenAIVideoError(code="cancelled", message="the job was cancelled")
    return video


def poll_after_headers(view: JobView) -> dict[str, str]:
    """`openai-poll-after-ms` while the job runs: half its ETA, within 1 to 10 s."""
    if view.status.is_terminal:
        return {}
    eta_ms = 2000 if view.eta_seconds is None else view.eta_seconds * 500
    low, high = POLL_AFTER_MS
    return {POLL_AFTER_HEADER: str(round(min(max(eta_ms, low), high)))}


@router.get("/v1/videos")
async def list_videos(
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
    after: Annotated[
        str | None, Query(description="id of the last video of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
) -> OpenAIVideoList:
    """The tenant's videos (jobs of every dialect), by creation time.

    From Temporal visibility via `api.jobs.list_jobs`; `order=asc` sorts the newest
    `api.jobs.LIST_SCAN_LIMIT` matching jobs. Deleted videos are left out."""
    where = jobs.JobFilter()
    if after is not None:
        _, handle = await read_live_job(client, s3, settings, after, tenant)
        started = (await handle.describe()).start_time
        if order == "desc":
            where.created_before = started
        else:
            where.created_after = started
    scan = limit if order == "desc" else jobs.LIST_SCAN_LIMIT
    page = await jobs.list_jobs(client, tenant, where, cursor=None, limit=scan)
    views = page.views if order == "desc" else page.views[::-1]
    views = [view for view in views if view.job_id != after]
    has_more = page.next_cursor is not None if order == "desc" else len(views) > limit
    views = views[:limit]
    gone = await asyncio.gather(*(deletion.is_deleted(s3, settings, v.job_id) for v in views))
    data = [render(view) for view, deleted in zip(views, gone, strict=True) if not deleted]
    return OpenAIVideoList(
        data=data,
        has_more=has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )


@router.delete("/v1/videos/{video_id}")
async def delete_video(
    video_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> OpenAIVideoDeleted:
    """Delete the video and its thumbnail; a running job is cancelled. The id 404s after."""
    view, handle = await read_live_job(client, s3, settings, video_id, tenant)
    await deletion.delete_job(view, handle, s3, settings)
    return OpenAIVideoDeleted(id=view.job_id)


@router.get(
    "/v1/videos/{video_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp4": {}, "image/jpeg": {}}}},
)
async def download_content(
    request: Request,
    video_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
    variant: Literal["video", "thumbnail"] = "video",
) -> Response:
    """The MP4 (`variant=video`, honours `Range`) or its JPEG thumbnail."""
    view, _ = await read_live_job(client, s3, settings, video_id, tenant)
    if variant == "thumbnail":
        return await stream_thumbnail(view, s3, settings, request)
    return await stream_video(view, s3, settings, request)
