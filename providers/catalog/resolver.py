"""The resolver: a client request checked against the catalog, with its routes chosen.

`resolve_request` is the one home of the per-model rules (prompt length, durations,
resolutions, ratios, image and audio); `check_job` re-applies them to a built `JobSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel, Field

from providers.catalog.data import load_models
from providers.catalog.schema import MAX_SEGMENTS, CatalogError, ModelSpec
from providers.families import FAMILIES, PLATFORMS, Family
from reelay.jobs import JobSpec, Route, bought_seconds, quoted_cost_micro_usd

MODELS: tuple[ModelSpec, ...] = load_models()
DEFAULT_MODEL = "runway-gen3"

_BY_NAME: dict[str, ModelSpec] = {
    name.lower(): model for model in MODELS for name in (model.id, *model.aliases)
}
# Keyed by the adapters that serve a route (a platform's, for a family served by several).
_FAMILY_BY_UPSTREAM: dict[tuple[str, str], str] = {
    (adapter, upstream): route.family
    for model in MODELS
    for route in model.routes
    for adapter in PLATFORMS.get(route.adapter, (route.adapter,))
    for upstream in (route.upstream_model, route.image_upstream_model)
    if upstream
}

Error = Callable[[str, str], CatalogError]


def find_model(name: str) -> ModelSpec | None:
    return _BY_NAME.get(name.strip().lower())


def route_family(route: Route) -> Family | None:
    """The vocabulary a route speaks: its own `family`, or (for routes built before the
    field existed) the family the catalog gives that upstream id; None if unknown."""
    name = route.family or _FAMILY_BY_UPSTREAM.get((route.adapter, route.upstream_model))
    return FAMILIES.get(name) if name else None


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
    segments: list[int] = Field(default_factory=list, description="clip lengths when chained")

    @property
    def price_micro_usd_per_second(self) -> int:
        return self.model.price_micro_usd_per_second(self.resolution, self.audio)

    @property
    def estimated_cost_micro_usd(self) -> int:
        return quoted_cost_micro_usd(self.price_micro_usd_per_second, self.duration_seconds)

    @property
    def upstream_seconds(self) -> int:
        """Seconds bought upstream on the first route: the chain's clips, or the one clip."""
        return bought_seconds(self.routes[0], self.duration_seconds, self.segments)


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
    error = _error_in(names or {})
    requested = (model or DEFAULT_MODEL).strip()
    spec = _served_model(requested, error)
    text = _prompt(spec, prompt, error)
    _check_input(spec, error, with_image=with_image, audio=audio)
    with_audio = spec.default_audio if audio is None else audio
    default = spec.default_duration_seconds
    seconds = _seconds(spec, default if duration_seconds is None else duration_seconds, error)
    res = _choice(
        spec, "resolution", resolution or spec.default_resolution, spec.resolutions, error
    )
    ratio = _choice(
        spec, "aspect_ratio", aspect_ratio or spec.default_aspect_ratio, spec.aspect_ratios, error
    )
    routes, segments = _plan(
        spec, seconds, res, ratio, error, with_image=with_image, audio=with_audio
    )
    return ResolvedRequest(
        model=spec,
        requested_model=requested,
        routes=routes,
        prompt=text,
        negative_prompt=(negative_prompt or "").strip() or None,
        duration_seconds=seconds,
        resolution=res,
        aspect_ratio=ratio,
        audio=with_audio,
        enhance_prompt=enhance_prompt,
        segments=segments,
    )


def check_job(job: JobSpec) -> None:
    """Re-check a built job against today's catalog (raises `CatalogError`)."""
    resolve_request(
        prompt=job.prompt,
        model=job.requested_model,
        duration_seconds=job.duration_seconds,
        resolution=job.resolution,
        aspect_ratio=job.aspect_ratio,
        audio=job.audio,
        with_image=job.image is not None,
    )


def _error_in(names: Mapping[str, str]) -> Error:
    def error(field: str, message: str) -> CatalogError:
        label = names.get(field, field)
        return CatalogError(label, message.replace(field, label, 1))

    return error


def _served_model(requested: str, error: Error) -> ModelSpec:
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
    return spec


def _prompt(spec: ModelSpec, prompt: str | None, error: Error) -> str:
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
    return text


def _check_input(spec: ModelSpec, error: Error, *, with_image: bool, audio: bool | None) -> None:
    if not with_image and not spec.text_to_video:
        raise error("image", f"{spec.id} makes videos from an image only: send a source image")
    if with_image and not spec.image_to_video:
        raise error("image", f"{spec.id} does not take a source image (text-to-video only)")
    if audio and not spec.audio:
        raise error("audio", f"audio is not available for {spec.id} model")


