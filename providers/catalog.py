"""The model catalog: which model ids exist, their published limits and price, and the
provider routes that serve them. `resolve_request` turns a client request into a `JobSpec`
input, or raises `CatalogError` naming the field and the rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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
    """What one upstream model can make in a single clip, and how it is asked."""

    adapter: str
    upstream_model: str
    image_upstream_model: str | None = Field(
        default=None, description="upstream id for image-to-video, when it differs"
    )
    min_seconds: int = 1
    max_seconds: int
    durations: tuple[int, ...] | None = Field(
        default=None, description="discrete one-clip durations; None means the whole range"
    )
    resolutions: tuple[str, ...] = RESOLUTIONS
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16", "1:1")
    text_to_video: bool = True
    image_to_video: bool = False
    audio: bool = False
    enhance_prompt: bool = False

    def clip_for(self, seconds: int) -> int | None:
        """The one-clip length this route makes for `seconds`: exact, else the next longer."""
        lengths = self.durations or tuple(range(self.min_seconds, self.max_seconds + 1))
        return next((d for d in sorted(lengths) if d >= seconds), None)

    def as_route(self, seconds: int, *, with_image: bool) -> Route:
        clip = self.clip_for(seconds)
        upstream = self.upstream_model
        if with_image and self.image_upstream_model:
            upstream = self.image_upstream_model
        return Route(
            adapter=self.adapter,
            upstream_model=upstream,
            clip_seconds=clip if clip != seconds else None,
        )

    def allowed_durations_text(self) -> str:
        if self.durations:
            return ", ".join(str(d) for d in self.durations)
        return f"{self.min_seconds} to {self.max_seconds}"


class ModelSpec(BaseModel):
    """A model id clients send: its published limits and price, and the routes serving it."""

    id: str
    name: str
    vendor: str
    aliases: tuple[str, ...] = ()
    max_duration_seconds: int
    min_duration_seconds: int | None = Field(default=None, description="default: the routes'")
    durations: tuple[int, ...] | None = Field(
        default=None, description="published discrete durations, when the model has a set"
    )
    default_duration_seconds: int
    default_resolution: str = "1080p"
    default_aspect_ratio: str = "16:9"
    max_prompt_chars: int = 4000
    price_usd_per_second: float
    price_by_resolution: dict[str, float] = Field(default_factory=dict)
    audio_price_usd_per_second: float | None = Field(
        default=None, description="price per second when audio is generated"
    )
    deadline_seconds: int = 900
    routes: tuple[RouteSpec, ...] = ()
    retired_on: date | None = None
    unavailable_reason: str | None = Field(
        default=None, description="why a model that clients know is not served"
    )

    def price_micro_usd_per_second(self, resolution: str, audio: bool = False) -> int:
        price = self.price_by_resolution.get(resolution, self.price_usd_per_second)
        if audio and self.audio_price_usd_per_second is not None:
            price = self.audio_price_usd_per_second
        return round(price * 1_000_000)

    @property
    def resolutions(self) -> tuple[str, ...]:
        return _union(r.resolutions for r in self.routes)

    @property
    def aspect_ratios(self) -> tuple[str, ...]:
        return _union(r.aspect_ratios for r in self.routes)

    @property
    def shortest_seconds(self) -> int:
        if self.min_duration_seconds is not None:
            return self.min_duration_seconds
        if self.durations:
            return min(self.durations)
        return min((r.min_seconds for r in self.routes), default=1)

    @property
    def one_clip_seconds(self) -> int:
        """The longest video one upstream clip makes."""
        return max((r.max_seconds for r in self.routes), default=0)

    @property
    def text_to_video(self) -> bool:
        return any(r.text_to_video for r in self.routes)

    @property
    def image_to_video(self) -> bool:
        return any(r.image_to_video for r in self.routes)

    @property
    def audio(self) -> bool:
        return any(r.audio for r in self.routes)


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
    """A request the catalog accepts, with defaults filled in and its routes chosen."""

    model: ModelSpec
    requested_model: str
    routes: list[Route]
    prompt: str
    negative_prompt: str | None
    duration_seconds: int
    resolution: str
    aspect_ratio: str
    audio: bool
    enhance_prompt: bool

    @property
    def price_micro_usd_per_second(self) -> int:
        return self.model.price_micro_usd_per_second(self.resolution, self.audio)

    @property
    def estimated_cost_micro_usd(self) -> int:
        return self.price_micro_usd_per_second * self.duration_seconds


def resolve_request(
    *,
    prompt: str | None,
    model: str | None = None,
    duration_seconds: float | None = None,
    resolution: str | None = None,
    aspect_ratio: str | None = None,
    negative_prompt: str | None = None,
    audio: bool | None = None,
    enhance_prompt: bool = False,
    with_image: bool = False,
    names: Mapping[str, str] | None = None,
) -> ResolvedRequest:
    """Validate a request against the catalog.

    Messages use seed 000's field names unless `names` maps them to a dialect's own.
    """
    name = dict(names or {})

    def error(field: str, message: str) -> CatalogError:
        label = name.get(field, field)
        return CatalogError(label, message.replace(field, label, 1))

    requested = (model or DEFAULT_MODEL).strip()
    spec = find_model(requested)
    if spec is None:
        raise error("model", f"model '{requested}' is not supported; see GET /v1/models")
    if spec.retired_on is not None:
        raise error(
            "model",
            f"model '{requested}' was retired by its provider on {spec.retired_on.isoformat()}; "
            "choose another model (see GET /v1/models)",
        )
    if spec.unavailable_reason is not None or not spec.routes:
        reason = spec.unavailable_reason or "no provider route is configured"
        raise error("model", f"model '{requested}' is not available: {reason}")

    if prompt is None:
        raise error("prompt", "prompt is required")
    text = prompt.strip()
    if not text:
        raise error("prompt", "prompt must not be empty")
    if len(text) > spec.max_prompt_chars:
        raise error(
            "prompt",
            f"prompt exceeds maximum of {spec.max_prompt_chars} characters for {spec.id} model",
        )
    if not with_image and not spec.text_to_video:
        raise error("image", f"{spec.id} makes videos from an image only: send a source image")
    if with_image and not spec.image_to_video:
        raise error("image", f"{spec.id} does not take a source image (text-to-video only)")
    if audio and not spec.audio:
        raise error("audio", f"audio is not available for {spec.id} model")

    seconds = _whole_seconds(
        spec.default_duration_seconds if duration_seconds is None else duration_seconds,
        name.get("duration_seconds", "duration_seconds"),
    )
    if spec.durations and seconds not in spec.durations:
        allowed = ", ".join(str(d) for d in spec.durations)
        raise error(
            "duration_seconds", f"duration_seconds must be one of {allowed} for {spec.id} model"
        )
    if seconds > spec.max_duration_seconds:
        raise error(
            "duration_seconds",
            f"duration_seconds exceeds maximum of {spec.max_duration_seconds} for {spec.id} model",
        )
    if seconds < spec.shortest_seconds:
        raise error(
            "duration_seconds",
            f"duration_seconds must be at least {spec.shortest_seconds} for {spec.id} model",
        )

    res = resolution or spec.default_resolution
    if res not in spec.resolutions:
        raise error(
            "resolution",
            f"resolution must be one of {', '.join(spec.resolutions)} for {spec.id} model",
        )
    ratio = aspect_ratio or spec.default_aspect_ratio
    if ratio not in spec.aspect_ratios:
        raise error(
            "aspect_ratio",
            f"aspect_ratio must be one of {', '.join(spec.aspect_ratios)} for {spec.id} model",
        )

    routes = _routes_for(spec, seconds, res, ratio, with_image=with_image, audio=bool(audio))
    if not routes:
        raise _no_route_error(spec, seconds, res, ratio, error)
    return ResolvedRequest(
        model=spec,
        requested_model=requested,
        routes=routes,
        prompt=text,
        negative_prompt=(negative_prompt or "").strip() or None,
        duration_seconds=seconds,
        resolution=res,
        aspect_ratio=ratio,
        audio=bool(audio),
        enhance_prompt=enhance_prompt,
    )


def _whole_seconds(value: float, field: str) -> int:
    if isinstance(value, bool) or not float(value).is_integer():
        raise CatalogError(field, f"{field} must be a whole number of seconds")
    return int(value)


def _routes_for(
    spec: ModelSpec, seconds: int, resolution: str, ratio: str, *, with_image: bool, audio: bool
) -> list[Route]:
    """Every route that can make this video in one clip, in the catalog's failover order."""
    return [
        route.as_route(seconds, with_image=with_image)
        for route in spec.routes
        if resolution in route.resolutions
        and ratio in route.aspect_ratios
        and (route.image_to_video if with_image else route.text_to_video)
        and (route.audio or not audio)
        and route.clip_for(seconds) is not None
    ]


def _no_route_error(
    spec: ModelSpec,
    seconds: int,
    resolution: str,
    ratio: str,
    error: Callable[[str, str], CatalogError],
) -> CatalogError:
    """The most specific reason no route can make the video."""
    shaped = [r for r in spec.routes if resolution in r.resolutions and ratio in r.aspect_ratios]
    if not shaped:
        return error(
            "aspect_ratio",
            f"aspect_ratio {ratio} is not available at {resolution} for {spec.id} model",
        )
    longest = max(r.max_seconds for r in shaped)
    if seconds > longest:
        return error(
            "duration_seconds",
            f"duration_seconds {seconds} is longer than one {spec.id} clip (at most {longest} s); "
            "videos longer than one clip are not supported yet",
        )
    allowed = "; ".join(r.allowed_durations_text() for r in shaped)
    return error(
        "duration_seconds", f"duration_seconds must be one of {allowed} for {spec.id} model"
    )
