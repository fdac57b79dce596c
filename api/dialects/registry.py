"""Every dialect by name, a job rendered in the dialect that created it, and a submit body
parsed by the dialect of its route.

The worker renders webhooks with it at send time, so signed links are fresh and never enter
workflow history; a batch line (`api.batches`) is parsed here as its route would parse it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from api.dialects.native import shapes as native
from api.dialects.openai import shapes as openai
from api.dialects.seed001 import shapes as seed001
from api.dialects.seed002 import shapes as seed002
from api.dialects.seed003 import shapes as seed003
from api.dialects.seed004 import shapes as seed004
from api.dialects.submission import Submission
from reelay.jobs import JobView
from reelay.settings import Settings

Renderer = Callable[[JobView, Settings], BaseModel]

RENDERERS: dict[str, Renderer] = {
    native.DIALECT: native.render,
    seed001.DIALECT: seed001.render,
    seed002.DIALECT: seed002.render,
    seed003.DIALECT: seed003.render,
    seed004.DIALECT: seed004.render,
    openai.DIALECT: lambda view, _settings: openai.render(view),
}


def render_in_dialect(view: JobView, settings: Settings) -> dict[str, Any]:
    """The job as its own dialect shows it (the native shape for an unknown dialect)."""
    render = RENDERERS.get(view.dialect, native.render)
    rendered: dict[str, Any] = render(view, settings).model_dump(mode="json", exclude_none=True)
    return rendered


def webhook_renderer(settings: Settings) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """For `WebhookActivities`: an event's data (a job view) as the job's dialect shows it."""

    def render(data: dict[str, Any]) -> dict[str, Any]:
        return render_in_dialect(JobView.model_validate(data), settings)

    return render


#: The submit routes, by path; each takes the body its route takes (`parse_submission`).
SUBMIT_ROUTES = (
    "/v1/video/generations",
    "/v1/videos",
    "/v2/videos/generate",
    "/api/v1/videos/generate",
)


def parse_submission(url: str, body: dict[str, Any]) -> Submission:
    """`body` parsed as `POST url` would parse a JSON body with no dialect headers: by the
    same dialect's own parser. Raises `APIError` (400 naming the field) as the route would;
    `KeyError` for a path that is not a submit route."""
    if url == "/v1/video/generations":
        if seed001.speaks({}, body):
            return seed001.submission(body)
        return native.submission(body)
    if url == "/v1/videos":
        if seed004.speaks(body) and not any(field in body for field in openai.FIELDS):
            return seed004.submission(body)
        return openai.submission(body)
    if url == "/v2/videos/generate":
        return seed002.submission(body)
    if url == "/api/v1/videos/generate":
        return seed003.submission(body)
    raise KeyError(url)
