"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import S3Client, SettingsDep, TemporalClient
from providers.registry import configured_providers, deployed_providers

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_SECONDS = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Temporal or S3 unreachable"}})
async def readyz(client: TemporalClient, s3: S3Client, settings: SettingsDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(client.service_client.check_health(), CHECK_TIMEOUT_SECONDS)
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"unavailable: {type(exc).__name__}"
    try:
        found = await asyncio.wait_for(
            asyncio.to_thread(s3.bucket_exists, settings.s3_bucket), CHECK_TIMEOUT_SECONDS
        )
        checks["s3"] = "ok" if found else "bucket missing"
    except Exception as exc:
        checks["s3"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    # A provider without a key (in production) is reported, not fatal: its models are
    # refused or fail over, the rest keep working.
    missing = sorted(set(deployed_providers(settings)) - configured_providers(settings))
    providers = "ok" if not missing else f"no key configured: {', '.join(missing)}"
    body = {"status": "ok" if ready else "unavailable", "checks": checks, "providers": providers}
    return JSONResponse(body, 200 if ready else 503)
