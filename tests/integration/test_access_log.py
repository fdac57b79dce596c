"""The API's access log (uvicorn's own line per request, on a real server) keeps a signed
link's credential out: the line is written, its `signature` value redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from reelay import devstack
from reelay.logging import REDACTED, shutdown_logging
from tests.support import serving_app


@pytest.fixture
def uvicorn_to_root() -> Iterator[None]:
    """uvicorn's loggers as `python -m api` leaves them (`log_config=None`): no handlers of
    their own, propagating to the root's. A server of another test in this process may have
    configured them with uvicorn's default config."""
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(logger.handlers[:], logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [], True
    try:
        yield
    finally:
        for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate


@pytest.mark.usefixtures("uvicorn_to_root")
def test_a_signed_links_signature_is_redacted_in_the_access_log(json_logs: io.StringIO) -> None:
    app = FastAPI()

    @app.get("/v1/videos/{video_id}/content")
    async def content(video_id: str) -> dict[str, str]:
        return {"id": video_id}

    link = "/v1/videos/vid_1/content?expires=1796741509&signature=9f2c0ffee&variant=video"
    with serving_app(app, devstack.free_port(), log_level="info", log_config=None) as base:
        assert httpx.get(base + link).status_code == 200
    shutdown_logging()
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines() if line.strip()]
    access = [line["event"] for line in lines if line.get("logger") == "uvicorn.access"]
    assert access, lines
    assert "9f2c0ffee" not in json_logs.getvalue()
    redacted = f"/v1/videos/vid_1/content?expires=1796741509&signature={REDACTED}&variant=video"
    assert any(redacted in line for line in access), access
