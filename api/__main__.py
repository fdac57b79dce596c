"""`python -m api`: serve the API on the configured host and port."""

from __future__ import annotations

import uvicorn

from reelay.settings import get_settings

if __name__ == "__main__":
    settings = get_settings()
    uvicorn.run(
        "api.main:app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
    )
