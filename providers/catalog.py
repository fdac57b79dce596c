"""The model catalog: which model ids exist, their published limits and price, and the
provider routes that serve them. `resolve_request` turns a client request into a `JobSpec`
input, or raises `CatalogError` naming the field and the rule."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pydantic import BaseModel, Field

from reelay.jobs import Route

RESOLUTIONS = ("720p", "1080p")
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3")


class CatalogError(ValueError):
    """A request the catalog refuses; `field` is the client-facing parameter name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class RouteSpec(BaseModel):
    """What one upstream model can make in a single clip."""

    adapter: str
    upstream_model: str
    min_seconds: int = 1
    max_seconds: int
    durations: tuple[int, ...] | None = Field(
        default=None, description="discrete one-clip durations; None means the whole range"
    )
    resolutions: tuple[str, ...] = RESOLUTIONS
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16", "1:1")

    def as_route(self) -> Route:
        return Route(adapter=self.adapter, upstream_model=self.upstream_model)

    def allowed_durations_text(self) -> str:
        if self.durations:
            return ", ".join(str(d) for d in self.durations)
        return f"{self.min_seconds} to {self.max_seconds}"


class ModelSpec(BaseModel):
    id: str
    name: str
    vendor: str
    aliases: tuple[str, ...] = ()
    max_duration_seconds: int
    default_duration_seconds: int
    default_resolution: str = "1080p"
    default_aspect_ratio: str = "16:9"
    max_prompt_chars: int = 4000
    price_usd_per_second: float
    deadline_seconds: int = 900
    routes: tuple[RouteSpec, ...]
    retired_on: date | None = None

    @property
    def price_micro_usd_per_second(self) -> int:
        return round(self.price_usd_per_second * 1_000_000)

    @property
    def resolutions(self) -> tuple[str, ...]:
        return _union(r.resolutions for r in self.routes)

    @property
    def aspect_ratios(self) -> tuple[str, ...]:
        return _union(r.aspect_ratios for r in self.routes)

    @property
    def min_duration_seconds(self) -> int:
        return min(r.min_seconds for r in self.routes)


def _union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        seen.update(dict.fromkeys(group))
    return tuple(seen)


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="veo-3",
        name="Google Veo 3",
        vendor="Google",
        max_duration_seconds=60,
        default_duration_seconds=4,
        price_usd_per_second=0.35,
        routes=(
            RouteSpec(
                adapter="runway",
                upstream_model="veo3.1",
                min_seconds=4,
                max_seconds=8,
                durations=(4, 6, 8),
                aspect_ratios=("16:9", "9:16"),
            ),
        ),
    ),
    ModelSpec(
        id="runway-gen3",
        name="Runway Gen-3",
        vendor="Runway",
        max_duration_seconds=16,
        default_duration_seconds=4,
        price_usd_per_second=0.10,
        routes=(
            RouteSpec(adapter="runway", upstream_model="gen4.5", min_seconds=2, max_seconds=10),
        ),
    ),
    ModelSpec(
        id="luma-dream-machine",
        name="Luma Dream Machine",
        vendor="Luma AI",
        max_duration_seconds=10,
        default_duration_seconds=4,
        price_usd_per_second=0.06,
        routes=(
            RouteSpec(adapter="runway", upstream_model="gen4.5", min_seconds=2, max_seconds=10),
        ),
    ),
    ModelSpec(
        id="pika",
        name="Pika",
        vendor="Pika Labs",
        max_duration_seconds=4,
        default_duration_seconds=4,
        price_usd_per_second=0.067,
        routes=(
            RouteSpec(adapter="runway", upstream_model="gen4.5", min_seconds=2, max_seconds=10),
        ),
    ),
)

DEFAULT_MODEL = "runway-gen3"

_BY_NAME: dict[str, ModelSpec] = {}
for _model in MODELS:
    for _name in (_model.id, *_model.aliases):
        _BY_NAME[_name.lower()] = _model


def find_model(name: str) -> ModelSpec | None:
    return _BY_NAME.get(name.strip().lower())


