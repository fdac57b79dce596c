"""Each upstream model family's vocabulary: what it makes and how its input is spelled.

One typed table read by the catalog (what a route may offer), the adapters (how a job is
spelled upstream) and the catalog test (every `models.toml` entry fits its family). It is
a Python table rather than TOML because its entries carry typed mappings (Runway pixel
ratios, Replicate frame sizes, how a duration is written) that mypy checks where they are
used; the model table, which only names and narrows families, is TOML.

The values follow the providers' SDK types and published input schemas (see
`providers/README.md`, `providers/schemas/`). The emulator keeps its own tables on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from reelay.jobs import Continuation

Frame = tuple[str, str]  # (aspect ratio, resolution) in the client's words


class Seconds(StrEnum):
    """How an input field writes a clip length."""

    INT = "int"  # 5
    STRING = "string"  # "5"
    SUFFIXED = "suffixed"  # "5s" (Luma)
    FRAMES = "frames"  # num_frames at the family's fps, 4k+1 frames (Wan 2.2)


@dataclass(frozen=True)
class Fields:
    """Input field names of a fal or Replicate family; None: the field is not sent."""

    duration: str = "duration"
    seconds: Seconds = Seconds.STRING
    image: str = "image_url"
    aspect_ratio: str | None = "aspect_ratio"  # sent for text-to-video only
    resolution: str | None = None
    size: str | None = None  # the W*H frame, text-to-video (sent instead of the resolution)
    audio: str | None = None
    enhance_prompt: str | None = None
    negative_prompt: str | None = None
    seed: str | None = None


def _frozen(values: Mapping[Any, Any] | None = None) -> Mapping[Any, Any]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class Family:
    """One upstream input vocabulary, shared by every model id that takes it."""

    name: str
    adapter: str
    durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    image_aspect_ratios: tuple[str, ...] | None = None  # with a source image, when wider
    durations_by_resolution: Mapping[str, tuple[int, ...]] = field(default_factory=_frozen)
    text_to_video: bool = True
    image_to_video: bool = True
    audio: bool = False
    enhance_prompt: bool = False
    continuation: Continuation | None = None
    fields: Fields = field(default_factory=Fields)
    resolution_values: Mapping[str, str] = field(default_factory=_frozen)
    frames: Mapping[Frame, str] = field(default_factory=_frozen)  # (ratio, res) -> upstream
    image_frames: Mapping[Frame, str] = field(default_factory=_frozen)
    fps: int = 0

    def lengths(self, resolution: str) -> tuple[int, ...]:
        return self.durations_by_resolution.get(resolution, self.durations)

    def ratios(self, *, with_image: bool) -> tuple[str, ...]:
        if with_image and self.image_aspect_ratios is not None:
            return self.image_aspect_ratios
        return self.aspect_ratios

    def frame(self, aspect_ratio: str, resolution: str, *, with_image: bool) -> str | None:
        """The upstream frame value (Runway `ratio`, Replicate `size`), None if not made."""
        table = self.image_frames if with_image and self.image_frames else self.frames
        return table.get((aspect_ratio, resolution))

    def frame_refusal(self, resolution: str, aspect_ratio: str, *, with_image: bool) -> str | None:
        """What of this frame the family cannot make, in words; None when it can."""
        if resolution not in self.resolutions:
            return f"resolution {resolution}"
        if aspect_ratio not in self.ratios(with_image=with_image):
            return f"aspect ratio {aspect_ratio}"
        if (self.frames or self.image_frames) and self.frame(
            aspect_ratio, resolution, with_image=with_image
        ) is None:
            return f"aspect ratio {aspect_ratio} at {resolution}"
        return None

    def refusal(
        self, seconds: int, resolution: str, aspect_ratio: str, *, with_image: bool
    ) -> str | None:
        """What of this clip the family cannot make, in words; None when it can."""
        if seconds not in self.lengths(resolution):
            return f"{seconds} s clips" + (f" at {resolution}" if seconds in self.durations else "")
        return self.frame_refusal(resolution, aspect_ratio, with_image=with_image)

    def write_seconds(self, seconds: int) -> int | str:
        kind = self.fields.seconds
        if kind is Seconds.INT:
            return seconds
        if kind is Seconds.SUFFIXED:
            return f"{seconds}s"
        if kind is Seconds.FRAMES:
            return self.fps * seconds + 1
        return str(seconds)


WIDE = ("16:9", "9:16")
WIDE_SQUARE = ("16:9", "9:16", "1:1")
LUMA_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
PIKA_RATIOS = ("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")
SEEDANCE_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
SD_HD_FHD = ("480p", "720p", "1080p")
RUNWAY_720 = {("16:9", "720p"): "1280:720", ("9:16", "720p"): "720:1280"}
RUNWAY_1080 = {("16:9", "1080p"): "1920:1080", ("9:16", "1080p"): "1080:1920"}

_KLING_FAL = Fields(negative_prompt="negative_prompt")
_KLING_FAL_AUDIO = Fields(
    image="start_image_url", audio="generate_audio", negative_prompt="negative_prompt"
)
_HAILUO_FAL = Fields(aspect_ratio=None, resolution="resolution", enhance_prompt="prompt_optimizer")
_SEEDANCE_FAL = Fields(resolution="resolution", seed="seed")
_WAN_FAL = Fields(
    resolution="resolution",
    enhance_prompt="enable_prompt_expansion",
    negative_prompt="negative_prompt",
    seed="seed",
)

FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        f.name: f
        for f in (
            # --- Google Veo (predictLongRunning), on the deployment's platform (PLATFORMS) --
            # Veo 3.x makes 4, 6 or 8 s, only 8 s at 1080p (Gemini API and Vertex AI alike).
            Family(
                name="veo-3",
                adapter="veo",
                durations=(4, 6, 8),
                durations_by_resolution=_frozen({"1080p": (8,)}),  # 8 s required at 1080p
                resolutions=("720p", "1080p"),
                aspect_ratios=WIDE,
                audio=True,
                enhance_prompt=True,
                continuation=Continuation.LAST_FRAME,
            ),
            Family(
                name="veo-3.1",  # Veo 3.1 extends its own videos
                adapter="veo",
                durations=(4, 6, 8),
                durations_by_resolution=_frozen({"1080p": (8,)}),  # 8 s required at 1080p
                resolutions=("720p", "1080p"),
                aspect_ratios=WIDE,
                audio=True,
                enhance_prompt=True,
                continuation=Continuation.EXTEND,
            ),
            Family(
                name="veo-2",  # 720p only, no resolution field, silent
                adapter="veo",
                durations=(5, 6, 7, 8),
                resolutions=("720p",),
                aspect_ratios=WIDE,
                enhance_prompt=True,
                continuation=Continuation.LAST_FRAME,
            ),
            # --- Runway (runwayml TextToVideoCreateParams / ImageToVideoCreateParams) -------
            Family(
                name="runway-gen4.5",
                adapter="runway",
                durations=tuple(range(2, 11)),
                resolutions=("720p",),
                aspect_ratios=WIDE,
                image_aspect_ratios=WIDE_SQUARE,
                continuation=Continuation.LAST_FRAME,
                frames=_frozen(RUNWAY_720),
                image_frames=_frozen({**RUNWAY_720, ("1:1", "720p"): "960:960"}),
            ),
            Family(
                name="runway-veo3.1",  # veo3.1 and veo3.1_fast
                adapter="runway",
                durations=(4, 6, 8),
                resolutions=("720p", "1080p"),
                aspect_ratios=WIDE,
                audio=True,
                continuation=Continuation.LAST_FRAME,
                frames=_frozen({**RUNWAY_720, **RUNWAY_1080}),
            ),
            Family(
                name="runway-gen4-turbo",
                adapter="runway",
                durations=tuple(range(2, 11)),
                resolutions=("720p",),
                aspect_ratios=WIDE_SQUARE,
                text_to_video=False,
                continuation=Continuation.LAST_FRAME,
                image_frames=_frozen({**RUNWAY_720, ("1:1", "720p"): "960:960"}),
            ),
            # --- Luma Dream Machine ---------------------------------------------------------
            Family(
                name="luma-ray",
                adapter="luma",
                durations=(5, 9),
                resolutions=("540p", "720p", "1080p", "4k"),
                aspect_ratios=LUMA_RATIOS,
                continuation=Continuation.KEYFRAME,  # the earlier generation as frame0
                fields=Fields(seconds=Seconds.SUFFIXED),
            ),
            # --- fal.ai queue models ----------------------------------------------------------
            Family(
                name="fal-kling",  # Kling 2.1 / 2.5
                adapter="fal",
                durations=(5, 10),
                resolutions=("1080p",),
                aspect_ratios=WIDE_SQUARE,
                continuation=Continuation.LAST_FRAME,
                fields=_KLING_FAL,
            ),
            Family(
                name="fal-kling-audio",  # Kling 2.6
                adapter="fal",
                durations=(5, 10),
                resolutions=("1080p",),
                aspect_ratios=WIDE_SQUARE,
                audio=True,
                continuation=Continuation.LAST_FRAME,
                fields=_KLING_FAL_AUDIO,
            ),
            Family(
                name="fal-kling-v3",  # start_image_url assumed as in 2.6 (*unconfirmed*)
                adapter="fal",
                durations=tuple(range(3, 16)),
                resolutions=("1080p",),
                aspect_ratios=WIDE_SQUARE,
                audio=True,
                continuation=Continuation.LAST_FRAME,
                fields=_KLING_FAL_AUDIO,
            ),
            Family(
                name="fal-hailuo",
                adapter="fal",
                durations=(6, 10),
                resolutions=("512p", "768p", "1080p"),
                aspect_ratios=("16:9",),  # Hailuo text-to-video makes landscape only
                enhance_prompt=True,
                continuation=Continuation.LAST_FRAME,
                fields=_HAILUO_FAL,
                resolution_values=_frozen({"512p": "512P", "768p": "768P", "1080p": "1080P"}),
            ),
            Family(
                name="fal-pika",
                adapter="fal",
                durations=(5, 10),
                resolutions=("720p", "1080p"),
                aspect_ratios=PIKA_RATIOS,
                continuation=Continuation.LAST_FRAME,
                fields=Fields(
                    seconds=Seconds.INT,
                    resolution="resolution",
                    negative_prompt="negative_prompt",
                    seed="seed",
                ),
            ),
            Family(
                name="fal-seedance",  # Seedance 1 (lite, pro, pro fast)
                adapter="fal",
                durations=tuple(range(2, 13)),
                resolutions=SD_HD_FHD,
                aspect_ratios=SEEDANCE_RATIOS,
                continuation=Continuation.LAST_FRAME,
                fields=_SEEDANCE_FAL,
            ),
            Family(
                name="fal-seedance-audio",  # Seedance 1.5 and 2 (*unconfirmed* audio field)
                adapter="fal",
                durations=tuple(range(2, 16)),
                resolutions=SD_HD_FHD,
                aspect_ratios=SEEDANCE_RATIOS,
                audio=True,
                continuation=Continuation.LAST_FRAME,
                fields=Fields(resolution="resolution", seed="seed", audio="generate_audio"),
            ),
            Family(
                name="fal-wan-frames",  # Wan 2.2 counts frames: 16 fps, 81 frames = 5 s
                adapter="fal",
                durations=tuple(range(2, 11)),
                resolutions=("480p", "580p", "720p"),
                aspect_ratios=WIDE_SQUARE,
                enhance_prompt=True,
                continuation=Continuation.LAST_FRAME,
                fields=Fields(
                    duration="num_frames",
                    seconds=Seconds.FRAMES,
                    resolution="resolution",
                    enhance_prompt="enable_prompt_expansion",
                    negative_prompt="negative_prompt",
                    seed="seed",
                ),
                fps=16,
            ),
            Family(
                name="fal-wan",  # Wan 2.5+ (*unconfirmed* beyond fal's 2.5 preview)
                adapter="fal",
                durations=(5, 10, 15),
                resolutions=SD_HD_FHD,
                aspect_ratios=WIDE_SQUARE,
                enhance_prompt=True,
                continuation=Continuation.LAST_FRAME,
                fields=_WAN_FAL,
            ),
            # --- Replicate predictions -----------------------------------------------------
            Family(
                name="replicate-kling",
                adapter="replicate",
                durations=(5, 10),
                resolutions=("1080p",),
                aspect_ratios=WIDE_SQUARE,
                continuation=Continuation.LAST_FRAME,
                fields=Fields(
                    seconds=Seconds.INT, image="start_image", negative_prompt="negative_prompt"
                ),
            ),
            Family(
                name="replicate-kling-audio",  # generate_audio *unconfirmed*
                adapter="replicate",
                durations=(5, 10),
                resolutions=("1080p",),
                aspect_ratios=WIDE_SQUARE,
                audio=True,
                continuation=Continuation.LAST_FRAME,
                fields=Fields(
                    seconds=Seconds.INT,
                    image="start_image",
                    negative_prompt="negative_prompt",
                    audio="generate_audio",
                ),
            ),
            Family(
                name="replicate-hailuo",
                adapter="replicate",
                durations=(6, 10),
                resolutions=("512p", "768p", "1080p"),
                aspect_ratios=("16:9",),
                enhance_prompt=True,
                continuation=Continuation.LAST_FRAME,
                fields=Fields(
                    seconds=Seconds.INT,
                    image="first_frame_image",
                    aspect_ratio=None,
                    resolution="resolution",
                    enhance_prompt="prompt_optimizer",
                ),
            ),
            Family(
                name="replicate-seedance",
                adapter="replicate",
                durations=tuple(range(2, 13)),
                resolutions=SD_HD_FHD,
                aspect_ratios=SEEDANCE_RATIOS,
                continuation=Continuation.LAST_FRAME,
                fields=Fields(
                    seconds=Seconds.INT, image="image", resolution="resolution", seed="seed"
                ),
            ),
            Family(
                name="replicate-seedance-audio",  # generate_audio *unconfirmed*
                adapter="replicate",
                durations=tuple(range(2, 13)),
                resolutions=SD_HD_FHD,
                aspect_ratios=SEEDANCE_RATIOS,
                audio=True,
                continuation=Continuation.LAST_FRAME,
                fields=Fields(
                    seconds=Seconds.INT,
                    image="image",
                    resolution="resolution",
                    seed="seed",
                    audio="generate_audio",
                ),
            ),
            Family(
                name="replicate-wan",  # text-to-video takes a W*H size, image-to-video a resolution
                adapter="replicate",
                durations=(5, 10),
                resolutions=SD_HD_FHD,
                aspect_ratios=WIDE,
                enhance_prompt=True,
                continuation=Continuation.LAST_FRAME,
                fields=Fields(
                    seconds=Seconds.INT,
                    image="image",
                    aspect_ratio=None,
                    resolution="resolution",
                    size="size",
                    enhance_prompt="enable_prompt_expansion",
                    negative_prompt="negative_prompt",
                    seed="seed",
                ),
                frames=_frozen(
                    {
                        ("16:9", "480p"): "832*480",
                        ("9:16", "480p"): "480*832",
                        ("16:9", "720p"): "1280*720",
                        ("9:16", "720p"): "720*1280",
                        ("16:9", "1080p"): "1920*1080",
                        ("9:16", "1080p"): "1080*1920",
                    }
                ),
            ),
        )
    }
)


# A family's adapter that more than one upstream platform serves: the adapters that can
# serve it, the default first. Each deployment picks one (`providers.registry`).
PLATFORMS: Mapping[str, tuple[str, ...]] = MappingProxyType({"veo": ("gemini", "vertex")})


class Unexpressible(ValueError):
    """A clip the family's input fields cannot spell (a length or value it does not take)."""


