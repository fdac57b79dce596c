"""`GET /v1/video/generations`: the tenant's jobs, newest first, filtered, cursor-paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api import jobs
from api.deps import CurrentTenant, SettingsDep, TemporalClient
from api.errors import APIError
from api.routers.generations import render
from api.schemas import Generation
from reelay.jobs import JobStatus

router = APIRouter(tags=["native (seed 000)"])

_STATUS_FROM_WORD = {
    "pending": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "processing": JobStatus.PROCESSING,
    "storing": JobStatus.STORING,
    "complete": JobStatus.COMPLETED,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
}


class GenerationList(BaseModel):
    object: str = "list"
    data: list[Generation]
    has_more: bool
    next_cursor: str | None = None


@router.get("/v1/video/generations", response_model_exclude_none=True)
async def list_generations(
    tenant: CurrentTenant,
    client: TemporalClient,
    settings: SettingsDep,
    status: Annotated[str | None, Query(description="pending, processing, complete, ...")] = None,
    model: str | None = None,
    app_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> GenerationList:
    where = jobs.JobFilter(
        status=_status(status),
        model=model,
        app_id=app_id,
        created_after=created_after,
        created_before=created_before,
    )
    page = await jobs.list_jobs(client, tenant, where, cursor=cursor, limit=limit)
    return GenerationList(
        data=[render(view, settings) for view in page.views],
        has_more=page.next_cursor is not None,
        next_cursor=page.next_cursor,
    )


def _status(word: str | None) -> JobStatus | None:
    if word is None:
        return None
    try:
        return _STATUS_FROM_WORD[word.lower()]
    except KeyError:
        allowed = ", ".join(sorted(_STATUS_FROM_WORD))
        raise APIError(400, "invalid_request", f"status must be one of {allowed}") from None
