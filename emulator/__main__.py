"""`python -m emulator`: serve the emulator on the configured host and port."""

from __future__ import annotations

import uvicorn

from emulator.app import create_app
from emulator.config import EmulatorSettings


def main() -> None:
    settings = EmulatorSettings()
    uvicorn.run(
        create_app(settings.config()),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
