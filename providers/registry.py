"""One adapter per provider: the real service when its key is set, else the emulator.

The emulator serves each protocol under `/<provider>` followed by the real base URL's path
(Luma: `/luma/dream-machine/v1`, Gemini: `/gemini/v1beta`, Vertex AI: `/vertex/v1`, its
Cloud Storage downloads under `/gcs`). For callbacks it sends, the adapters trust the
emulator's test signing material instead of the real providers' keys.

A catalog adapter that several platforms serve (`providers.families.PLATFORMS`: Veo on the
Gemini API or Vertex AI) is served by the one the deployment picks (`REELAY_VEO_PLATFORM`);
`deployed_routes` turns catalog routes into the routes a job of this deployment runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
from google.oauth2.credentials import Credentials as TokenCredentials
from pydantic import SecretStr

from providers import vertex
from providers.base import FindsSubmitted, ProviderAdapter
from providers.fal import FalAdapter, public_key_hex_for_seed
from providers.families import PLATFORMS
from providers.luma import LumaAdapter
from providers.replicate import ReplicateAdapter
from providers.runway import RunwayAdapter
from providers.veo import VeoAdapter
from reelay.jobs import Route
from reelay.settings import Settings

#: Each provider's adapter type (what it can do; `_adapter` builds it).
ADAPTER_TYPES: dict[str, type[ProviderAdapter]] = {
    "runway": RunwayAdapter,
    "luma": LumaAdapter,
    "gemini": VeoAdapter,
    "vertex": vertex.VertexAdapter,
    "fal": FalAdapter,
    "replicate": ReplicateAdapter,
}
PROVIDERS = tuple(ADAPTER_TYPES)
#: Providers whose adapter finds the task a lost submit attempt left (`FindsSubmitted`).
_LOOKS_UP_SUBMITS = frozenset(p for p, t in ADAPTER_TYPES.items() if issubclass(t, FindsSubmitted))
EMULATOR_KEY = "emulator-key"
EMULATOR_PROJECT = "reelay-dev"


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
        "vertex": (
            SecretStr(str(settings.vertex_credentials_file or "")),
            vertex.base_url(settings.vertex_region),
        ),
        "fal": (settings.fal_api_key, settings.fal_base_url),
        "replicate": (settings.replicate_api_key, settings.replicate_base_url),
    }[provider]


def _takes_jobs(settings: Settings, provider: str) -> bool:
    """Whether `provider` can take jobs: keyed, or emulator-served when keys aren't required."""
    return not settings.require_provider_keys or bool(
        _configured(settings, provider)[0].get_secret_value()
    )


def endpoint(settings: Settings, provider: str) -> Endpoint | None:
    """Where `provider` is served; None when it has no key and keys are required."""
    if not _takes_jobs(settings, provider):
        return None
    secret, base_url = _configured(settings, provider)
    if key := secret.get_secret_value():
        return Endpoint(base_url, key, emulated=False)
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
    if provider == "vertex":
        return _vertex(where, settings)
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


def _vertex(where: Endpoint, settings: Settings) -> ProviderAdapter:
    """Vertex AI with the service account's tokens; the emulator takes any bearer token."""
    output = settings.vertex_output_uri or None
    if where.emulated:
        return vertex.VertexAdapter(
            where.base_url,
            project=settings.vertex_project or EMULATOR_PROJECT,
            location=settings.vertex_region,
            credentials=TokenCredentials(token=where.key),
            gcs_base_url=f"{settings.emulator_url}/gcs",
            output_uri=output,
        )
    credentials = vertex.service_account_credentials(Path(where.key))
    return vertex.VertexAdapter(
        where.base_url,
        project=settings.vertex_project or credentials.project_id,
        location=settings.vertex_region,
        credentials=credentials,
        output_uri=output,
    )


def deployed_adapter(settings: Settings, adapter: str) -> str:
    """The adapter that serves a catalog route's adapter in this deployment."""
    return settings.veo_platform if adapter == "veo" else adapter


def deployed_providers(settings: Settings) -> tuple[str, ...]:
    """The providers this deployment uses: all but the platforms it did not pick."""
    passed = {
        platform
        for adapter, platforms in PLATFORMS.items()
        for platform in platforms
        if platform != deployed_adapter(settings, adapter)
    }
    return tuple(provider for provider in PROVIDERS if provider not in passed)


def build_adapters(settings: Settings) -> dict[str, ProviderAdapter]:
    adapters: dict[str, ProviderAdapter] = {}
    for provider in deployed_providers(settings):
        if (where := endpoint(settings, provider)) is not None:
            adapters[provider] = _adapter(provider, where, settings)
    return adapters


def configured_providers(settings: Settings) -> set[str]:
    """Providers that can take jobs (`_takes_jobs`); read on every submit, so it builds no
    endpoint."""
    return {p for p in deployed_providers(settings) if _takes_jobs(settings, p)}


def submits_locally(settings: Settings, provider: str) -> bool:
    """Whether a job's workflow submits to `provider` itself (a local activity: no activity
    task, no workflow task to hear its end) rather than through the provider's submit
    queue. The queue stays where it does what a local activity cannot: pace the submits
    across all workers (`provider_submits_per_second`), or tell a retry from a first attempt
    so that a lost attempt's task is found instead of created twice (`FindsSubmitted`)."""
    return provider not in settings.provider_submits_per_second and (
        provider not in _LOOKS_UP_SUBMITS
    )


def deployed_routes(settings: Settings, routes: Iterable[Route]) -> list[Route]:
    """Catalog routes as this deployment runs them: each on the adapter serving it here
    (and submitted as `submits_locally` says), those whose provider can take no jobs left
    out (failover order kept)."""
    available = configured_providers(settings)
    served = []
    for route in routes:
        adapter = deployed_adapter(settings, route.adapter)
        if adapter in available:
            local = submits_locally(settings, adapter)
            served.append(route.model_copy(update={"adapter": adapter, "submit_locally": local}))
    return served
