"""Emulator configuration: fixed at start-up, plus the defaults that can change at run time.

`EmulatorSettings` reads the process's own `REELAY_EMULATOR_*` env vars (the names the local
stack and docker-compose set); the emulator shares no settings code with the gateway.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    # Callback signing material (`REELAY_EMULATOR_FAL_SIGNING_SEED`,
    # `REELAY_EMULATOR_REPLICATE_WEBHOOK_SECRET`): the gateway trusts it for emulated providers.
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


class EmulatorSettings(BaseSettings):
    """The process configuration of `python -m emulator`."""

    model_config = SettingsConfigDict(
        env_prefix="REELAY_EMULATOR_", env_file=".env", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = 8100
    data_dir: Path = EmulatorConfig.model_fields["data_dir"].default
    generation_seconds: float = Defaults.model_fields["generation_seconds"].default
    render_scale: int = EmulatorConfig.model_fields["render_scale"].default
    fps: int = EmulatorConfig.model_fields["fps"].default
    fal_signing_seed: SecretStr = EmulatorConfig.model_fields["fal_signing_seed"].default
    replicate_webhook_secret: SecretStr = EmulatorConfig.model_fields[
        "replicate_webhook_secret"
    ].default
    log_level: str = Field(
        default="INFO",
        validation_alias=AliasChoices("REELAY_EMULATOR_LOG_LEVEL", "REELAY_LOG_LEVEL"),
    )

    def config(self) -> EmulatorConfig:
        return EmulatorConfig(
            data_dir=self.data_dir,
            generation_seconds=self.generation_seconds,
            render_scale=self.render_scale,
            fps=self.fps,
            fal_signing_seed=self.fal_signing_seed,
            replicate_webhook_secret=self.replicate_webhook_secret,
        )
