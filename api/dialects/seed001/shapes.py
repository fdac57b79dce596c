"""Seed 001: Google-style video operations on the native path `/v1/video/generations`.

Told apart from seed 000 by the `X-App-ID` header or by a `parameters` / `response_format`
field (see `speaks`). The job id is Reelay's; `operation_name` is derived from it. Errors are
`{"error": "<message>"}`. Statuses: `pending` (queued or running), `completed`, `failed`
(a cancelled job is `failed` with the error `Video generation was cancelled`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from api.dialects.catalog_fields import AspectRatio, Prompt, Resolution, Seconds, TextModelId
from api.dialects.links import signed_links
from api.dialects.outcome import failure_of
from api.dialects.submission import Submission
from api.problem import invalid, parse
from providers.catalog import find_model, resolve_request
from reelay.errors import ErrorCode
from reelay.jobs import JobStatus, JobView
from reelay.settings import Settings

DIALECT = "seed001"
APP_HEADER = "x-app-id"
MISSING_FIELDS = "Missing required fields: model and prompt"
CANCELLED_MESSAGE = "Video generation was cancelled"

NAMES = {
    "aspect_ratio": "parameters.aspectRatio",
    "negative_prompt": "parameters.negativePrompt",
    "duration_seconds": "parameters.durationSeconds",
    "resolution": "parameters.resolution",
}
# The seed's own wording of some errors.
MESSAGES = {
    ErrorCode.INSUFFICIENT_CREDITS: "Insufficient balance",
    ErrorCode.SERVICE_UNAVAILABLE: "Failed to start video generation",
}


class Seed001Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aspectRatio: AspectRatio | None = None
    negativePrompt: str | None = Field(default=None, description="What to keep out")
    durationSeconds: Seconds | None = None
    resolution: Resolution | None = None


_LION = {
    "model": "google/veo-3.0-generate-preview",
    "prompt": "A cinematic shot of a majestic lion in the savannah.",
    "parameters": {"aspectRatio": "16:9", "negativePrompt": "cartoon, drawing, low quality"},
}
# Request examples (OpenAPI `Example` objects), the requests of seed 001's own docs.
EXAMPLES: dict[str, dict[str, Any]] = {
    "seed 001: request": {
        "summary": "seed 001's request body (JavaScript and Python)",
        "value": {**_LION, "response_format": "mp4"},
    },
    "seed 001: cURL": {
        "summary": "seed 001's cURL request (with the X-App-ID header)",
        "value": _LION,
    },
}


class CreateVideoOperation(BaseModel):
    """`POST /v1/video/generations` in seed 001's shape."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [example["value"] for example in EXAMPLES.values()]},
    )

    model: TextModelId
    prompt: Prompt
    parameters: Seed001Parameters | None = None
    # The route refuses other formats in the seed's words.
    response_format: Annotated[
        str | None, WithJsonSchema({"anyOf": [{"enum": ["mp4"]}, {"type": "null"}]})
    ] = None
    appId: str | None = Field(default=None, description="when the X-App-ID header is absent")


class Seed001ErrorBody(BaseModel):
    """An error as seed 001 answers it."""

    error: str


class VideoOperation(BaseModel):
    """A job as seed 001 shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "job_vid_5f1c",
                    "operation_name": "operations/veo-3.0-generate-preview/5f1c",
                    "status": "completed",
                    "video_url": "https://reelay.example/v1/video/generations/job_vid_5f1c/content?expires=1&signature=ab",
                }
            ]
        }
    )

    id: str
    operation_name: str
    status: str = Field(description="pending, completed or failed")
    video_url: str | None = None
    error: str | None = None


def speaks(headers: Mapping[str, str], body: dict[str, Any]) -> bool:
    return APP_HEADER in headers or "parameters" in body or "response_format" in body


def render(view: JobView, settings: Settings) -> VideoOperation:
    model = view.requested_model.rsplit("/", 1)[-1]
    body = VideoOperation(
        id=view.job_id,
        operation_name=f"operations/{model}/{view.job_id.removeprefix('job_vid_')}",
        status="pending",
    )
    if view.status is JobStatus.COMPLETED:
        body.status = "completed"
        links = signed_links(view, settings)
        body.video_url = links[0] if links else None
    elif view.status is JobStatus.CANCELLED:
        body.status, body.error = "failed", CANCELLED_MESSAGE
    elif (failure := failure_of(view)) is not None:
        body.status, body.error = "failed", failure.message
    return body


def submission(body: dict[str, Any]) -> Submission:
    """Seed 001's submit body, parsed and resolved (its `X-App-ID` header is the route's)."""
    if not body.get("model") or not body.get("prompt"):
        raise invalid(MISSING_FIELDS)
    order = parse(CreateVideoOperation, body)
    if order.response_format not in (None, "mp4"):
        raise invalid(
            f"Unsupported response_format '{order.response_format}': only mp4 is supported",
            "response_format",
        )
    if find_model(order.model) is None:
        raise invalid("Model not found", "model")
    parameters = order.parameters or Seed001Parameters()
    resolved = resolve_request(
        prompt=order.prompt,
        model=order.model,
        duration_seconds=parameters.durationSeconds,
        resolution=parameters.resolution,
        aspect_ratio=parameters.aspectRatio,
        negative_prompt=parameters.negativePrompt,
        names=NAMES,
    )
    return Submission(dialect=DIALECT, resolved=resolved, app_id=order.appId)
