"""`/v1/media`: upload a source image once, then pass its `media_id` to image-to-video jobs."""

from __future__ import annotations

from fastapi import APIRouter, UploadFile
from pydantic import BaseModel

from api.deps import CurrentTenant, S3Client, SettingsDep
from api.errors import APIError, not_found
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


@router.post("", status_code=201)
async def upload_media(
    file: UploadFile, tenant: CurrentTenant, s3: S3Client, settings: SettingsDep
) -> MediaInfo:
    """Store a PNG, JPEG or WebP image (multipart field `file`) of at most `media_max_bytes`."""
    data = await file.read(settings.media_max_bytes + 1)
    try:
        media = await store_upload(s3, settings, tenant.id, data, file.content_type)
    except MediaTooLargeError as exc:
        raise APIError(413, "payload_too_large", str(exc)) from exc
    except InvalidMediaError as exc:
        raise APIError(400, "invalid_request", str(exc)) from exc
    return _info(media)


@router.get("/{media_id}")
async def read_media(
    media_id: str, tenant: CurrentTenant, s3: S3Client, settings: SettingsDep
) -> MediaInfo:
    media = await get_media(s3, settings, tenant.id, media_id)
    if media is None:
        raise not_found(f"media {media_id} not found")
    return _info(media)
