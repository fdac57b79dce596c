"""`python -m api`: serve the API on the configured host and port.

The server bounds what a client can hold: the size of a request head and the time it may
take to arrive (`api.server`), idle keep-alive connections, and concurrent connections (503
beyond the limit). Body sizes are capped where bodies are read (`api.dialects.bodies`).
Logging goes through `reelay.logging`.
"""

from __future__ import annotations

import uvicorn

from api.server import BoundedHeadProtocol
from reelay.settings import get_settings

KEEP_ALIVE_SECONDS = 30
MAX_CONNECTIONS = 1000

if __name__ == "__main__":
    settings = get_settings()
    uvicorn.run(
        "api.main:app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,
        http=BoundedHeadProtocol,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=MAX_CONNECTIONS,
    )
