"""`GET /v1/models`: the catalog, with each model's limits, price and routes."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import SettingsDep
from providers.catalog import MODELS, ModelSpec
from providers.registry import configured_providers, deployed_adapter
from reelay.settings import Settings

router = APIRouter(tags=["models"])


class ModelRoute(BaseModel):
    provider: str
    upstream_model: str
    min_seconds: int
    max_seconds: int
    durations: list[int] | None
    resolutions: list[str]
    aspect_ratios: list[str]
    image_to_video: bool
    continuation: str | None = Field(
        description="how this route continues a video longer than one clip: extend, keyframe, "
        "last_frame; null: it cannot"
    )
    available: bool


class ModelInfo(BaseModel):
    id: str
    object: str = "model"
    name: str
    vendor: str
    aliases: list[str]
    max_duration_seconds: int = Field(description="the longest video Reelay makes of this model")
    max_clip_seconds: int = Field(description="the longest one upstream clip makes")
    chained: bool = Field(description="longer videos are made as continued, stitched segments")
    min_duration_seconds: int
    default_duration_seconds: int
    resolutions: list[str]
    default_resolution: str
    aspect_ratios: list[str]
    default_aspect_ratio: str
    max_prompt_chars: int
    price_usd_per_second: float
    status: str = Field(default="available", description="available, retired or unavailable")
    reason: str | None = None
    notes: str | None = Field(
        default=None, description="how the model is served where it differs from what is asked"
    )
    upstream_seconds: dict[str, int] = Field(
        default_factory=dict,
        description="at the default resolution, the durations made by generating longer (then "
        "trimming) or by a chain, with the seconds bought upstream; billed at the duration asked",
    )
    routes: list[ModelRoute]


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelInfo]


def model_info(model: ModelSpec, settings: Settings) -> ModelInfo:
    available = configured_providers(settings)
    providers = [deployed_adapter(settings, route.adapter) for route in model.routes]
    return ModelInfo(
        id=model.id,
        name=model.name,
        vendor=model.vendor,
        aliases=list(model.aliases),
        max_duration_seconds=model.longest_seconds,
        max_clip_seconds=model.one_clip_seconds,
        chained=model.longest_seconds > model.one_clip_seconds,
        min_duration_seconds=model.shortest_seconds,
        default_duration_seconds=model.default_duration_seconds,
        resolutions=list(model.resolutions),
        default_resolution=model.default_resolution,
        aspect_ratios=list(model.aspect_ratios),
        default_aspect_ratio=model.default_aspect_ratio,
        max_prompt_chars=model.max_prompt_chars,
        price_usd_per_second=model.price_usd_per_second,
        status=_status(model),
        reason=_reason(model),
        notes=model.notes,
        upstream_seconds=_upstream_seconds(model),
        routes=[
            ModelRoute(
                provider=provider,
                upstream_model=route.upstream_model,
                min_seconds=route.min_seconds,
                max_seconds=route.max_seconds,
                durations=list(route.durations) if route.durations else None,
                resolutions=list(route.resolutions),
                aspect_ratios=list(route.aspect_ratios),
                image_to_video=route.image_to_video,
                continuation=route.continues_by.value if route.continues_by else None,
                available=provider in available,
            )
            for route, provider in zip(model.routes, providers, strict=True)
        ],
    )


def _status(model: ModelSpec) -> str:
    if model.retired_on is not None:
        return "retired"
    return "unavailable" if model.unavailable_reason or not model.routes else "available"


def _reason(model: ModelSpec) -> str | None:
    if model.retired_on is not None:
        return f"retired by its provider on {model.retired_on.isoformat()}"
    return model.unavailable_reason


@router.get("/v1/models")
async def list_models(settings: SettingsDep) -> ModelList:
    """Every model id clients may send, including retired and unavailable ones (with why)."""
    return ModelList(data=[model_info(m, settings) for m in MODELS])


def _upstream_seconds(model: ModelSpec) -> dict[str, int]:
    if not model.routes:
        return {}
    asked = range(model.shortest_seconds, model.longest_seconds + 1)
    allowed = [s for s in asked if not model.durations or s in model.durations]
    bought = {s: model.upstream_seconds(s, model.default_resolution) for s in allowed}
    return {str(s): b for s, b in bought.items() if b not in (0, s)}