def _seconds(spec: ModelSpec, value: float, error: Error) -> int:
    if isinstance(value, bool) or not float(value).is_integer():
        raise error("duration_seconds", "duration_seconds must be a whole number of seconds")
    seconds = int(value)
    if spec.durations and seconds not in spec.durations:
        allowed = ", ".join(str(d) for d in spec.durations)
        raise error(
            "duration_seconds", f"duration_seconds must be one of {allowed} for {spec.id} model"
        )
    if seconds > spec.longest_seconds:
        why = "" if spec.can_chain else " (one clip: its routes cannot continue a video)"
        raise error(
            "duration_seconds",
            f"duration_seconds exceeds maximum of {spec.longest_seconds} for {spec.id} model{why}",
        )
    if seconds < spec.shortest_seconds:
        raise error(
            "duration_seconds",
            f"duration_seconds must be at least {spec.shortest_seconds} for {spec.id} model",
        )
    return seconds


def _choice(spec: ModelSpec, field: str, value: str, allowed: tuple[str, ...], error: Error) -> str:
    if value not in allowed:
        raise error(field, f"{field} must be one of {', '.join(allowed)} for {spec.id} model")
    return value


def _plan(
    spec: ModelSpec,
    seconds: int,
    resolution: str,
    ratio: str,
    error: Error,
    *,
    with_image: bool,
    audio: bool,
) -> tuple[list[Route], list[int]]:
    """Every route that makes the video in one clip, in failover order; else the first
    that makes it as a chain of continued segments, followed by the routes that can make
    the same segments; else the most specific refusal."""
    shape = {"with_image": with_image, "audio": audio}
    routes = [
        route.as_route(seconds, with_image=with_image, resolution=resolution)
        for route in spec.routes
        if route.fits(seconds, resolution, ratio, **shape)
    ]
    if routes:
        return routes, []
    for route in spec.routes:
        if route.shapes(resolution, ratio, **shape):
            plan = route.plan_segments(seconds, resolution)
            if plan is not None and len(plan) <= MAX_SEGMENTS:
                # Failover for the segments: every other route that continues videos and
                # makes each clip of this plan exactly (the chain's clips do not change).
                others = [
                    other
                    for other in spec.routes
                    if other is not route
                    and other.continues_by is not None
                    and other.shapes(resolution, ratio, **shape)
                    and all(clip in other.lengths(resolution) for clip in plan)
                ]
                chain = [r.chain_route(with_image=with_image) for r in (route, *others)]
                return chain, plan
    raise _no_route_error(spec, seconds, resolution, ratio, error, **shape)


def _no_route_error(
    spec: ModelSpec,
    seconds: int,
    resolution: str,
    ratio: str,
    error: Error,
    *,
    with_image: bool,
    audio: bool,
) -> CatalogError:
    """The most specific reason no route can make the video."""
    shaped = [r for r in spec.routes if r.makes_frame(resolution, ratio, with_image=with_image)]
    if not shaped:
        mode = " with a source image" if with_image else ""
        if not with_image and any(
            r.makes_frame(resolution, ratio, with_image=True) for r in spec.routes
        ):
            mode = " without a source image"
        return error(
            "aspect_ratio",
            f"aspect_ratio {ratio} is not available at {resolution}{mode} for {spec.id} model",
        )
    able = [r for r in shaped if (r.image_to_video if with_image else r.text_to_video)]
    if not able:
        mode = "image-to-video" if with_image else "text-to-video"
        return error("resolution", f"{mode} is not available at {resolution} for {spec.id} model")
    if audio and not any(r.audio for r in able):
        return error("audio", f"audio is not available at {resolution} for {spec.id} model")
    able = [r for r in able if r.audio or not audio]
    longest = max(max(r.lengths(resolution)) for r in able)
    if seconds > longest and longest < max(r.max_seconds for r in able):
        return error(
            "duration_seconds",
            f"duration_seconds must be at most {longest} at {resolution} for {spec.id} model",
        )
    if seconds > longest:
        return error(
            "duration_seconds",
            f"duration_seconds {seconds} is longer than one {spec.id} clip (at most {longest} s) "
            f"and no route can continue a video at {resolution} {ratio}",
        )
    allowed = "; ".join(dict.fromkeys(r.allowed_durations_text(resolution) for r in able))
    at = f" at {resolution}" if any(resolution in r.durations_by_resolution for r in able) else ""
    return error(
        "duration_seconds", f"duration_seconds must be one of {allowed}{at} for {spec.id} model"
    )
