"""Annotated dependencies shared by the routers.

Each is an `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread
hop per dependency per request, which a busy machine turns into milliseconds of waiting."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from minio import Minio
from temporalio.client import Client

from api.problem import APIError
from reelay.errors import ErrorCode
from reelay.settings import Settings
from reelay.tenants import Tenant, TenantDirectory


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _temporal(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


async def _s3(request: Request) -> Minio:
    s3: Minio = request.app.state.s3
    return s3


def api_key_from(request: Request) -> str | None:
    """The caller's key: `Authorization: Bearer <key>` or `x-api-key: <key>`."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def authenticate(request: Request) -> Tenant:
    key = api_key_from(request)
    if key is None:
        raise APIError(ErrorCode.UNAUTHORIZED, "Missing API key: send Authorization: Bearer <key>")
    directory: TenantDirectory = request.app.state.tenants
    tenant = directory.authenticate(key)
    if tenant is None:
        raise APIError(ErrorCode.UNAUTHORIZED, "Invalid API key")
    return tenant


async def _current_tenant(request: Request) -> Tenant:
    return authenticate(request)


SettingsDep = Annotated[Settings, Depends(_settings)]
TemporalClient = Annotated[Client, Depends(_temporal)]
S3Client = Annotated[Minio, Depends(_s3)]
CurrentTenant = Annotated[Tenant, Depends(_current_tenant)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="retry-safe submits: the same key and request return the first job",
    ),
]
