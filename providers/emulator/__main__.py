"""`python -m providers.emulator`: serve the emulator on the configured host and port."""

from __future__ import annotations

import uvicorn

from providers.emulator.app import create_app
from providers.emulator.config import EmulatorConfig
from reelay.settings import Settings


def main() -> None:
    settings = Settings()
    config = EmulatorConfig(
        data_dir=settings.emulator_data_dir,
        generation_seconds=settings.emulator_generation_seconds,
        render_scale=settings.emulator_render_scale,
        fps=settings.emulator_fps,
        fal_signing_seed=settings.emulator_fal_signing_seed,
        replicate_webhook_secret=settings.emulator_replicate_webhook_secret,
    )
    uvicorn.run(
        create_app(config),
        host=settings.emulator_host,
        port=settings.emulator_port,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
