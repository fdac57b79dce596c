"""The catalog's schema: a model id clients send (`ModelSpec`) and the provider routes that
serve it (`RouteSpec`). A route names its family (`providers.families`); whatever the route
does not say it takes from the family, and it may only narrow what the family makes."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from providers.families import FAMILIES, Family
from reelay.jobs import Continuation, Route

# A chained segment that starts on the previous one's last frame loses that frame at the
# seam; this much is allowed for (one frame at 4 fps or more).
SEAM_SECONDS = 0.25
# Longer chains are refused: each segment is a provider job of its own.
MAX_SEGMENTS = 12


class CatalogError(ValueError):
    """A request the catalog refuses; `field` is the client-facing parameter name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class RouteSpec(BaseModel):
    """What one upstream model can make in a single clip, and how it is asked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str = Field(description="the upstream vocabulary, a key of providers.families")
    adapter: str
    upstream_model: str
    image_upstream_model: str | None = Field(
        default=None, description="upstream id for image-to-video, when it differs"
    )
    min_seconds: int
    max_seconds: int
    durations: tuple[int, ...] | None = Field(
        default=None, description="discrete one-clip durations; None means the whole range"
    )
    durations_by_resolution: dict[str, tuple[int, ...]] = Field(
        default_factory=dict, description="narrower durations at some resolutions"
    )
    resolutions: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    text_to_video: bool
    image_to_video: bool
    audio: bool
    enhance_prompt: bool
    continuation: Continuation | None = Field(
        default=None, description="how a further segment continues a video; None: it cannot"
    )

    @model_validator(mode="before")
    @classmethod
    def _family_defaults(cls, data: Any) -> Any:
        """Fill what the entry leaves out from its family."""
        if not isinstance(data, dict) or "family" not in data:
            return data
        if data["family"] not in FAMILIES:
            raise ValueError(f"family: {data['family']!r} is not one of {', '.join(FAMILIES)}")
        family = FAMILIES[data["family"]]
        filled = {
            "adapter": family.adapter,
            "resolutions": family.resolutions,
            "aspect_ratios": _union([family.aspect_ratios, family.image_aspect_ratios or ()]),
            "text_to_video": family.text_to_video,
            "image_to_video": family.image_to_video,
            "audio": family.audio,
            "enhance_prompt": family.enhance_prompt,
            "continuation": family.continuation,
            "durations_by_resolution": {
                r: d
                for r, d in family.durations_by_resolution.items()
                if r in data.get("resolutions", family.resolutions)
            },
            **data,
        }
        if "durations" in data:
            durations = tuple(data["durations"])
            filled.setdefault("min_seconds", min(durations, default=0))
            filled.setdefault("max_seconds", max(durations, default=0))
        elif "min_seconds" not in data and "max_seconds" not in data:
            lengths = family.durations
            filled["min_seconds"], filled["max_seconds"] = min(lengths), max(lengths)
            if lengths != tuple(range(min(lengths), max(lengths) + 1)):
                filled["durations"] = lengths
        return filled

    @model_validator(mode="after")
    def _within_family(self) -> RouteSpec:
        """A route offers only what its family makes."""
        family = self.vocabulary
        if self.adapter != family.adapter:
            raise ValueError(f"adapter: {self.adapter!r} is not family {family.name}'s")
        ratios = _union([family.aspect_ratios, family.image_aspect_ratios or ()])
        lengths = {
            length
            for r in self.resolutions
            for length in set(self.lengths(r)) - set(family.lengths(r))
        }
        checks: list[tuple[str, set[Any]]] = [
            ("resolutions", set(self.resolutions) - set(family.resolutions)),
            ("aspect_ratios", set(self.aspect_ratios) - set(ratios)),
            ("durations", lengths),
            ("durations_by_resolution", set(self.durations_by_resolution) - set(self.resolutions)),
        ]
        for name, extra in checks:
            if extra:
                raise ValueError(
                    f"{name}: offers {sorted(extra)}, which family {family.name} does not make"
                )
        for name in ("text_to_video", "image_to_video", "audio", "enhance_prompt"):
            if getattr(self, name) and not getattr(family, name):
                raise ValueError(f"{name}: not something family {family.name} does")
        return self

    @property
    def vocabulary(self) -> Family:
        return FAMILIES[self.family]

    @property
    def continues_by(self) -> Continuation | None:
        if self.continuation is Continuation.LAST_FRAME and not self.image_to_video:
            return None  # a last frame goes on only through image-to-video
        return self.continuation

    def upstream_for(self, *, with_image: bool) -> str:
        if with_image and self.image_upstream_model:
            return self.image_upstream_model
        return self.upstream_model

    def lengths(self, resolution: str | None = None) -> tuple[int, ...]:
        if resolution in self.durations_by_resolution:
            return self.durations_by_resolution[resolution]
        return self.durations or tuple(range(self.min_seconds, self.max_seconds + 1))

    def clip_for(self, seconds: int, resolution: str | None = None) -> int | None:
        """The one-clip length this route makes for `seconds`: exact, else the next longer."""
        return next((d for d in sorted(self.lengths(resolution)) if d >= seconds), None)

    def makes_frame(self, resolution: str, ratio: str, *, with_image: bool) -> bool:
        return (
            resolution in self.resolutions
            and ratio in self.aspect_ratios
            and self.vocabulary.frame_refusal(resolution, ratio, with_image=with_image) is None
        )

    def shapes(self, resolution: str, ratio: str, *, with_image: bool, audio: bool) -> bool:
        """Whether this route makes videos of this frame, input and sound (any length)."""
        return (
            self.makes_frame(resolution, ratio, with_image=with_image)
            and (self.image_to_video if with_image else self.text_to_video)
            and (self.audio or not audio)
        )

    def fits(
        self, seconds: int, resolution: str, ratio: str, *, with_image: bool, audio: bool
    ) -> bool:
        """Can this route make this video in one clip (generated longer and trimmed if need be)."""
        return (
            self.shapes(resolution, ratio, with_image=with_image, audio=audio)
            and self.clip_for(seconds, resolution) is not None
        )

    def plan_segments(self, seconds: int, resolution: str | None = None) -> list[int] | None:
        """Clip lengths of a chain that makes `seconds`; None if the route cannot chain.

        Every clip is as long as the route makes, the last one just long enough. A
        last-frame continuation repeats its first frame, which stitching drops: the chain
        may end that one frame short (SEAM_SECONDS) rather than buy a clip to cover it.
        """
        if self.continues_by is None:
            return None
        longest = max(self.lengths(resolution))
        seam = SEAM_SECONDS if self.continues_by is Continuation.LAST_FRAME else 0.0
        target = seconds - seam
        clips = [longest]
        covered = float(longest)
        while covered < target:
            clip = self.clip_for(math.ceil(target - covered + seam), resolution) or longest
            clips.append(clip)
            covered += clip - seam
        return clips

    def upstream_seconds(self, seconds: int, resolution: str | None = None) -> int:
        """Seconds bought upstream for a video of `seconds`: one clip, else the chain's."""
        clip = self.clip_for(seconds, resolution)
        if clip is not None:
            return clip
        return sum(self.plan_segments(seconds, resolution) or [])

    def chain_route(self, *, with_image: bool) -> Route:
        """The route of a chained job: the first segment as asked, the rest continuations."""
        then = self.upstream_model
        if self.continues_by is Continuation.LAST_FRAME:
            then = self.image_upstream_model or self.upstream_model
        return Route(
            adapter=self.adapter,
            upstream_model=self.upstream_for(with_image=with_image),
            family=self.family,
            continuation=self.continues_by,
            continue_model=then,
        )

    def as_route(self, seconds: int, *, with_image: bool, resolution: str | None = None) -> Route:
        clip = self.clip_for(seconds, resolution)
        return Route(
            adapter=self.adapter,
            upstream_model=self.upstream_for(with_image=with_image),
            family=self.family,
            clip_seconds=clip if clip != seconds else None,
        )

    def allowed_durations_text(self, resolution: str | None = None) -> str:
        if resolution in self.durations_by_resolution or self.durations:
            return ", ".join(str(d) for d in self.lengths(resolution))
        return f"{self.min_seconds} to {self.max_seconds}"


