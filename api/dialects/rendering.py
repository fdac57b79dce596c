"""A job in the dialect that created it, as a JSON body: for webhooks, which are rendered
at send time (so signed links are fresh and never enter workflow history)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api.dialects import openai, seed001, seed002, seed003, seed004
from api.routers import generations
from reelay.jobs import JobView
from reelay.settings import Settings


def render_in_dialect(view: JobView, settings: Settings) -> dict[str, Any]:
    body: Any
    match view.dialect:
        case openai.DIALECT:
            body = openai.render(view)
        case seed001.DIALECT:
            body = seed001.render(view, settings)
        case seed002.DIALECT:
            body = seed002.render(view, settings)
        case seed003.DIALECT:
            body = seed003.render(view, settings)
        case seed004.DIALECT:
            body = seed004.render(view, settings)
        case _:
            body = generations.render(view, settings)
    rendered: dict[str, Any] = body.model_dump(mode="json", exclude_none=True)
    return rendered


def webhook_renderer(settings: Settings) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """For `WebhookActivities`: an event's data (a job view) as the job's dialect shows it."""

    def render(data: dict[str, Any]) -> dict[str, Any]:
        return render_in_dialect(JobView.model_validate(data), settings)

    return render
