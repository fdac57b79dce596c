"""Every dialect by name, and a job rendered in the dialect that created it.

Pure (no FastAPI): the worker renders webhooks with it at send time, so signed links are
fresh and never enter workflow history.
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
