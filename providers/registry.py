"""One adapter per provider: the real service when its key is set, else the emulator.

The emulator serves each protocol under `/<provider>` followed by the real base URL's path
(Luma: `/luma/dream-machine/v1`, Gemini: `/gemini/v1beta`). For callbacks it sends, the
adapters trust the emulator's test signing material instead of the real providers' keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from providers.base import ProviderAdapter
from providers.fal import FalAdapter, public_key_hex_for_seed
from providers.luma import LumaAdapter
from providers.replicate import ReplicateAdapter
from providers.runway import RunwayAdapter
from providers.veo import VeoAdapter
from reelay.settings import Settings

PROVIDERS = ("runway", "luma", "gemini", "fal", "replicate")
EMULATOR_KEY = "emulator-key"


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    key: str
    emulated: bool


def _configured(settings: Settings, provider: str) -> tuple[SecretStr, str]:
    return {
        "runway": (settings.runway_api_key, settings.runway_base_url),
        "luma": (settings.luma_api_key, settings.luma_base_url),
        "gemini": (settings.gemini_api_key, settings.gemini_base_url),
        "fal": (settings.fal_api_key, settings.fal_base_url),
        "replicate": (settings.replicate_api_key, settings.replicate_base_url),
    }[provider]


def endpoint(settings: Settings, provider: str) -> Endpoint | None:
    """Where `provider` is served; None when it has no key and keys are required."""
    secret, base_url = _configured(settings, provider)
    if key := secret.get_secret_value():
        return Endpoint(base_url, key, emulated=False)
    if settings.require_provider_keys:
        return None
    path = httpx.URL(base_url).path.rstrip("/")
    return Endpoint(f"{settings.emulator_url}/{provider}{path}", EMULATOR_KEY, emulated=True)


def _adapter(provider: str, where: Endpoint, settings: Settings) -> ProviderAdapter:
    max_age = settings.callback_max_age_seconds
    if provider == "runway":
        return RunwayAdapter(where.base_url, where.key)
    if provider == "luma":
        return LumaAdapter(where.base_url, where.key)
    if provider == "gemini":
        return VeoAdapter(where.base_url, where.key)
    if provider == "fal":
        keys = settings.fal_webhook_public_keys
        if where.emulated:
            keys = [public_key_hex_for_seed(settings.emulator_fal_signing_seed.get_secret_value())]
        return FalAdapter(
            where.base_url, where.key, webhook_public_keys=keys, callback_max_age_seconds=max_age
        )
    if provider == "replicate":
        secret = settings.replicate_webhook_secret
        if where.emulated:
            secret = settings.emulator_replicate_webhook_secret
        return ReplicateAdapter(
            where.base_url,
            where.key,
            webhook_secret=secret.get_secret_value(),
            callback_max_age_seconds=max_age,
        )
    raise ValueError(f"unknown provider {provider!r}")


def build_adapters(settings: Settings) -> dict[str, ProviderAdapter]:
    adapters: dict[str, ProviderAdapter] = {}
    for provider in PROVIDERS:
        if (where := endpoint(settings, provider)) is not None:
            adapters[provider] = _adapter(provider, where, settings)
    return adapters


def configured_providers(settings: Settings) -> set[str]:
    """Providers that can take jobs: keyed, or emulator-served when keys aren't required."""
    return {provider for provider in PROVIDERS if endpoint(settings, provider) is not None}