def input_body(
    family: Family,
    *,
    prompt: str,
    seconds: int,
    resolution: str,
    aspect_ratio: str,
    image_url: str | None,
    audio: bool,
    enhance_prompt: bool,
    negative_prompt: str | None,
    seed: int | None,
) -> dict[str, Any]:
    """A fal or Replicate model input spelled in the family's field names.

    Raises `Unexpressible` for a value a sent field does not take (the catalog has already
    refused what the family does not make; this guards jobs built without it)."""
    names = family.fields
    with_image = image_url is not None
    if seconds not in family.durations:
        raise Unexpressible(f"{seconds} s clips")  # (per-resolution limits: the catalog's)
    sends_frame = names.resolution is not None or (names.size is not None and not with_image)
    sends_ratio = names.aspect_ratio is not None and not with_image
    if sends_frame and resolution not in family.resolutions:
        raise Unexpressible(f"resolution {resolution}")
    if sends_ratio and aspect_ratio not in family.ratios(with_image=False):
        raise Unexpressible(f"aspect ratio {aspect_ratio}")
    if (
        names.size is not None
        and not with_image
        and family.frame(aspect_ratio, resolution, with_image=False) is None
    ):
        raise Unexpressible(f"frame {aspect_ratio} at {resolution}")
    body: dict[str, Any] = {"prompt": prompt, names.duration: family.write_seconds(seconds)}
    if names.size is not None and image_url is None:
        body[names.size] = family.frame(aspect_ratio, resolution, with_image=False)
    elif names.resolution is not None:
        body[names.resolution] = family.resolution_values.get(resolution, resolution)
    if names.aspect_ratio is not None and image_url is None:
        body[names.aspect_ratio] = aspect_ratio
    if names.audio is not None:
        body[names.audio] = audio
    if names.enhance_prompt is not None:
        body[names.enhance_prompt] = enhance_prompt
    if image_url is not None:
        body[names.image] = image_url
    if names.negative_prompt is not None and negative_prompt:
        body[names.negative_prompt] = negative_prompt
    if names.seed is not None and seed is not None:
        body[names.seed] = seed
    if family.fields.seconds is Seconds.FRAMES:
        body["frames_per_second"] = family.fps
    return body
