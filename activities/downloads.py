"""Provider output downloads that survive a broken connection: what arrived is kept and the
rest is asked for with an HTTP `Range` request, instead of starting again from the first byte."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from providers.base import ProviderAdapter, Resume
from providers.errors import RetryableProviderError

# Resumes within one activity attempt; past them the attempt fails and Temporal retries it.
MAX_RESUMES = 5
_CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")


async def download_to(
    adapter: ProviderAdapter, url: str, target: Path, progress: dict[str, Any]
) -> None:
    """Stream an output into `target`, resuming after a cut (a short body or a broken
    connection) from where it stopped; a server that answers a resume with the whole file
    (a 200: no `Range` support, or the file changed) is read again from the start."""
    size = 0
    total: int | None = None
    validator: str | None = None
    cut: RetryableProviderError | None = None
    with target.open("wb") as out:
        for _ in range(MAX_RESUMES + 1):
            resume = Resume(offset=size, validator=validator) if size else None
            try:
                async with adapter.download(url, resume=resume) as response:
                    if response.status_code != httpx.codes.PARTIAL_CONTENT:
                        out.seek(0)
                        out.truncate()
                        size = 0
                        validator = response.headers.get("etag") or response.headers.get(
                            "last-modified"
                        )
                    total = _total_length(response, size)
                    async for chunk in response.aiter_bytes():  # as it arrives: a cut keeps it
                        out.write(chunk)
                        size += len(chunk)
                        progress["downloaded_bytes"] = size
            except RetryableProviderError as exc:  # the connection broke mid-body
                if size == 0:
                    raise
                cut = exc
                continue
            if total is None or size == total:
                return
            cut = RetryableProviderError(
                f"download truncated: got {size} of {total} bytes", provider=adapter.name
            )
    assert cut is not None
    raise cut


def _total_length(response: httpx.Response, offset: int) -> int | None:
    """The whole file's length: from `Content-Range` of a 206, else `Content-Length`."""
    if response.status_code == httpx.codes.PARTIAL_CONTENT:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
        return int(match.group(1)) if match else None
    length = response.headers.get("content-length")
    return int(length) if length is not None and length.isdigit() else None