class ResolvedRequest(BaseModel):
    """A request the catalog accepts, with defaults filled in and a route chosen."""

    model: ModelSpec
    requested_model: str
    route: RouteSpec
    prompt: str
    negative_prompt: str | None
    duration_seconds: int
    resolution: str
    aspect_ratio: str

    @property
    def estimated_cost_micro_usd(self) -> int:
        return self.model.price_micro_usd_per_second * self.duration_seconds


def resolve_request(
    *,
    prompt: str | None,
    model: str | None = None,
    duration_seconds: float | None = None,
    resolution: str | None = None,
    aspect_ratio: str | None = None,
    negative_prompt: str | None = None,
) -> ResolvedRequest:
    """Validate a generic request against the catalog. Field names are seed 000's."""
    requested = (model or DEFAULT_MODEL).strip()
    spec = find_model(requested)
    if spec is None:
        raise CatalogError("model", f"model '{requested}' is not supported; see GET /v1/models")
    if spec.retired_on is not None:
        raise CatalogError(
            "model", f"model '{requested}' was retired on {spec.retired_on.isoformat()}"
        )

    if prompt is None:
        raise CatalogError("prompt", "prompt is required")
    text = prompt.strip()
    if not text:
        raise CatalogError("prompt", "prompt must not be empty")
    if len(text) > spec.max_prompt_chars:
        raise CatalogError(
            "prompt",
            f"prompt exceeds maximum of {spec.max_prompt_chars} characters for {spec.id} model",
        )

    seconds = _whole_seconds(
        spec.default_duration_seconds if duration_seconds is None else duration_seconds
    )
    if seconds > spec.max_duration_seconds:
        raise CatalogError(
            "duration_seconds",
            f"duration_seconds exceeds maximum of {spec.max_duration_seconds} for {spec.id} model",
        )
    if seconds < spec.min_duration_seconds:
        raise CatalogError(
            "duration_seconds",
            f"duration_seconds must be at least {spec.min_duration_seconds} for {spec.id} model",
        )

    res = resolution or spec.default_resolution
    if res not in spec.resolutions:
        raise CatalogError(
            "resolution",
            f"resolution must be one of {', '.join(spec.resolutions)} for {spec.id} model",
        )
    ratio = aspect_ratio or spec.default_aspect_ratio
    if ratio not in spec.aspect_ratios:
        raise CatalogError(
            "aspect_ratio",
            f"aspect_ratio must be one of {', '.join(spec.aspect_ratios)} for {spec.id} model",
        )

    route = _pick_route(spec, seconds, res, ratio)
    return ResolvedRequest(
        model=spec,
        requested_model=requested,
        route=route,
        prompt=text,
        negative_prompt=(negative_prompt or "").strip() or None,
        duration_seconds=seconds,
        resolution=res,
        aspect_ratio=ratio,
    )


def _whole_seconds(value: float) -> int:
    if isinstance(value, bool) or not float(value).is_integer():
        raise CatalogError("duration_seconds", "duration_seconds must be a whole number of seconds")
    return int(value)


def _pick_route(spec: ModelSpec, seconds: int, resolution: str, ratio: str) -> RouteSpec:
    """The first route that can make this clip; otherwise the most specific refusal."""
    fitting = [r for r in spec.routes if resolution in r.resolutions and ratio in r.aspect_ratios]
    if not fitting:
        raise CatalogError(
            "aspect_ratio",
            f"aspect_ratio {ratio} is not available at {resolution} for {spec.id} model",
        )
    for route in fitting:
        if route.min_seconds <= seconds <= route.max_seconds and (
            route.durations is None or seconds in route.durations
        ):
            return route
    longest = max(r.max_seconds for r in fitting)
    if seconds > longest:
        raise CatalogError(
            "duration_seconds",
            f"duration_seconds {seconds} is longer than one {spec.id} clip (at most {longest} s); "
            "videos longer than one clip are not supported yet",
        )
    allowed = "; ".join(r.allowed_durations_text() for r in fitting)
    raise CatalogError(
        "duration_seconds", f"duration_seconds must be one of {allowed} for {spec.id} model"
    )
