"""The model catalog: which model ids exist, their published limits and price, and the
provider routes that serve them. `resolve_request` turns a client request into a `JobSpec`
input, or raises `CatalogError` naming the field and the rule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import date

from pydantic import BaseModel, Field

from reelay.jobs import Continuation, Route

# A chained segment that starts on the previous one's last frame loses that frame at the
# seam; this much is allowed for (one frame at 4 fps or more).
SEAM_SECONDS = 0.25
# Longer chains are refused: each segment is a provider job of its own.
MAX_SEGMENTS = 12
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
    durations_by_resolution: dict[str, tuple[int, ...]] = Field(
        default_factory=dict, description="narrower durations at some resolutions"
    )
    resolutions: tuple[str, ...] = RESOLUTIONS
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16", "1:1")
    text_to_video: bool = True
    image_to_video: bool = False
    audio: bool = False
    enhance_prompt: bool = False
    continuation: Continuation | None = Field(
        default=None,
        description="how a further segment continues a video; by default the last frame "
        "through image-to-video, where the route takes images",
    )

    @property
    def continues_by(self) -> Continuation | None:
        if self.continuation is not None:
            return self.continuation
        return Continuation.LAST_FRAME if self.image_to_video else None

    def plan_segments(self, seconds: int, resolution: str | None = None) -> list[int] | None:
        """Clip lengths of a chain that makes at least `seconds`; None if it cannot chain.

        Every clip is as long as the route makes, the last one just long enough. A
        last-frame continuation repeats its first frame, which stitching drops: allow for it.
        """
        mechanism = self.continues_by
        if mechanism is None:
            return None
        longest = max(self.lengths(resolution))
        seam = SEAM_SECONDS if mechanism is Continuation.LAST_FRAME else 0.0
        clips = [longest]
        covered = float(longest)
        while covered < seconds:
            clip = self.clip_for(math.ceil(seconds - covered + seam), resolution) or longest
            clips.append(clip)
            covered += clip - seam
        return clips

    def chain_route(self, *, with_image: bool) -> Route:
        """The route of a chained job: the first segment as asked, the rest continuations."""
        first = self.image_upstream_model if with_image and self.image_upstream_model else None
        then = self.upstream_model
        if self.continues_by is Continuation.LAST_FRAME:
            then = self.image_upstream_model or self.upstream_model
        return Route(
            adapter=self.adapter,
            upstream_model=first or self.upstream_model,
            continuation=self.continues_by,
            continue_model=then,
        )

    def lengths(self, resolution: str | None = None) -> tuple[int, ...]:
        if resolution in self.durations_by_resolution:
            return self.durations_by_resolution[resolution]
        return self.durations or tuple(range(self.min_seconds, self.max_seconds + 1))

    def clip_for(self, seconds: int, resolution: str | None = None) -> int | None:
        """The one-clip length this route makes for `seconds`: exact, else the next longer."""
        return next((d for d in sorted(self.lengths(resolution)) if d >= seconds), None)

    def as_route(self, seconds: int, *, with_image: bool, resolution: str | None = None) -> Route:
        clip = self.clip_for(seconds, resolution)
        upstream = self.upstream_model
        if with_image and self.image_upstream_model:
            upstream = self.image_upstream_model
        return Route(
            adapter=self.adapter,
            upstream_model=upstream,
            clip_seconds=clip if clip != seconds else None,
        )

    def allowed_durations_text(self, resolution: str | None = None) -> str:
        if resolution in self.durations_by_resolution or self.durations:
            return ", ".join(str(d) for d in self.lengths(resolution))
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


# Upstream vocabularies (see /work/shared/PROVIDERS.md).
WIDE = ("16:9", "9:16")
WIDE_SQUARE = ("16:9", "9:16", "1:1")
LUMA_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
LUMA_RESOLUTIONS = ("540p", "720p", "1080p", "4k")
PIKA_RATIOS = ("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")
SEEDANCE_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
SEEDANCE_RESOLUTIONS = ("480p", "720p", "1080p")
HAILUO_RATIOS = ("16:9",)  # Hailuo text-to-video makes landscape only
KLING_PROMPT_CHARS = 2500

# Route factories, one per upstream family. Ids marked "guessed" follow the family's naming
# but are not in PROVIDERS.md; fix them here if the provider says otherwise.


def _gemini(model: str, *, durations: tuple[int, ...] = (4, 6, 8), **extra: object) -> RouteSpec:
    return RouteSpec.model_validate(
        {
            "adapter": "gemini",
            "upstream_model": model,
            "min_seconds": min(durations),
            "max_seconds": max(durations),
            "durations": durations,
            "aspect_ratios": WIDE,
            "image_to_video": True,
            "audio": not model.startswith("veo-2"),
            "enhance_prompt": True,
            # Veo 3.1 extends its own videos; older Veo continues from a last frame.
            "continuation": Continuation.EXTEND if model.startswith("veo-3.1") else None,
            **extra,
        }
    )


def _runway(model: str, durations: tuple[int, ...], **extra: object) -> RouteSpec:
    return RouteSpec.model_validate(
        {
            "adapter": "runway",
            "upstream_model": model,
            "min_seconds": min(durations),
            "max_seconds": max(durations),
            "durations": durations,
            "aspect_ratios": WIDE,
            "image_to_video": True,
            **extra,
        }
    )


def _luma(model: str) -> RouteSpec:
    return RouteSpec(
        adapter="luma",
        upstream_model=model,
        min_seconds=5,
        max_seconds=9,
        durations=(5, 9),
        resolutions=LUMA_RESOLUTIONS,
        aspect_ratios=LUMA_RATIOS,
        image_to_video=True,
        continuation=Continuation.KEYFRAME,  # the earlier generation as frame0
    )


def _fal(
    model: str, image_model: str | None, seconds: tuple[int, int], **extra: object
) -> RouteSpec:
    """A fal route; `image_model` None means the model is image-to-video only."""
    return RouteSpec.model_validate(
        {
            "adapter": "fal",
            "upstream_model": model,
            "image_upstream_model": image_model,
            "min_seconds": seconds[0],
            "max_seconds": seconds[1],
            "text_to_video": image_model is not None,
            "image_to_video": True,
            **extra,
        }
    )


def _replicate(model: str, seconds: tuple[int, int], **extra: object) -> RouteSpec:
    return RouteSpec.model_validate(
        {
            "adapter": "replicate",
            "upstream_model": model,
            "min_seconds": seconds[0],
            "max_seconds": seconds[1],
            "image_to_video": True,
            **extra,
        }
    )


KLING_CLIPS: dict[str, object] = {
    "durations": (5, 10),
    "resolutions": ("1080p",),
    "aspect_ratios": WIDE_SQUARE,
}


def _kling_fal(version: str, *, image_only: bool = False, **extra: object) -> RouteSpec:
    base = f"fal-ai/kling-video/{version}"
    if image_only:
        return _fal(f"{base}/image-to-video", None, (5, 10), **{**KLING_CLIPS, **extra})
    return _fal(
        f"{base}/text-to-video", f"{base}/image-to-video", (5, 10), **{**KLING_CLIPS, **extra}
    )


HAILUO: dict[str, object] = {"durations": (6, 10), "aspect_ratios": HAILUO_RATIOS}
HAILUO_REPLICATE: dict[str, object] = {
    **HAILUO,
    "resolutions": ("768p", "1080p"),
    "durations_by_resolution": {"1080p": (6,)},
    "enhance_prompt": True,
}
SEEDANCE: dict[str, object] = {
    "resolutions": SEEDANCE_RESOLUTIONS,
    "aspect_ratios": SEEDANCE_RATIOS,
}


def _seedance_fal(version: str, seconds: tuple[int, int] = (2, 12), **extra: object) -> RouteSpec:
    base = f"fal-ai/bytedance/seedance/{version}"
    extra = {**SEEDANCE, **extra}
    return _fal(f"{base}/text-to-video", f"{base}/image-to-video", seconds, **extra)


def _seedance_replicate(
    name: str, seconds: tuple[int, int] = (2, 12), **extra: object
) -> RouteSpec:
    return _replicate(f"bytedance/{name}", seconds, **{**SEEDANCE, **extra})


MODELS: tuple[ModelSpec, ...] = (
    # --- Seed 000: limits and prices exactly as published ---------------------------------
    ModelSpec(
        id="veo-3",
        name="Google Veo 3",
        vendor="Google",
        aliases=(
            "google/veo-3.0-generate-preview",  # seed 001
            "veo-3.0-generate-preview",
            "veo-3.0-generate-001",
        ),
        max_duration_seconds=60,
        default_duration_seconds=4,
        price_usd_per_second=0.35,
        routes=(_gemini("veo-3.0-generate-001"), _runway("veo3", (8,))),
    ),
    ModelSpec(
        id="runway-gen3",
        name="Runway Gen-3",
        vendor="Runway",
        max_duration_seconds=16,
        default_duration_seconds=4,
        price_usd_per_second=0.10,
        # Served by Gen-4.5 (Gen-3 is gone from Runway's API); `model_used` says so.
        routes=(
            RouteSpec(
                adapter="runway",
                upstream_model="gen4.5",
                min_seconds=2,
                max_seconds=10,
                image_to_video=True,  # Gen-4.5 also takes a first image: chains go on from it
            ),
        ),
    ),
    ModelSpec(
        id="luma-dream-machine",
        name="Luma Dream Machine",
        vendor="Luma AI",
        max_duration_seconds=10,
        min_duration_seconds=1,  # shorter than a clip: generated at 5 s and trimmed
        default_duration_seconds=4,
        price_usd_per_second=0.06,
        routes=(_luma("ray-2"),),
    ),
    ModelSpec(
        id="pika",
        name="Pika",
        vendor="Pika Labs",
        max_duration_seconds=4,
        min_duration_seconds=1,  # generated at 5 s and trimmed
        default_duration_seconds=4,
        price_usd_per_second=0.067,
        routes=(
            _fal(
                "fal-ai/pika/v2.2/text-to-video",
                "fal-ai/pika/v2.2/image-to-video",
                (5, 10),
                durations=(5, 10),
                aspect_ratios=PIKA_RATIOS,
            ),
        ),
    ),
    # --- Google Veo (Gemini API first, Runway's Veo as the fallback) -----------------------
    # Prices: Gemini API list prices per second (audio prices where Google charges extra).
    ModelSpec(
        # Seed 004 publishes Veo 3.0 with discrete durations (seed 000's veo-3 fits any length
        # up to its maximum by trimming), so its id is a model of its own.
        id="veo-3.0",
        name="Google Veo 3.0",
        vendor="Google",
        aliases=("google/veo-3.0",),
        max_duration_seconds=8,
        durations=(4, 6, 8),
        default_duration_seconds=8,
        price_usd_per_second=0.20,  # guessed: Veo 3 without audio
        routes=(_gemini("veo-3.0-generate-001"), _runway("veo3", (8,))),
    ),
    ModelSpec(
        id="veo-3-audio",
        name="Google Veo 3.0 Audio",
        vendor="Google",
        aliases=("google/veo-3.0-audio", "veo-3.0-audio"),  # seed 004's "Veo 3.0 Audio"
        max_duration_seconds=8,
        durations=(4, 6, 8),
        default_duration_seconds=8,
        default_audio=True,
        price_usd_per_second=0.40,
        routes=(_gemini("veo-3.0-generate-001"),),
    ),
    ModelSpec(
        id="veo-3-fast",
        name="Google Veo 3 Fast",
        vendor="Google",
        aliases=("google/veo-3.0-fast", "veo-3.0-fast-generate-001"),
        max_duration_seconds=8,
        default_duration_seconds=8,
        price_usd_per_second=0.15,
        routes=(_gemini("veo-3.0-fast-generate-001"),),
    ),
    ModelSpec(
        id="veo-3.1",
        name="Google Veo 3.1",
        vendor="Google",
        aliases=("google/veo-3.1", "veo-3.1-generate-preview"),
        max_duration_seconds=8,
        default_duration_seconds=8,
        max_prompt_chars=3000,  # seed 003
        price_usd_per_second=0.20,
        audio_price_usd_per_second=0.40,
        routes=(
            _gemini("veo-3.1-generate-preview", durations_by_resolution={"1080p": (8,)}),
            _runway("veo3.1", (4, 6, 8), audio=True),
        ),
    ),
    ModelSpec(
        id="veo-3.1-fast",
        name="Google Veo 3.1 Fast",
        vendor="Google",
        aliases=("google/veo-3.1-fast", "veo-3.1-fast-generate-preview"),
        max_duration_seconds=8,
        default_duration_seconds=8,
        max_prompt_chars=3000,
        price_usd_per_second=0.10,
        audio_price_usd_per_second=0.15,
        routes=(
            _gemini("veo-3.1-fast-generate-preview", durations_by_resolution={"1080p": (8,)}),
            _runway("veo3.1_fast", (4, 6, 8), audio=True),
        ),
    ),
    ModelSpec(
        id="veo-2",
        name="Google Veo 2",
        vendor="Google",
        aliases=("google/veo-2.0", "veo-2.0", "veo-2.0-generate-001"),  # seed 004's "Veo 2.0"
        max_duration_seconds=8,
        default_duration_seconds=8,
        default_resolution="720p",
        price_usd_per_second=0.35,
        routes=(_gemini("veo-2.0-generate-001", durations=(5, 6, 7, 8), resolutions=("720p",)),),
    ),
    # --- Runway ----------------------------------------------------------------------------
    ModelSpec(
        id="runway-gen4.5",
        name="Runway Gen-4.5",
        vendor="Runway",
        aliases=("runway-gen-4.5", "gen4.5"),  # seed 003 spells it with a dash
        max_duration_seconds=10,
        default_duration_seconds=5,
        default_resolution="720p",
        max_prompt_chars=1000,  # seed 003, and Runway's own limit
        price_usd_per_second=0.12,  # 12 credits/s, guessed at $0.01 a credit
        routes=(_runway("gen4.5", tuple(range(2, 11)), resolutions=("720p",)),),
    ),
    ModelSpec(
        id="runway-gen4-turbo",
        name="Runway Gen-4 Turbo",
        vendor="Runway",
        aliases=("gen4_turbo", "runway-gen-4-turbo"),
        max_duration_seconds=10,
        default_duration_seconds=5,
        default_resolution="720p",
        max_prompt_chars=1000,
        price_usd_per_second=0.05,  # 5 credits/s
        # Runway's API takes gen4_turbo for image-to-video only.
        routes=(
            _runway(
                "gen4_turbo",
                (5, 10),
                resolutions=("720p",),
                aspect_ratios=WIDE_SQUARE,
                text_to_video=False,
            ),
        ),
    ),
    # --- Luma ------------------------------------------------------------------------------
    # Prices guessed from Luma's per-resolution list (ray-flash-2 about a third of ray-2).
    ModelSpec(
        id="luma-ray-2",
        name="Luma Ray 2",
        vendor="Luma AI",
        aliases=("ray-2", "luma/ray-2"),
        max_duration_seconds=9,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.14,
        price_by_resolution={"540p": 0.08, "720p": 0.14, "1080p": 0.30, "4k": 0.60},
        routes=(_luma("ray-2"),),
    ),
    ModelSpec(
        id="luma-ray-flash-2",
        name="Luma Ray Flash 2",
        vendor="Luma AI",
        aliases=("ray-flash-2", "luma/ray-flash-2"),
        max_duration_seconds=9,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.05,
        price_by_resolution={"540p": 0.03, "720p": 0.05, "1080p": 0.10, "4k": 0.20},
        routes=(_luma("ray-flash-2"),),
    ),
    # --- Kling: fal first, Replicate as the fallback (fal list prices) ----------------------
    ModelSpec(
        id="kling-2.1",
        name="Kling 2.1",
        vendor="Kuaishou",
        aliases=("kling-v2.1",),
        max_duration_seconds=10,
        default_duration_seconds=5,
        max_prompt_chars=KLING_PROMPT_CHARS,
        price_usd_per_second=0.09,
        routes=(_kling_fal("v2.1/pro", image_only=True),),
    ),
    ModelSpec(
        id="kling-2.1-master",
        name="Kling 2.1 Master",
        vendor="Kuaishou",
        aliases=("kling-v2.1-master",),
        max_duration_seconds=10,
        default_duration_seconds=5,
        max_prompt_chars=KLING_PROMPT_CHARS,
        price_usd_per_second=0.28,
        routes=(
            _kling_fal("v2.1/master"),
            _replicate("kwaivgi/kling-v2.1-master", (5, 10), **KLING_CLIPS),
        ),
    ),
    ModelSpec(
        id="kling-2.5-turbo-pro",
        name="Kling 2.5 Turbo Pro",
        vendor="Kuaishou",
        aliases=("kling-v2.5-turbo-pro", "kwaivgi/kling-v2.5-turbo-pro"),
        max_duration_seconds=10,
        default_duration_seconds=5,
        max_prompt_chars=KLING_PROMPT_CHARS,
        price_usd_per_second=0.07,
        routes=(
            _kling_fal("v2.5-turbo/pro"),
            _replicate("kwaivgi/kling-v2.5-turbo-pro", (5, 10), **KLING_CLIPS),
        ),
    ),
    ModelSpec(
        id="kling-2.6",
        name="Kling 2.6",
        vendor="Kuaishou",
        aliases=("kling-v2.6",),
        max_duration_seconds=10,
        default_duration_seconds=5,
        max_prompt_chars=KLING_PROMPT_CHARS,
        price_usd_per_second=0.07,
        audio_price_usd_per_second=0.14,
        routes=(
            _kling_fal("v2.6/pro", audio=True),
            _replicate("kwaivgi/kling-v2.6", (5, 10), audio=True, **KLING_CLIPS),  # guessed id
        ),
    ),
    ModelSpec(
        id="kling-3.0",
        name="Kling 3.0",
        vendor="Kuaishou",
        # seed 003's Kling 3.0 Pro and seed 004's "Kling v3" are the same upstream model
        aliases=("kling-3.0-pro", "kling-v3", "kwaivgi/kling-v3"),
        max_duration_seconds=15,
        default_duration_seconds=5,
        max_prompt_chars=KLING_PROMPT_CHARS,  # seed 003
        price_usd_per_second=0.112,  # guessed
        audio_price_usd_per_second=0.168,
        routes=(
            _fal(
                "fal-ai/kling-video/v3/pro/text-to-video",
                "fal-ai/kling-video/v3/pro/image-to-video",
                (3, 15),
                resolutions=("1080p",),
                aspect_ratios=WIDE_SQUARE,
                audio=True,
            ),
        ),
    ),
    # --- MiniMax Hailuo: fal (512p/768p) first, Replicate (768p/1080p) ----------------------
    ModelSpec(
        id="hailuo-02",
        name="MiniMax Hailuo 02",
        vendor="MiniMax",
        aliases=("minimax/hailuo-02", "hailuo-02-standard"),  # seed 004's "Hailuo 02"
        max_duration_seconds=10,
        durations=(6, 10),  # seed 004
        default_duration_seconds=6,
        default_resolution="768p",
        max_prompt_chars=2000,
        price_usd_per_second=0.045,
        price_by_resolution={"512p": 0.017, "768p": 0.045, "1080p": 0.08},
        routes=(
            _fal(
                "fal-ai/minimax/hailuo-02/standard/text-to-video",
                "fal-ai/minimax/hailuo-02/standard/image-to-video",
                (6, 10),
                resolutions=("512p", "768p"),
                enhance_prompt=True,
                **HAILUO,
            ),
            _replicate("minimax/hailuo-02", (6, 10), **HAILUO_REPLICATE),
        ),
    ),
    ModelSpec(
        id="hailuo-2.3",
        name="MiniMax Hailuo 2.3",
        vendor="MiniMax",
        aliases=("minimax/hailuo-2.3",),
        max_duration_seconds=10,
        default_duration_seconds=6,
        default_resolution="768p",
        max_prompt_chars=2000,
        price_usd_per_second=0.047,
        price_by_resolution={"768p": 0.047, "1080p": 0.082},
        routes=(
            _fal(  # guessed id, by analogy with hailuo-02
                "fal-ai/minimax/hailuo-2.3/standard/text-to-video",
                "fal-ai/minimax/hailuo-2.3/standard/image-to-video",
                (6, 10),
                resolutions=("768p",),
                enhance_prompt=True,
                **HAILUO,
            ),
            _replicate("minimax/hailuo-2.3", (6, 10), **HAILUO_REPLICATE),
        ),
    ),
    ModelSpec(
        id="hailuo-2.3-fast",
        name="MiniMax Hailuo 2.3 Fast",
        vendor="MiniMax",
        aliases=("minimax/hailuo-2.3-fast",),
        max_duration_seconds=10,
        default_duration_seconds=6,
        default_resolution="768p",
        max_prompt_chars=2000,
        price_usd_per_second=0.032,
        price_by_resolution={"768p": 0.032, "1080p": 0.055},
        # An image-to-video model.
        routes=(
            _fal(  # guessed id
                "fal-ai/minimax/hailuo-2.3-fast/standard/image-to-video",
                None,
                (6, 10),
                resolutions=("768p",),
                enhance_prompt=True,
                **HAILUO,
            ),
            _replicate("minimax/hailuo-2.3-fast", (6, 10), text_to_video=False, **HAILUO_REPLICATE),
        ),
    ),
    # --- ByteDance Seedance: fal first, Replicate as the fallback --------------------------
    ModelSpec(
        id="seedance-1-lite",
        name="Seedance 1 Lite",
        vendor="ByteDance",
        aliases=("bytedance/seedance-1-lite",),
        max_duration_seconds=12,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.036,
        price_by_resolution={"480p": 0.018, "720p": 0.036, "1080p": 0.072},
        routes=(_seedance_fal("v1/lite"), _seedance_replicate("seedance-1-lite")),
    ),
    ModelSpec(
        id="seedance-1-pro",
        name="Seedance 1 Pro",
        vendor="ByteDance",
        # seed 004's "Seedance" (2-12 s) is this model
        aliases=("bytedance/seedance-1-pro", "seedance", "bytedance/seedance"),
        max_duration_seconds=12,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.06,
        price_by_resolution={"480p": 0.03, "720p": 0.06, "1080p": 0.124},
        routes=(_seedance_fal("v1/pro"), _seedance_replicate("seedance-1-pro")),
    ),
    ModelSpec(
        id="seedance-1-pro-fast",
        name="Seedance 1 Pro Fast",
        vendor="ByteDance",
        aliases=("bytedance/seedance-1-pro-fast",),
        max_duration_seconds=12,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.025,
        price_by_resolution={"480p": 0.012, "720p": 0.025, "1080p": 0.05},
        routes=(_seedance_fal("v1/pro/fast"), _seedance_replicate("seedance-1-pro-fast")),
    ),
    ModelSpec(
        id="seedance-1.5-pro",
        name="Seedance 1.5 Pro",
        vendor="ByteDance",
        aliases=("bytedance/seedance-1.5-pro",),
        max_duration_seconds=12,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.052,
        price_by_resolution={"480p": 0.026, "720p": 0.052, "1080p": 0.10},
        audio_price_usd_per_second=0.104,
        routes=(  # guessed ids
            _seedance_fal("v1.5/pro", (4, 12), audio=True),
            _seedance_replicate("seedance-1.5-pro", (4, 12), audio=True),
        ),
    ),
    ModelSpec(
        id="seedance-2",
        name="Seedance 2.0",
        vendor="ByteDance",
        aliases=("seedance-2.0", "bytedance/seedance-2"),
        max_duration_seconds=15,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.15,  # guessed
        audio_price_usd_per_second=0.20,
        routes=(_seedance_fal("v2/pro", (4, 15), audio=True),),  # guessed id and limits
    ),
    ModelSpec(
        id="seedance-2-fast",
        name="Seedance 2.0 Fast",
        vendor="ByteDance",
        aliases=("seedance-2.0-fast", "bytedance/seedance-2-fast"),
        max_duration_seconds=15,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.08,  # guessed
        audio_price_usd_per_second=0.10,
        routes=(_seedance_fal("v2/fast", (4, 15), audio=True),),  # guessed id and limits
    ),
    # --- Alibaba Wan -----------------------------------------------------------------------
    ModelSpec(
        id="wan-2.2",
        name="Wan 2.2 A14B",
        vendor="Alibaba",
        aliases=("wan-2.2-a14b",),
        max_duration_seconds=10,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.08,
        price_by_resolution={"480p": 0.04, "580p": 0.06, "720p": 0.08},
        routes=(
            _fal(
                "fal-ai/wan/v2.2-a14b/text-to-video",
                "fal-ai/wan/v2.2-a14b/image-to-video",
                (2, 10),  # num_frames 33..161 at 16 fps
                resolutions=("480p", "580p", "720p"),
                aspect_ratios=WIDE_SQUARE,
                enhance_prompt=True,
            ),
        ),
    ),
    ModelSpec(
        id="wan-2.5",
        name="Wan 2.5",
        vendor="Alibaba",
        aliases=("wan-2.5-preview",),
        max_duration_seconds=10,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.10,
        price_by_resolution={"480p": 0.05, "720p": 0.10, "1080p": 0.15},
        routes=(
            _fal(
                "fal-ai/wan-25-preview/text-to-video",
                "fal-ai/wan-25-preview/image-to-video",
                (5, 10),
                durations=(5, 10),
                resolutions=SEEDANCE_RESOLUTIONS,
                aspect_ratios=WIDE_SQUARE,
                enhance_prompt=True,
            ),
            _replicate(
                "wan-video/wan-2.5-t2v",
                (5, 10),
                image_upstream_model="wan-video/wan-2.5-i2v",
                durations=(5, 10),
                resolutions=SEEDANCE_RESOLUTIONS,
                aspect_ratios=WIDE,
                enhance_prompt=True,
            ),
        ),
    ),
    ModelSpec(
        id="wan-2.5-fast",
        name="Wan 2.5 Fast",
        vendor="Alibaba",
        max_duration_seconds=10,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.068,
        price_by_resolution={"720p": 0.068, "1080p": 0.102},
        routes=(
            _replicate(
                "wan-video/wan-2.5-t2v-fast",
                (5, 10),
                image_upstream_model="wan-video/wan-2.5-i2v-fast",
                durations=(5, 10),
                aspect_ratios=WIDE,
                enhance_prompt=True,
            ),
        ),
    ),
    ModelSpec(
        id="wan-2.6",
        name="Wan 2.6",
        vendor="Alibaba",
        max_duration_seconds=15,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.10,
        price_by_resolution={"720p": 0.10, "1080p": 0.15},
        routes=(
            _fal(  # guessed ids
                "wan/v2.6/text-to-video",
                "wan/v2.6/image-to-video",
                (5, 15),
                durations=(5, 10, 15),
                aspect_ratios=WIDE_SQUARE,
                enhance_prompt=True,
            ),
        ),
    ),
    ModelSpec(
        id="wan-2.6-flash",
        name="Wan 2.6 Flash",
        vendor="Alibaba",
        max_duration_seconds=15,
        default_duration_seconds=5,
        default_resolution="720p",
        price_usd_per_second=0.05,
        price_by_resolution={"720p": 0.05, "1080p": 0.075},
        # An image-to-video model.
        routes=(
            _fal(  # guessed id
                "wan/v2.6/image-to-video/flash",
                None,
                (5, 15),
                durations=(5, 10, 15),
                aspect_ratios=WIDE_SQUARE,
                enhance_prompt=True,
            ),
        ),
    ),
    # --- Known to clients, not served ------------------------------------------------------
    ModelSpec(
        id="sora-2",
        name="OpenAI Sora 2",
        vendor="OpenAI",
        aliases=("openai/sora-2",),
        max_duration_seconds=12,
        durations=(4, 8, 12),
        default_duration_seconds=4,
        default_resolution="720p",
        price_usd_per_second=0.10,
        retired_on=date(2026, 9, 24),
    ),
    ModelSpec(
        id="sora-2-pro",
        name="OpenAI Sora 2 Pro",
        vendor="OpenAI",
        aliases=("openai/sora-2-pro",),
        max_duration_seconds=12,
        durations=(4, 8, 12),
        default_duration_seconds=4,
        default_resolution="720p",
        price_usd_per_second=0.30,
        retired_on=date(2026, 9, 24),
    ),
    ModelSpec(
        id="grok-imagine-video",
        name="xAI Grok Imagine Video",
        vendor="xAI",
        max_duration_seconds=15,
        default_duration_seconds=6,
        price_usd_per_second=0.05,
        unavailable_reason=(
            "xAI serves Grok Imagine Video only through its own API, which Reelay has no "
            "adapter for yet"
        ),
    ),
    ModelSpec(
        id="midjourney-video",
        name="Midjourney Video",
        vendor="Midjourney",
        max_duration_seconds=21,
        default_duration_seconds=5,
        price_usd_per_second=0.0,
        unavailable_reason="Midjourney offers no public API",
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
    segments: list[int] = Field(default_factory=list, description="clip lengths when chained")

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
    with_audio = spec.default_audio if audio is None else audio

    seconds = _whole_seconds(
        spec.default_duration_seconds if duration_seconds is None else duration_seconds,
        name.get("duration_seconds", "duration_seconds"),
    )
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

    routes = _routes_for(spec, seconds, res, ratio, with_image=with_image, audio=with_audio)
    segments: list[int] = []
    if not routes:
        chain = _chain_for(spec, seconds, res, ratio, with_image=with_image, audio=with_audio)
        if chain is None:
            raise _no_route_error(
                spec, seconds, res, ratio, error, with_image=with_image, audio=with_audio
            )
        route, segments = chain
        routes = [route]
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


def _whole_seconds(value: float, field: str) -> int:
    if isinstance(value, bool) or not float(value).is_integer():
        raise CatalogError(field, f"{field} must be a whole number of seconds")
    return int(value)


def _routes_for(
    spec: ModelSpec, seconds: int, resolution: str, ratio: str, *, with_image: bool, audio: bool
) -> list[Route]:
    """Every route that can make this video in one clip, in the catalog's failover order."""
    return [
        route.as_route(seconds, with_image=with_image, resolution=resolution)
        for route in spec.routes
        if resolution in route.resolutions
        and ratio in route.aspect_ratios
        and (route.image_to_video if with_image else route.text_to_video)
        and (route.audio or not audio)
        and route.clip_for(seconds, resolution) is not None
    ]


def _chain_for(
    spec: ModelSpec, seconds: int, resolution: str, ratio: str, *, with_image: bool, audio: bool
) -> tuple[Route, list[int]] | None:
    """The first route that can make this video as a chain of continued segments."""
    for route in spec.routes:
        if (
            resolution in route.resolutions
            and ratio in route.aspect_ratios
            and (route.image_to_video if with_image else route.text_to_video)
            and (route.audio or not audio)
        ):
            plan = route.plan_segments(seconds, resolution)
            if plan is not None and len(plan) <= MAX_SEGMENTS:
                return route.chain_route(with_image=with_image), plan
    return None


def _no_route_error(
    spec: ModelSpec,
    seconds: int,
    resolution: str,
    ratio: str,
    error: Callable[[str, str], CatalogError],
    *,
    with_image: bool,
    audio: bool,
) -> CatalogError:
    """The most specific reason no route can make the video."""
    shaped = [r for r in spec.routes if resolution in r.resolutions and ratio in r.aspect_ratios]
    if not shaped:
        return error(
            "aspect_ratio",
            f"aspect_ratio {ratio} is not available at {resolution} for {spec.id} model",
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
