"""Reading stored videos with PyAV: probe and thumbnail. Synchronous; call via a thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av


class InvalidVideoError(ValueError):
    """The file is not a playable video (truncated or corrupt download)."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    duration_seconds: float
    codec: str


def probe_video(path: Path) -> VideoInfo:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InvalidVideoError("no video stream")
            stream = container.streams.video[0]
            if container.duration is not None:
                duration = container.duration / av.time_base
            elif stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                raise InvalidVideoError("unknown duration")
            return VideoInfo(
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                duration_seconds=round(duration, 3),
                codec=stream.codec_context.name,
            )
    except av.error.FFmpegError as exc:
        raise InvalidVideoError(str(exc)) from exc


def write_thumbnail(video: Path, target: Path) -> None:
    """Save the first decodable frame as a JPEG."""
    try:
        with av.open(str(video)) as container:
            for frame in container.decode(video=0):
                frame.to_image().save(target, format="JPEG", quality=85)
                return
    except av.error.FFmpegError as exc:
        raise InvalidVideoError(str(exc)) from exc
    raise InvalidVideoError("no frame to make a thumbnail from")
