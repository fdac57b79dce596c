"""Health check and the `/_emulator/*` control endpoints used by tests and demos."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from emulator.tasks import TaskStore


def build_router(store: TaskStore) -> APIRouter:
    router = APIRouter(tags=["control"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/_emulator/config")
    async def get_config() -> dict[str, Any]:
        return store.runtime.model_dump()

    @router.post("/_emulator/config")
    async def set_config(patch: dict[str, Any]) -> Response:
        """Change defaults for tasks created from now on; `outages` replaces the outage map."""
        try:
            store.runtime = store.runtime.updated(patch)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            return JSONResponse({"error": problems}, status_code=400)
        return JSONResponse(store.runtime.model_dump())

    @router.get("/_emulator/submissions")
    async def submissions(provider: str | None = None) -> list[dict[str, Any]]:
        return store.submissions(provider)

    @router.get("/_emulator/stats")
    async def stats() -> dict[str, dict[str, int]]:
        return store.stats()

    @router.post("/_emulator/reset", status_code=204)
    async def reset() -> Response:
        store.reset()
        return Response(status_code=204)

    return router
