"""A submit body parsed by its dialect's own parser, before the checks that need I/O.

Each dialect's `submission(body)` (in its `shapes`) returns one; its route and a batch line
(`api.batches`) both go on from it through `api.dialects.admission.admit`."""

from __future__ import annotations

from pydantic import BaseModel

from providers.catalog import ResolvedRequest


class Submission(BaseModel):
    dialect: str
    resolved: ResolvedRequest
    app_id: str | None = None
    webhook_url: str | None = None
    webhook_events: list[str] | None = None
    webhook_fields: tuple[str, str] = ("webhook_url", "webhook_events")
    image_url: str | None = None
    media_id: str | None = None
    image_fields: tuple[str, str] = ("image_url", "media_id")
