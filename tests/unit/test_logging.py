"""Error logging is cheap and bounded (issue 11 item 0): structured JSON, no locals, a few
frames, written by a background thread."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
import structlog

from api.main import create_app
from reelay.logging import MAX_FRAMES, configure_logging, shutdown_logging
from tests.conftest import isolated_settings


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """JSON logs into a buffer; the previous set-up restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging(isolated_settings(log_json=True), stream=buffer)
    try:
        yield buffer
    finally:
        shutdown_logging()
        structlog.reset_defaults()
        root.handlers, root.level = handlers, level


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