class ModelSpec(BaseModel):
    """A model id clients send: its published limits and price, and the routes serving it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
    default_audio: bool = Field(default=False, description="audio when the request is silent")
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
    notes: str | None = Field(
        default=None,
        description="how Reelay serves what the upstream does not make as asked "
        "(another route, a limit); shown in GET /v1/models",
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
    def can_chain(self) -> bool:
        return any(r.continues_by is not None for r in self.routes)

    @property
    def longest_seconds(self) -> int:
        """The longest video Reelay makes: the published maximum when segments can be
        chained, else what one clip holds."""
        if self.can_chain:
            return self.max_duration_seconds
        return min(self.max_duration_seconds, self.one_clip_seconds)

    def upstream_seconds(self, seconds: int, resolution: str | None = None) -> int:
        """Seconds the first route able to make `seconds` buys upstream (for /v1/models)."""
        for route in self.routes:
            if resolution is None or resolution in route.resolutions:
                return route.upstream_seconds(seconds, resolution)
        return 0

    @property
    def text_to_video(self) -> bool:
        return any(r.text_to_video for r in self.routes)

    @property
    def image_to_video(self) -> bool:
        return any(r.image_to_video for r in self.routes)

    @property
    def audio(self) -> bool:
        return any(r.audio for r in self.routes)


class Catalog(BaseModel):
    """The whole data file."""

    model_config = ConfigDict(extra="forbid")

    models: tuple[ModelSpec, ...]


def _union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        seen.update(dict.fromkeys(group))
    return tuple(seen)
