"""`/v1/media`: upload a source image once, then pass its `media_id` to image-to-video jobs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import CurrentTenant, S3Client, SettingsDep, authenticate
from api.dialects.bodies import form_fields, inline_schema, is_form
from api.errors import errors
from api.problem import APIError, invalid, not_found
from reelay.errors import ErrorCode
from reelay.media import InvalidMediaError, MediaTooLargeError, StoredMedia, get_media, store_upload

router = APIRouter(prefix="/v1/media", tags=["media"])


class MediaInfo(BaseModel):
    media_id: str
    content_type: str
    size_bytes: int
    width: int
    height: int


def _info(media: StoredMedia) -> MediaInfo:
    return MediaInfo.model_validate(media, from_attributes=True)


class MediaUpload(BaseModel):
    file: bytes = Field(
        description="PNG, JPEG or WebP image", json_schema_extra={"format": "binary"}
    )


@router.post(
    "",
    status_code=201,
    responses=errors(400, 401, 408, 413, 415, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": inline_schema(MediaUpload)}},
        }
    },
)
async def upload_media(request: Request, s3: S3Client, settings: SettingsDep) -> MediaInfo:
    """Store a PNG, JPEG or WebP image (multipart field `file`) of at most `media_max_bytes`."""
    tenant = authenticate(request)
    if not is_form(request):
        raise APIError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send the image as multipart/form-data")
    _, files = await form_fields(request, settings)
    file = files.get("file")
    if file is None:
        raise invalid("file is required", "file")
    data = await file.read(settings.media_max_bytes + 1)
    try:
        media = await store_upload(s3, settings, tenant.id, data, file.content_type)
    except MediaTooLargeError as exc:
        raise APIError(ErrorCode.PAYLOAD_TOO_LARGE, str(exc)) from exc
    except InvalidMediaError as exc:
        raise APIError(ErrorCode.INVALID_REQUEST, str(exc)) from exc
    return _info(media)


@router.get("/{media_id}", responses=errors(401, 404, 503))
async def read_media(
    media_id: str, tenant: CurrentTenant, s3: S3Client, settings: SettingsDep
) -> MediaInfo:
    media = await get_media(s3, settings, tenant.id, media_id)
    if media is None:
        raise not_found(f"media {media_id} not found")
    return _info(media)
