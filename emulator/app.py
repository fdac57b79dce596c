"""The emulator's ASGI app: one router per provider protocol plus the control router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from emulator import control, fal, gemini, luma, replicate, runway, vertex
from emulator.config import EmulatorConfig
from emulator.downloads import quiet_truncation_logs
from emulator.tasks import TaskStore


def create_app(config: EmulatorConfig) -> FastAPI:
    store = TaskStore(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await store.callbacks.aclose()
        store.renders.shutdown()

    quiet_truncation_logs()
    app = FastAPI(title="Reelay provider emulator", lifespan=lifespan)
    app.include_router(control.build_router(store))
    for protocol in (runway, luma, gemini, vertex, fal, replicate):
        app.include_router(protocol.build_router(store))
    return app
