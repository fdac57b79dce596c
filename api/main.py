"""The FastAPI application: routers, dependencies' state and error handlers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api import dispatch, observability
from api.content import api_http_client
from api.dialects import videos
from api.dialects.native import routes as native
from api.dialects.openai import routes as openai
from api.dialects.seed002 import routes as seed002
from api.dialects.seed003 import routes as seed003
from api.dialects.seed004 import routes as seed004
from api.errors import install_error_handlers
from api.observability import Observe
from api.openapi import install_openapi
from api.routers import account, batches, callbacks, health, media, models
from providers.registry import build_adapters
from reelay import heap
from reelay.logging import configure_logging
from reelay.settings import Settings, get_settings
from reelay.storage import s3_client
from reelay.temporal import connect
from reelay.tenants import TenantDirectory
from reelay.tracing import configure_tracing, shutdown_tracing, tracing_enabled

log = structlog.get_logger()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.temporal = await connect(settings)
        app.state.adapters = build_adapters(settings)
        if not settings.dev_api_key:
            log.warning("no API keys configured: set REELAY_DEV_API_KEY")
        sweeper = asyncio.create_task(dispatch.sweep_forever(app.state.temporal, settings))
        yield
        sweeper.cancel()
        await dispatch.drain()
        for adapter in app.state.adapters.values():
            await adapter.aclose()
        shutdown_tracing()

    # Swagger UI (`/docs`) and ReDoc (`/redoc`) load their scripts from the package, not a CDN.
    app = FastAPIOffline(
        title="Reelay",
        version="0.1.0",
        summary="Durable video generation: one API in front of many video models.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.s3 = s3_client(settings, http_client=api_http_client())
    app.state.tenants = TenantDirectory(settings)
    install_error_handlers(app)
    app.add_middleware(Observe)  # outside the error handling: it sees every status sent
    if tracing_enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    install_openapi(app)
    app.include_router(health.router)
    app.include_router(observability.router)
    app.include_router(models.router)
    app.include_router(native.router)
    app.include_router(seed002.router)
    app.include_router(seed003.router)
    app.include_router(videos.router)
    app.include_router(seed004.router)
    app.include_router(openai.router)
    app.include_router(account.router)
    app.include_router(media.router)
    app.include_router(batches.router)
    app.include_router(callbacks.router)
    return app


def app() -> FastAPI:
    """Factory for `uvicorn --factory api.main:app`."""
    settings = get_settings()
    configure_logging(settings)
    configure_tracing(settings, "reelay-api")
    served = create_app(settings)
    heap.settle()  # the served process only: apps built in tests leave their process's as is
    return served
