"""Streaming stored objects to clients, with single-range `Range` support."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import urllib3
from fastapi import Response
from fastapi.responses import StreamingResponse
from minio import Minio
from minio.error import S3Error
from urllib3 import BaseHTTPResponse

from api.problem import APIError, unavailable
from reelay.errors import ErrorCode

CHUNK_BYTES = 256 * 1024
# What a request to an unreachable S3 raises (beside `S3Error`, S3's own answers).
STORAGE_DOWN = (urllib3.exceptions.HTTPError, OSError)
_NOT_FOUND_CODES = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")


def api_http_client() -> urllib3.PoolManager:
    """The API's connections to S3: fail within seconds, since a client is waiting (the
    SDK's default retries a refused connection for about ten seconds)."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=2.0, read=30.0),
        retries=urllib3.Retry(total=1, backoff_factor=0.1, status_forcelist=[502, 503, 504]),
        maxsize=32,
    )


def is_missing(exc: S3Error) -> bool:
    return exc.code in _NOT_FOUND_CODES


def storage_unavailable() -> APIError:
    """S3 is down or failing: a 503 that names no host, bucket or key."""
    return unavailable("video storage", retry_after=10)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range, None for the whole object.

    Raises 416 for a range that cannot be satisfied; ignores forms it does not serve
    (multiple ranges), answering with the whole object as RFC 9110 allows.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if first_text:
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
    else:
        suffix = int(last_text)
        first, last = max(0, size - suffix), size - 1
    if first >= size or first > last:
        raise APIError(
            ErrorCode.RANGE_NOT_SATISFIABLE,
            f"range {header} is outside 0-{size - 1}",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return first, last


async def stream_object(
    s3: Minio,
    bucket: str,
    key: str,
    *,
    content_type: str,
    range_header: str | None,
    filename: str,
) -> Response:
    try:
        stat = await asyncio.to_thread(s3.stat_object, bucket, key)
    except S3Error as exc:
        if is_missing(exc):
            raise APIError(ErrorCode.NOT_FOUND, "stored file not found") from exc
        raise storage_unavailable() from exc
    except STORAGE_DOWN as exc:
        raise storage_unavailable() from exc
    size = stat.size or 0
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{filename}"',
    }
    if stat.etag:
        headers["ETag"] = f'"{stat.etag}"'
    span = parse_range(range_header, size)
    if span is None:
        first, length, status = 0, size, 200
    else:
        first, length, status = span[0], span[1] - span[0] + 1, 206
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
    headers["Content-Length"] = str(length)
    try:
        response = await asyncio.to_thread(s3.get_object, bucket, key, offset=first, length=length)
    except (S3Error, *STORAGE_DOWN) as exc:
        raise storage_unavailable() from exc
    return StreamingResponse(
        _chunks(response), status_code=status, media_type=content_type, headers=headers
    )


def _chunks(response: BaseHTTPResponse) -> Iterator[bytes]:
    """Sync iterator (Starlette runs it in a thread pool) that always releases the connection."""
    try:
        yield from response.stream(CHUNK_BYTES)
    finally:
        response.close()
        response.release_conn()
