"""Emulator configuration: fixed at start-up, plus the defaults that can change at run time."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Defaults(BaseModel):
    """Per-task defaults; `POST /_emulator/config` changes them for tasks created afterwards."""

    generation_seconds: float = Field(default=6.0, ge=0)
    queue_seconds: float = Field(default=0.3, ge=0)
    steps: int = Field(default=10, ge=1, description="distinct progress values while RUNNING")
    output_ttl_seconds: int = Field(default=24 * 3600, ge=0)


class EmulatorConfig(Defaults):
    model_config = ConfigDict(frozen=True)

    data_dir: Path = Path(".data/emulator")
    render_scale: int = Field(default=4, ge=1, description="render at 1/N of the requested size")
    fps: int = Field(default=8, ge=1)
    signing_secret: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_hex(16)))
    # Callback signing material (Settings' `emulator_fal_signing_seed` and
    # `emulator_replicate_webhook_secret`): the gateway trusts it for emulated providers.
    fal_signing_seed: SecretStr = SecretStr("reelay-emulator-fal")
    replicate_webhook_secret: SecretStr = SecretStr(
        "whsec_cmVlbGF5LWVtdWxhdG9yLXJlcGxpY2F0ZS1zZWNyZXQ="
    )
    callback_attempts: int = Field(default=5, ge=1, description="tries per callback")


class RuntimeConfig(Defaults):
    model_config = ConfigDict(extra="forbid")

    outages: dict[str, Annotated[int, Field(ge=400, le=599)]] = Field(
        default_factory=dict, description="provider -> HTTP status every create call answers"
    )

    @classmethod
    def initial(cls, config: EmulatorConfig) -> RuntimeConfig:
        return cls.model_validate(config.model_dump(include=set(Defaults.model_fields)))

    def updated(self, patch: dict[str, object]) -> RuntimeConfig:
        """A validated copy with `patch` applied; `outages` is replaced as a whole."""
        return RuntimeConfig.model_validate({**self.model_dump(), **patch})
