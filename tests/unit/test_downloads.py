"""Resumed downloads (`activities/downloads.py`) over a real adapter's HTTP client, with an
`httpx.MockTransport` that cuts the body, serves ranges, or ignores them as servers may."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from activities.downloads import download_to
from providers.errors import RetryableProviderError
from providers.http import HttpAdapter, ProviderHttp

BODY = bytes(range(256)) * 4096  # 1 MiB
ETAG = '"v1"'


class CutStream(httpx.AsyncByteStream):
    """A body that breaks off after `cut` bytes, as a dropped connection does."""

    def __init__(self, data: bytes, cut: int | None) -> None:
        self._data, self._cut = data, cut

    async def __aiter__(self) -> Any:
        end = len(self._data) if self._cut is None else self._cut
        for start in range(0, end, 64 * 1024):
            yield self._data[start : min(end, start + 64 * 1024)]
        if self._cut is not None:
            raise httpx.RemoteProtocolError("peer closed connection without sending body")


class Server:
    """Serves BODY; the first `cuts` answers break off half way; honours Range unless told."""

    def __init__(self, *, cuts: int, ranges: bool = True, changes_after_first: bool = False):
        self.cuts, self.ranges, self.changes = cuts, ranges, changes_after_first
        self.etag = ETAG
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        start = 0
        status = 200
        wanted = request.headers.get("range")
        if wanted and self.ranges and request.headers.get("if-range") in (None, self.etag):
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            status = 206
        part = BODY[start:]
        cut = len(part) // 2 if self.cuts > 0 else None
        self.cuts -= 1
        headers = {"content-length": str(len(part)), "etag": self.etag}
        if self.changes:
            self.etag = '"v2"'  # later answers are of a new version
        if status == 206:
            headers["content-range"] = f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"
        return httpx.Response(status, headers=headers, stream=CutStream(part, cut))


class Adapter(HttpAdapter):
    name = "mock"

    def __init__(self, server: Server) -> None:
        self._http = ProviderHttp(
            "mock", "https://api.example", {}, transport=httpx.MockTransport(server)
        )


async def fetch(server: Server, tmp_path: Path) -> bytes:
    target = tmp_path / "video.mp4"
    progress: dict[str, Any] = {}
    await download_to(Adapter(server), "https://cdn.example/v.mp4", target, progress)  # type: ignore[arg-type]
    assert progress["downloaded_bytes"] == len(BODY)
    return target.read_bytes()


async def test_a_cut_download_is_resumed_with_a_range_request(tmp_path: Path) -> None:
    server = Server(cuts=2)
    data = await fetch(server, tmp_path)
    assert hashlib.sha256(data).digest() == hashlib.sha256(BODY).digest()
    first, second, third = server.requests
    assert "range" not in first.headers
    assert second.headers["range"] == f"bytes={len(BODY) // 2}-"
    assert second.headers["if-range"] == ETAG
    assert (
        third.headers["range"].startswith("bytes=")
        and third.headers["range"] != second.headers["range"]
    )


async def test_a_server_without_ranges_sends_the_file_again_and_it_is_rewritten(
    tmp_path: Path,
) -> None:
    server = Server(cuts=1, ranges=False)
    assert await fetch(server, tmp_path) == BODY
    assert len(server.requests) == 2


async def test_a_changed_file_is_read_whole_again(tmp_path: Path) -> None:
    server = Server(cuts=1, changes_after_first=True)
    assert await fetch(server, tmp_path) == BODY
    assert server.requests[1].headers["if-range"] == ETAG  # the rest of the first version...
    assert len(server.requests) == 2  # ...answered whole (a 200) as the file had changed


async def test_a_download_that_keeps_breaking_fails_the_attempt(tmp_path: Path) -> None:
    with pytest.raises(RetryableProviderError):
        await fetch(Server(cuts=100), tmp_path)
