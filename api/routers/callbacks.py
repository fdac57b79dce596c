"""Provider callbacks: verify, answer fast, and wake the job's workflow.

The URL carries an unguessable per-job token (the only protection Luma's unsigned callbacks
have); signed providers are verified by their adapter as well (signature and freshness).
The workflow takes each callback event once, so a replay is refused and changes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import SettingsDep, TemporalClient
from api.dialects.bodies import read_body
from api.errors import errors
from api.problem import APIError
from providers.base import CallbackRejected, ProviderAdapter
from reelay.callbacks import token_matches
from reelay.errors import ErrorCode
from workflows.video_generation import VideoGenerationWorkflow

router = APIRouter(tags=["provider callbacks"])


class CallbackAccepted(BaseModel):
    received: bool = True


@router.post(
    "/v1/providers/{provider}/callbacks/{job_id}",
    responses=errors(400, 401, 404, 408, 409, 413, 503),
)
async def provider_callback(
    provider: str,
    job_id: str,
    token: Annotated[str, Query(min_length=1)],
    request: Request,
    client: TemporalClient,
    settings: SettingsDep,
) -> CallbackAccepted:
    adapters: dict[str, ProviderAdapter] = request.app.state.adapters
    adapter = adapters.get(provider)
    if adapter is None or not token_matches(settings, job_id, token):
        raise APIError(ErrorCode.NOT_FOUND, "unknown callback")
    try:
        event = adapter.verify_callback(request.headers, await read_body(request))
    except CallbackRejected as exc:
        raise APIError(ErrorCode.UNAUTHORIZED, f"callback rejected: {exc}") from exc
    handle = client.get_workflow_handle(job_id)
    try:
        await handle.execute_update(VideoGenerationWorkflow.provider_callback, event.event_id)
    except WorkflowUpdateFailedError as exc:
        raise APIError(ErrorCode.CONFLICT, "callback already received") from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            # The job already finished: nothing left to wake.
            return CallbackAccepted(received=False)
        raise APIError(ErrorCode.SERVICE_UNAVAILABLE, "try again later") from exc
    return CallbackAccepted()
