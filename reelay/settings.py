"""The one settings object. Every value comes from a `REELAY_`-prefixed env var (or `.env`)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELAY_", env_file=".env", extra="ignore")

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    task_queue: str = "reelay-jobs"

    # Object storage (S3 / MinIO / SeaweedFS)
    s3_endpoint: str = "127.0.0.1:8333"
    s3_access_key: str = "reelay"
    s3_secret_key: SecretStr = SecretStr("reelay-secret-key")
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_bucket: str = "reelay-videos"
    s3_part_size_mb: int = Field(default=16, ge=5, description="multipart upload part size")

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    dev_api_key: str = ""
    url_signing_secret: SecretStr = SecretStr("")
    video_url_ttl_seconds: int = 7 * 24 * 3600

    # Job polling (copied into each workflow's input, so a change applies to new jobs only)
    poll_min_seconds: float = 1.0
    poll_max_seconds: float = 30.0

    # Providers. With no key a provider is served by the emulator, unless
    # `require_provider_keys` is set (production): then it is unavailable.
    require_provider_keys: bool = False
    runway_api_key: SecretStr = SecretStr("")
    runway_base_url: str = "https://api.dev.runwayml.com"
    luma_api_key: SecretStr = SecretStr("")
    luma_base_url: str = "https://api.lumalabs.ai/dream-machine/v1"
    gemini_api_key: SecretStr = SecretStr("")
    gemini_base_url: str = "https://generativelanguage.googleapis.com/v1beta"
    fal_api_key: SecretStr = SecretStr("")
    fal_base_url: str = "https://queue.fal.run"
    fal_webhook_public_keys: list[str] = Field(
        default_factory=list, description="hex Ed25519 public keys fal signs webhooks with"
    )
    replicate_api_key: SecretStr = SecretStr("")
    replicate_base_url: str = "https://api.replicate.com"
    replicate_webhook_secret: SecretStr = SecretStr("")
    provider_submits_per_second: dict[str, float] = Field(
        default_factory=dict, description="per provider, enforced across all workers"
    )
    provider_concurrent_submits: int = Field(default=8, ge=1, description="per worker")
    provider_failover_after_seconds: float = Field(
        default=60.0, description="retry budget of a route before the next one is tried"
    )
    callback_max_age_seconds: int = 300

    # Source images
    media_max_bytes: int = 10 * 1024 * 1024
    s3_public_endpoint: str = Field(
        default="", description="host[:port] in presigned URLs handed to providers"
    )

    # Tenants, credits and limits
    tenants_file: Path | None = None
    admin_api_key: SecretStr = SecretStr("")
    tenant_queue_cap: int = Field(default=100, ge=0, description="queued jobs per tenant")
    limits_enabled: bool = True

    # Outgoing webhooks
    webhook_secret_seed: SecretStr = SecretStr("")
    webhook_allow_hosts: list[str] = Field(
        default_factory=list, description="hosts allowed over http and on private addresses"
    )
    webhook_timeout_seconds: float = 10.0

    # Provider emulator (local stack and tests)
    emulator_host: str = "127.0.0.1"
    emulator_port: int = 8100
    emulator_data_dir: Path = Path(".data/emulator")
    emulator_generation_seconds: float = 6.0
    emulator_render_scale: int = Field(default=4, ge=1, description="render at 1/N of full size")
    emulator_fps: int = 8
    # Test-only signing material the emulator uses for fal's Ed25519 and Replicate's HMAC
    # webhooks; the gateway trusts it for a provider that the emulator serves.
    emulator_fal_signing_seed: SecretStr = SecretStr("reelay-emulator-fal")
    emulator_replicate_webhook_secret: SecretStr = SecretStr(
        "whsec_cmVlbGF5LWVtdWxhdG9yLXJlcGxpY2F0ZS1zZWNyZXQ="
    )

    # Local stack (`make up`): where the dev servers keep their data
    data_dir: Path = Path(".data")

    log_level: str = "INFO"
    log_json: bool = False

    @property
    def emulator_url(self) -> str:
        return f"http://{self.emulator_host}:{self.emulator_port}"

    def signing_key(self) -> bytes:
        secret = self.url_signing_secret.get_secret_value() or self.s3_secret_key.get_secret_value()
        return secret.encode()


@lru_cache
def get_settings() -> Settings:
    return Settings()


def generated_dev_key() -> str:
    return "rl_dev_" + secrets.token_urlsafe(18)
