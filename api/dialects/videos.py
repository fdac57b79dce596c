"""`POST /v1/videos` and `GET /v1/videos/{id}`, shared by seed 004 and the OpenAI dialect.

`POST` is OpenAI's when the body is a form (multipart, as the `openai` SDK sends it) or has
one of OpenAI's fields (`seconds`, `size`, `input_reference`); seed 004's when it has
`duration` or `aspect_ratio`; OpenAI's otherwise. `GET` answers in the dialect that created
the job; a job of another dialect answers in OpenAI's shape. Errors take OpenAI's shape.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import CurrentTenant, S3Client, SettingsDep, TemporalClient, authenticate
from api.dialects.bodies import form_fields, is_form, json_object, request_body_doc, respond
from api.dialects.common import read_live_job
from api.dialects.openai import routes as openai_routes
from api.dialects.openai import shapes as openai
from api.dialects.seed004 import routes as seed004_routes
from api.dialects.seed004 import shapes as seed004
from api.errors import errors, shaped_route

router = APIRouter(
    prefix="/v1/videos",
    tags=["OpenAI videos", "seed 004"],
    route_class=shaped_route(lambda _: openai_routes.error_response),
)


@router.post(
    "",
    response_model=None,
    responses={
        200: {"model": openai.OpenAIVideo | seed004.Seed004Video},
        **errors(400, 401, 408, 409, 413, 415, 429, 503),
    },
    openapi_extra=request_body_doc(
        [openai.OpenAICreateVideo, seed004.Seed004CreateVideo],
        form_model=openai.OpenAICreateVideoForm,
        idempotency_key=True,
        examples=openai.EXAMPLES | seed004.EXAMPLES,
    ),
)
async def create_video(
    request: Request,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> JSONResponse:
    """Submit a job: OpenAI's body (JSON or multipart) or seed 004's."""
    tenant = authenticate(request)
    key = request.headers.get("idempotency-key")
    if is_form(request):
        fields, files = await form_fields(request, settings)
        video = await openai_routes.create(fields, files, tenant, client, s3, settings, key)
        return respond(video, exclude_none=False)
    body = await json_object(request)
    if seed004.speaks(body) and not any(field in body for field in openai.FIELDS):
        return respond(await seed004_routes.create(body, tenant, client, s3, settings, key))
    video = await openai_routes.create(body, {}, tenant, client, s3, settings, key)
    return respond(video, exclude_none=False)


@router.get(
    "/{video_id}",
    response_model=None,
    responses={
        200: {"model": openai.OpenAIVideo | seed004.Seed004Video},
        **errors(401, 404, 503),
    },
)
async def retrieve_video(
    video_id: str,
    tenant: CurrentTenant,
    client: TemporalClient,
    s3: S3Client,
    settings: SettingsDep,
) -> JSONResponse:
    """The job in the dialect that created it; with `openai-poll-after-ms` while it runs."""
    view, _ = await read_live_job(client, s3, settings, video_id, tenant)
    if view.dialect == seed004.DIALECT:
        return respond(seed004.render(view, settings))
    return respond(openai.render(view), headers=openai.poll_after_headers(view), exclude_none=False)
