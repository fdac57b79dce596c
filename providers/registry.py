"""One adapter per provider: the real service when a key is set, else the emulator."""

from __future__ import annotations

from providers.base import ProviderAdapter
from providers.runway import RunwayAdapter
from reelay.settings import Settings

PROVIDERS = ("runway",)


def build_adapters(settings: Settings) -> dict[str, ProviderAdapter]:
    base_url, key = settings.runway_endpoint()
    return {"runway": RunwayAdapter(base_url, key)}


def configured_providers(settings: Settings) -> set[str]:
    """Providers that can take jobs. Every provider is keyed or falls back to the emulator."""
    return set(PROVIDERS)
