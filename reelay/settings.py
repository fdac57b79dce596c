"""The one settings object. Every value comes from a `REELAY_`-prefixed env var (or `.env`).

The defaults are for development (`make up`, the tests). With `REELAY_ENV=production` the
settings refuse what is only safe on a laptop: the development secrets, the dev API key and
the emulator standing in for providers without a key; the error names the setting.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, FilePath, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "REELAY_"
#: A production secret is at least this long (`openssl rand -hex 32` gives 64).
MIN_SECRET_LENGTH = 16


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


#: The development defaults of the secrets production must override (and the fields' defaults).
DEV_S3_ACCESS_KEY = "reelay"
DEV_S3_SECRET_KEY = "reelay-secret-key"
DEV_URL_SIGNING_SECRET = "reelay-dev-url-signing-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    env: Environment = Environment.DEVELOPMENT

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    task_queue: str = "reelay-jobs"

    # Object storage (S3 / MinIO / SeaweedFS)
    s3_endpoint: str = "127.0.0.1:8333"
    s3_access_key: str = DEV_S3_ACCESS_KEY
    s3_secret_key: SecretStr = SecretStr(DEV_S3_SECRET_KEY)
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_bucket: str = "reelay-videos"
    s3_part_size_mb: int = Field(default=16, ge=5, description="multipart upload part size")

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    dev_api_key: str = ""
    url_signing_secret: SecretStr = Field(
        default=SecretStr(DEV_URL_SIGNING_SECRET),
        description="HMAC key of signed links, callback tokens (and webhook secrets, unseeded)",
    )
    video_url_ttl_seconds: int = 7 * 24 * 3600

    # Job polling (copied into each workflow's input, so a change applies to new jobs only)
    poll_min_seconds: float = 1.0
    poll_max_seconds: float = 30.0
    poll_heartbeat_timeout_seconds: float = Field(
        default=120.0,
        ge=5.0,
        description="a poll loop silent this long is presumed lost with its worker and "
        "resumed on another (it beats every two thirds of it); each beat is a write in "
        "Temporal, so at thousands of jobs in flight a longer one costs Temporal less",
    )

    # Providers. With no key a provider is served by the emulator, unless
    # `require_provider_keys` is set (production sets it): then it is unavailable.
    require_provider_keys: bool = False
    runway_api_key: SecretStr = SecretStr("")
    runway_base_url: str = "https://api.dev.runwayml.com"
    luma_api_key: SecretStr = SecretStr("")
    luma_base_url: str = "https://api.lumalabs.ai/dream-machine/v1"
    gemini_api_key: SecretStr = SecretStr("")
    gemini_base_url: str = "https://generativelanguage.googleapis.com/v1beta"
    # Veo is served by one Google platform per deployment: the Gemini API (key above) or
    # Vertex AI (a service-account key file; the token endpoint is the file's `token_uri`).
    veo_platform: Literal["gemini", "vertex"] = "gemini"
    vertex_project: str = Field(default="", description="default: the key file's project_id")
    vertex_region: str = "us-central1"
    vertex_credentials_file: FilePath | None = Field(
        default=None, description="the service account's JSON key file"
    )
    vertex_output_uri: str = Field(
        default="",
        pattern=r"^(gs://[^/]+(/.*)?)?$",
        description="gs://bucket[/prefix] Vertex AI writes videos to; empty: inline bytes",
    )
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
    workflow_sandbox: bool = Field(
        default=False,
        description="run workflow code in Temporal's sandbox (the test suite does; "
        "it costs about a tenth of a worker's CPU)",
    )
    poll_loops_per_worker: int = Field(
        default=20_000, ge=1, description="jobs a worker polls at once (each a sleeping activity)"
    )
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
    database_url: str = Field(
        default="",
        description="the ledger store (SQLAlchemy async URL); empty: SQLite under data_dir",
    )
    database_timeout_seconds: float = Field(
        default=2.0, gt=0, description="longest wait for the ledger store before a 503"
    )
    reaper_grace_seconds: float = Field(
        default=60.0, gt=0, description="a reservation whose job never started is released after"
    )

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

    # Observability (README "Operating Reelay")
    worker_metrics_port: int = Field(
        default=0, ge=0, description="worker's Prometheus /metrics port; 0: off"
    )
    temporal_metrics_port: int = Field(
        default=0, ge=0, description="the worker's Temporal SDK metrics port; 0: off"
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="address the worker's metrics servers listen on"
    )
    otlp_endpoint: str = Field(
        default="", description="OTLP/HTTP traces endpoint; '': OTEL_EXPORTER_OTLP_ENDPOINT or off"
    )

    @property
    def ledger_database_url(self) -> str:
        return self.database_url or (
            f"sqlite+aiosqlite:///{(self.data_dir / 'ledger.sqlite3').resolve()}"
        )

    @property
    def emulator_url(self) -> str:
        return f"http://{self.emulator_host}:{self.emulator_port}"

    def signing_key(self) -> bytes:
        return self.url_signing_secret.get_secret_value().encode()

    @model_validator(mode="after")
    def _safe_for_its_environment(self) -> Settings:
        if not self.url_signing_secret.get_secret_value():
            raise ValueError(f"{_var('url_signing_secret')} must not be empty")
        if self.env is Environment.PRODUCTION:
            problems = self._production_problems()
            if problems:
                raise ValueError(f"{_var('env')}=production refuses: " + "; ".join(problems))
            if "require_provider_keys" not in self.model_fields_set:
                self.require_provider_keys = True  # no emulator in production
        return self

    def _production_problems(self) -> list[str]:
        problems = []
        own_secrets = {
            "s3_access_key": (self.s3_access_key, DEV_S3_ACCESS_KEY),
            "s3_secret_key": (self.s3_secret_key.get_secret_value(), DEV_S3_SECRET_KEY),
            "url_signing_secret": (
                self.url_signing_secret.get_secret_value(),
                DEV_URL_SIGNING_SECRET,
            ),
        }
        for name, (value, default) in own_secrets.items():
            if value == default:
                problems.append(f"{_var(name)} is the development default; set your own")
            elif name != "s3_access_key" and len(value) < MIN_SECRET_LENGTH:
                problems.append(f"{_var(name)} is shorter than {MIN_SECRET_LENGTH} characters")
        if self.dev_api_key:
            problems.append(f"{_var('dev_api_key')} must be empty (tenants come from a file)")
        if "require_provider_keys" in self.model_fields_set and not self.require_provider_keys:
            problems.append(
                f"{_var('require_provider_keys')}=false would serve unkeyed providers "
                "from the emulator"
            )
        return problems


def _var(field: str) -> str:
    """The env var of a Settings field."""
    return f"{ENV_PREFIX}{field.upper()}"


def describe_invalid(error: ValidationError) -> str:
    """A `ValidationError` of `Settings` as one line that names each wrong setting."""
    parts = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        loc = [str(part) for part in item["loc"]]
        if loc:  # a field's own error; model-level ones name their settings themselves
            message = _var(loc[0]) + "".join(f"[{part}]" for part in loc[1:]) + f": {message}"
        parts.append(message)
    return "; ".join(parts)


@lru_cache
def get_settings() -> Settings:
    """The process's settings; an invalid configuration ends the process with one line."""
    try:
        return Settings()
    except ValidationError as error:
        raise SystemExit(f"reelay: invalid configuration: {describe_invalid(error)}") from None


def generated_dev_key() -> str:
    return "rl_dev_" + secrets.token_urlsafe(18)
