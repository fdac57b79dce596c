"""Seed 001: Google-style video operations on the native path `/v1/video/generations`.

Told apart from seed 000 by the `X-App-ID` header or by a `parameters` / `response_format`
field (see `speaks`). The job id is Reelay's; `operation_name` is derived from it. Errors are
`{"error": "<message>"}`. Statuses: `pending` (queued or running), `completed`, `failed`
(a cancelled job is `failed` with the error `Video generation was cancelled`).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from temporalio.client import Client

from api.deps import authenticate
from api.dialects.bodies import parse, respond
from api.dialects.common import signed_links, submit
from api.errors import APIError, answer_errors_in
from providers.catalog import find_model, resolve_request
from reelay.jobs import JobStatus, JobView
from reelay.settings import Settings

DIALECT = "seed001"
APP_HEADER = "x-app-id"
MISSING_FIELDS = "Missing required fields: model and prompt"

_NAMES = {
    "aspect_ratio": "parameters.aspectRatio",
    "negative_prompt": "parameters.negativePrompt",
    "duration_seconds": "parameters.durationSeconds",
    "resolution": "parameters.resolution",
}
_MESSAGES = {
    "insufficient_credits": "Insufficient balance",
    "service_unavailable": "Failed to start video generation",
}


class Seed001Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aspectRatio: str | None = Field(default=None, description="16:9 (or 9:16 where served)")
    negativePrompt: str | None = Field(default=None, description="What to keep out")
    durationSeconds: StrictInt | None = Field(default=None, description="Veo's own name")
    resolution: str | None = Field(default=None, description="720p or 1080p")


class CreateVideoOperation(BaseModel):
    """`POST /v1/video/generations` in seed 001's shape."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "google/veo-3.0-generate-preview",
                    "prompt": "A cinematic shot of a majestic lion in the savannah.",
                    "parameters": {
                        "aspectRatio": "16:9",
                        "negativePrompt": "cartoon, drawing, low quality",
                    },
                    "response_format": "mp4",
                }
            ]
        },
    )

    model: str = Field(description="Catalog model id, e.g. google/veo-3.0-generate-preview")
    prompt: str
    parameters: Seed001Parameters | None = None
    response_format: str | None = Field(default=None, description="mp4 (the only format)")
    appId: str | None = Field(default=None, description="when the X-App-ID header is absent")


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


def speaks(request: Request, body: dict[str, Any]) -> bool:
    return APP_HEADER in request.headers or "parameters" in body or "response_format" in body


def error_response(exc: APIError) -> JSONResponse:
    """`{"error": "<message>"}` with the seed's wording where it has one."""
    message = _MESSAGES.get(exc.error_type, exc.message)
    return JSONResponse({"error": message}, exc.status_code, headers=exc.headers)


async def create(
    request: Request,
    body: dict[str, Any],
    client: Client,
    settings: Settings,
    *,
    app_id: str | None,
) -> JSONResponse:
    """Submit `body` (seed 001's) for `X-App-ID` `app_id`; errors from here on in its shape."""
    answer_errors_in(request, error_response)
    tenant = authenticate(request)
    if not body.get("model") or not body.get("prompt"):
        raise APIError(400, "invalid_request", MISSING_FIELDS)
    order = parse(CreateVideoOperation, body)
    if order.response_format not in (None, "mp4"):
        raise APIError(
            400,
            "invalid_request",
            f"Unsupported response_format '{order.response_format}': only mp4 is supported",
        )
    if find_model(order.model) is None:
        raise APIError(400, "invalid_request", "Model not found")
    parameters = order.parameters or Seed001Parameters()
    resolved = resolve_request(
        prompt=order.prompt,
        model=order.model,
        duration_seconds=parameters.durationSeconds,
        resolution=parameters.resolution,
        aspect_ratio=parameters.aspectRatio,
        negative_prompt=parameters.negativePrompt,
        names=_NAMES,
    )
    admission = await submit(
        client,
        settings,
        tenant,
        resolved,
        dialect=DIALECT,
        app_id=app_id or order.appId,
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return respond(render(admission.view, settings), 202)


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
    elif view.status is JobStatus.FAILED:
        body.status = "failed"
        body.error = view.error.message if view.error else "Video generation failed"
    elif view.status is JobStatus.CANCELLED:
        body.status = "failed"
        body.error = "Video generation was cancelled"
    return body
