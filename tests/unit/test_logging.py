"""Error logging is cheap and bounded (issue 11 item 0): structured JSON, no locals, a few
frames, written by a background thread."""

from __future__ import annotations

import io
import json
import logging
import time

import httpx
import structlog

from api.main import create_app
from reelay.logging import MAX_FRAMES, shutdown_logging
from tests.conftest import isolated_settings


def deep(n: int) -> None:
    secret_local = "s3cr3t-local-value"
    if n == 0:
        raise RuntimeError(f"boom {len(secret_local)}")
    deep(n - 1)


def test_an_exception_is_logged_as_one_bounded_json_line_without_locals(
    json_logs: io.StringIO,
) -> None:
    try:
        deep(200)
    except RuntimeError as exc:
        started = time.perf_counter()
        structlog.get_logger().error("unhandled error", path="/x", exc_info=exc)
        elapsed = time.perf_counter() - started
    shutdown_logging()
    lines = [line for line in json_logs.getvalue().splitlines() if line.strip()]
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "unhandled error"
    assert "s3cr3t-local-value" not in lines[0]
    frames = record["exception"][0]["frames"]
    assert len(frames) <= MAX_FRAMES + 1
    assert all("locals" not in frame or not frame["locals"] for frame in frames)
    assert elapsed < 0.5


async def test_an_unexpected_error_is_a_500_in_the_dialects_shape_and_goes_no_further() -> None:
    """The server's own error logging (a traceback per 500) is never reached: the app
    answers the 500 itself and raises nothing."""
    app = create_app(isolated_settings())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"type": "internal_error", "message": "internal server error"}
    }


async def test_an_outbound_request_never_logs_its_url(json_logs: io.StringIO) -> None:
    """httpx's INFO line per request names the URL, a provider's signed output URL among
    them: it is not written; the library's warnings still are."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"video")

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        response = await http.get("https://cdn.provider.test/out.mp4?exp=1&sig=s3cr3t-sig")
    assert response.status_code == 200
    logging.getLogger("httpx").warning("a library warning")
    shutdown_logging()
    written = json_logs.getvalue()
    assert "s3cr3t-sig" not in written
    assert "a library warning" in written
