"""Source images for image-to-video: uploads and fetched URLs, checked and stored in S3.

Only PNG, JPEG and WebP are accepted, recognized from their bytes (not a declared type or a
file name) and fully decoded once, so a truncated or disguised file is refused up front.
Each image is stored under `media/<uuid4>` with its tenant in the object's metadata.
"""

from __future__ import annotations

import asyncio
import io
import uuid

import httpx
from minio import Minio
from minio.error import S3Error
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel

from reelay.jobs import ImageRef
from reelay.settings import Settings
from reelay.ssrf import UnsafeURLError, check_url, pinned_stream
from reelay.storage import media_key

CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
ACCEPTED = "a PNG, JPEG or WebP image"
# Decoding is bounded too: a small file can declare a huge canvas.
MAX_PIXELS = 25_000_000
FETCH_TIMEOUT_SECONDS = 30.0
_FETCH_CHUNK_BYTES = 64 * 1024
_META = "x-amz-meta-"
_NOT_FOUND_CODES = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")


class InvalidMediaError(ValueError):
    """An image the client gave is refused (HTTP 400); the message names the field."""


class MediaTooLargeError(InvalidMediaError):
    """The image is over `media_max_bytes` (HTTP 413)."""


class StoredMedia(BaseModel):
    media_id: str
    tenant_id: str
    content_type: str
    size_bytes: int
    width: int
    height: int

    @property
    def ref(self) -> ImageRef:
        return ImageRef(key=media_key(self.media_id), content_type=self.content_type)


async def store_upload(
    s3: Minio,
    settings: Settings,
    tenant_id: str,
    data: bytes,
    declared_type: str | None = None,
    *,
    field: str = "file",
) -> StoredMedia:
    """Check `data` and store it as a new media object of `tenant_id`.

    `declared_type` (the client's Content-Type) only makes a refusal clearer: what the
    bytes are decides. Raises `InvalidMediaError` or `MediaTooLargeError`.
    """
    if not data:
        raise InvalidMediaError(f"{field} is empty")
    if len(data) > settings.media_max_bytes:
        raise MediaTooLargeError(_too_large(field, settings))
    content_type, width, height = await asyncio.to_thread(
        _decode, data, field=field, declared_type=declared_type
    )
    media = StoredMedia(
        media_id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        content_type=content_type,
        size_bytes=len(data),
        width=width,
        height=height,
    )
    await asyncio.to_thread(
        s3.put_object,
        settings.s3_bucket,
        media.ref.key,
        io.BytesIO(data),
        len(data),
        content_type=content_type,
        metadata={
            _META + "tenant-id": tenant_id,
            _META + "width": str(width),
            _META + "height": str(height),
        },
    )
    return media


async def get_media(
    s3: Minio, settings: Settings, tenant_id: str, media_id: str
) -> StoredMedia | None:
    """The tenant's media object `media_id`, or None (also for another tenant's)."""
    try:
        media_id = str(uuid.UUID(media_id))
    except ValueError:
        return None
    try:
        stat = await asyncio.to_thread(s3.stat_object, settings.s3_bucket, media_key(media_id))
    except S3Error as exc:
        if exc.code in _NOT_FOUND_CODES:
            return None
        raise
    meta = {key.lower(): value for key, value in (stat.metadata or {}).items()}
    if meta.get(_META + "tenant-id") != tenant_id:
        return None
    return StoredMedia(
        media_id=media_id,
        tenant_id=tenant_id,
        content_type=stat.content_type or "application/octet-stream",
        size_bytes=stat.size or 0,
        width=int(meta.get(_META + "width", 0)),
        height=int(meta.get(_META + "height", 0)),
    )


async def fetch_image_url(url: str, settings: Settings, *, field: str = "image_url") -> bytes:
    """Download a client's image URL: SSRF-checked, size-capped, no redirects, timed out.

    Raises `InvalidMediaError` (or `MediaTooLargeError`) naming `field`.
    """
    try:
        checked = await check_url(url, settings, field=field)
    except UnsafeURLError as exc:
        raise InvalidMediaError(str(exc)) from exc
    except httpx.HTTPError as exc:
        raise InvalidMediaError(f"{field} could not be fetched: {exc}") from exc
    headers = {"accept": ", ".join(CONTENT_TYPES.values())}
    try:
        async with pinned_stream(
            checked, "GET", time_limit=FETCH_TIMEOUT_SECONDS, headers=headers
        ) as response:
            _check_response(response, settings, field=field)
            data = bytearray()
            async for chunk in response.aiter_bytes(_FETCH_CHUNK_BYTES):
                data += chunk
                if len(data) > settings.media_max_bytes:
                    raise MediaTooLargeError(_too_large(field, settings))
            return bytes(data)
    except TimeoutError as exc:
        raise InvalidMediaError(
            f"{field} did not answer within {FETCH_TIMEOUT_SECONDS:g} s"
        ) from exc
    except httpx.HTTPError as exc:
        raise InvalidMediaError(f"{field} could not be fetched: {exc}") from exc


async def resolve_image(
    s3: Minio,
    settings: Settings,
    tenant_id: str,
    *,
    image_url: str | None,
    media_id: str | None,
    image_field: str = "image_url",
    media_field: str = "media_id",
) -> ImageRef | None:
    """The job's source image from a request: a URL (fetched and stored) or a media id.

    `image_field` / `media_field` are the request's own field names, for the messages.
    Raises `InvalidMediaError` (400) or `MediaTooLargeError` (413).
    """
    if image_url and media_id:
        raise InvalidMediaError(f"give {image_field} or {media_field}, not both")
    if image_url:
        data = await fetch_image_url(image_url, settings, field=image_field)
        stored = await store_upload(s3, settings, tenant_id, data, field=image_field)
        return stored.ref
    if media_id:
        found = await get_media(s3, settings, tenant_id, media_id)
        if found is None:
            raise InvalidMediaError(f"{media_field} {media_id} not found")
        return found.ref
    return None


def _too_large(field: str, settings: Settings) -> str:
    return f"{field} is larger than the {settings.media_max_bytes} byte limit"


def _check_response(response: httpx.Response, settings: Settings, *, field: str) -> None:
    if 300 <= response.status_code < 400:
        raise InvalidMediaError(
            f"{field} redirects (HTTP {response.status_code}); give the final URL"
        )
    if response.status_code != 200:
        raise InvalidMediaError(f"{field} answered HTTP {response.status_code}")
    content_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type not in (*CONTENT_TYPES.values(), "application/octet-stream"):
        raise InvalidMediaError(
            f"{field} must serve {ACCEPTED}, not {content_type or 'no content type'}"
        )
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > settings.media_max_bytes:
        raise MediaTooLargeError(_too_large(field, settings))


def _decode(data: bytes, *, field: str, declared_type: str | None) -> tuple[str, int, int]:
    """(content type, width, height) of an image that really decodes."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(CONTENT_TYPES))
    except UnidentifiedImageError as exc:
        got = f" (got {declared_type})" if declared_type else ""
        raise InvalidMediaError(f"{field} must be {ACCEPTED}{got}") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidMediaError(f"{field} is not a readable image: {exc}") from exc
    with image:
        if image.width * image.height > MAX_PIXELS:
            raise InvalidMediaError(
                f"{field} is {image.width}x{image.height} pixels; "
                f"at most {MAX_PIXELS // 1_000_000} megapixels are accepted"
            )
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise InvalidMediaError(f"{field} is not a readable image: {exc}") from exc
        return CONTENT_TYPES[image.format or ""], image.width, image.height
