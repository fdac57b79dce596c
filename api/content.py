"""Streaming stored objects to clients, with single-range `Range` support."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

from fastapi import Response
from fastapi.responses import StreamingResponse
from minio import Minio
from minio.error import S3Error
from urllib3 import BaseHTTPResponse

from api.errors import APIError

CHUNK_BYTES = 256 * 1024
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
            416,
            "range_not_satisfiable",
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
        raise APIError(404, "not_found", "stored file not found") from exc
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
    response = await asyncio.to_thread(s3.get_object, bucket, key, offset=first, length=length)
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
