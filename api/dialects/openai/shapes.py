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

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from api.dialects.catalog_fields import ModelId, Prompt
from api.dialects.outcome import failure_of
from api.dialects.submission import Submission
from api.problem import invalid, parse
from providers.catalog import DEFAULT_MODEL, ModelSpec, find_model, resolve_request
from reelay.jobs import JobStatus, JobView

DIALECT = "openai"
FIELDS = ("seconds", "size", "input_reference")
POLL_AFTER_HEADER = "openai-poll-after-ms"
POLL_AFTER_MS = (1000, 10_000)
SIZE_TOLERANCE = 0.03

SIZE_PATTERN = re.compile(r"^(\d{2,5})x(\d{2,5})$", re.ASCII)
# What `seconds_of` and `shape_of` take, for the document (their refusals name the field).
SECONDS_TEXT = {"type": "string", "pattern": r"^\s*[0-9]{1,4}\s*$", "description": 'e.g. "8"'}
SIZE_TEXT = {
    "type": "string",
    "pattern": r"^\s*[1-9][0-9]{1,4}x[1-9][0-9]{1,4}\s*$",
    "description": "WIDTHxHEIGHT, e.g. 1280x720: the model's nearest size",
}
NAMES = {
    "duration_seconds": "seconds",
    "aspect_ratio": "size",
    "resolution": "size",
    "image": "input_reference",
}
STATUS_WORDS = {
    JobStatus.QUEUED: "queued",
    JobStatus.PROCESSING: "in_progress",
    JobStatus.STORING: "in_progress",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "failed",
}


def _int_as_text(value: Any) -> Any:
    """`seconds` is a string in OpenAI's API; an integer is taken too."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class OpenAIImageReference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_url: str | None = Field(default=None, description="https URL of the image")
    file_id: str | None = Field(default=None, description="a media id from POST /v1/media")


# Request examples (OpenAPI `Example` objects): OpenAI's own example request, with a
# Reelay model id for its retired `sora-2`.
EXAMPLES: dict[str, dict[str, Any]] = {
    "OpenAI: create": {
        "summary": "OpenAI's example request (client.videos.create)",
        "value": {
            "model": "runway-gen3",
            "prompt": "A calico cat playing a piano on stage",
            "seconds": "4",
            "size": "1280x720",
        },
    },
}


class OpenAICreateVideo(BaseModel):
    """`POST /v1/videos` in OpenAI's shape (JSON, or multipart with an image file)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [example["value"] for example in EXAMPLES.values()]},
    )

    prompt: Prompt
    model: ModelId | None = Field(default=None, description="default runway-gen3")
    seconds: Annotated[
        str | None,
        BeforeValidator(_int_as_text),
        WithJsonSchema(
            {"anyOf": [SECONDS_TEXT, {"type": "integer", "minimum": 0, "maximum": 9999}]}
        ),
    ] = None
    size: Annotated[str | None, WithJsonSchema(SIZE_TEXT)] = None
    input_reference: OpenAIImageReference | None = None


class OpenAICreateVideoForm(BaseModel):
    """The multipart form of `POST /v1/videos` (documentation only: the fields are
    validated as `OpenAICreateVideo`)."""

    model_config = ConfigDict(extra="forbid")

    prompt: Prompt
    model: ModelId = DEFAULT_MODEL
    seconds: Annotated[str | None, WithJsonSchema(SECONDS_TEXT)] = None
    size: Annotated[str | None, WithJsonSchema(SIZE_TEXT)] = None
    # A file part (OpenAPI 3.1: `contentMediaType`); what the bytes are decides, not a format.
    input_reference: Annotated[
        bytes | None,
        WithJsonSchema(
            {
                "type": "string",
                "contentMediaType": "application/octet-stream",
                "description": "PNG, JPEG or WebP image file",
            }
        ),
    ] = None


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorBody(BaseModel):
    """An error as OpenAI's API answers it."""

    error: OpenAIErrorDetail


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


def seconds_of(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 4):
        raise invalid(
            f'seconds must be a whole number of seconds, e.g. "8" (got "{value[:20]}")', "seconds"
        )
    return int(text)


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


def shape_of(size: str, spec: ModelSpec) -> tuple[str, str]:
    """(resolution, aspect ratio) of `spec` nearest to `size`."""
    match = SIZE_PATTERN.match(size.strip())
    if match is None or 0 in (int(match[1]), int(match[2])):
        raise invalid(f"size must be WIDTHxHEIGHT, e.g. 1280x720 (got {size!r})", "size")
    width, height = int(match[1]), int(match[2])
    ratio = min(spec.aspect_ratios, key=lambda r: abs(math.log(_ratio(r) * height / width)))
    if abs(_ratio(ratio) * height / width - 1) > SIZE_TOLERANCE:
        sizes = [size_of(res, r) for r in spec.aspect_ratios for res in spec.resolutions]
        raise invalid(
            f"size {size} is not available for {spec.id} model; sizes: {', '.join(sizes)}", "size"
        )
    resolution = min(spec.resolutions, key=lambda r: abs(_short_side(r) - min(width, height)))
    return resolution, ratio


def render(view: JobView) -> OpenAIVideo:
    video = OpenAIVideo(
        id=view.job_id,
        model=view.requested_model,
        status=STATUS_WORDS[view.status],
        progress=100 if view.status is JobStatus.COMPLETED else round(view.progress * 100),
        created_at=int(view.created_at.timestamp()),
        completed_at=int(view.completed_at.timestamp()) if view.completed_at else None,
        prompt=view.prompt,
        seconds=str(view.duration_seconds),
        size=size_of(view.resolution, view.aspect_ratio),
    )
    if (failure := failure_of(view)) is not None:
        video.error = OpenAIVideoError(code=failure.code, message=failure.message)
    return video


def poll_after_headers(view: JobView) -> dict[str, str]:
    """`openai-poll-after-ms` while the job runs: half its ETA, within 1 to 10 s."""
    if view.status.is_terminal:
        return {}
    eta_ms = 2000 if view.eta_seconds is None else view.eta_seconds * 500
    low, high = POLL_AFTER_MS
    return {POLL_AFTER_HEADER: str(round(min(max(eta_ms, low), high)))}


def submission(fields: dict[str, Any], *, with_upload: bool = False) -> Submission:
    """OpenAI's create body, parsed and resolved; `with_upload`: a multipart
    `input_reference` file comes with it (the route stores it)."""
    order = parse(OpenAICreateVideo, fields)
    if with_upload and order.input_reference is not None:
        raise invalid(
            "give input_reference as a file or as a reference, not both", "input_reference"
        )
    spec = find_model(order.model or DEFAULT_MODEL)
    resolution, aspect_ratio = None, None
    if order.size is not None and spec is not None and spec.aspect_ratios and spec.resolutions:
        # a retired model has no sizes: `resolve_request` refuses it, naming the model
        resolution, aspect_ratio = shape_of(order.size, spec)
    resolved = resolve_request(
        prompt=order.prompt,
        model=order.model,
        duration_seconds=seconds_of(order.seconds),
        resolution=resolution,
        aspect_ratio=aspect_ratio,
        with_image=with_upload or order.input_reference is not None,
        names=NAMES,
    )
    reference = order.input_reference or OpenAIImageReference()
    return Submission(
        dialect=DIALECT,
        resolved=resolved,
        image_url=reference.image_url,
        media_id=reference.file_id,
        image_fields=("input_reference.image_url", "input_reference.file_id"),
    )
