"""Probing, thumbnails and exact trimming of real MP4s made here with PyAV."""

from __future__ import annotations

import io
import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from activities.media import (
    InvalidVideoError,
    last_frame_png,
    probe_video,
    stitch_videos,
    trim_video,
    write_thumbnail,
)


def make_clip(
    path: Path, seconds: int, *, fps: int = 10, audio: bool = True, first_value: int = 0
) -> Path:
    """A tiny clip whose frame n is a flat grey of value `first_value + n` (so order shows)."""
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 36, "yuv420p"
        sound = out.add_stream("aac", rate=16000) if audio else None
        for n in range(seconds * fps):
            image = np.full((36, 64, 3), (first_value + n) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = n
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = 1024
            for n in range(seconds * 16000 // samples):
                wave = np.sin(np.arange(samples) / 8.0).astype(np.float32).reshape(1, -1)
                chunk = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
                chunk.sample_rate = 16000
                chunk.pts = n * samples
                chunk.time_base = Fraction(1, 16000)
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


def stream_seconds(path: Path, kind: str) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        last = max(frame.time or 0.0 for frame in container.decode(stream))
        return last


def test_trim_cuts_video_and_audio_to_the_requested_length(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "five.mp4", 5)
    target = tmp_path / "three.mp4"
    trim_video(source, target, 3)
    info = probe_video(target)
    assert info.duration_seconds == pytest.approx(3.0, abs=0.1)
    assert (info.width, info.height, info.codec) == (64, 36, "h264")
    assert 2.8 < stream_seconds(target, "video") < 3.0
    assert 2.8 < stream_seconds(target, "audio") < 3.0


def test_thumbnail_is_a_jpeg_of_the_first_frame(tmp_path: Path) -> None:
    thumb = tmp_path / "thumb.jpg"
    write_thumbnail(make_clip(tmp_path / "clip.mp4", 1, audio=False), thumb)
    assert thumb.read_bytes()[:2] == b"\xff\xd8"


def test_a_truncated_file_is_not_a_video(tmp_path: Path) -> None:
    good = make_clip(tmp_path / "clip.mp4", 2, audio=False).read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(good[: len(good) // 3])
    with pytest.raises(InvalidVideoError):
        probe_video(broken)


def frame_values(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [int(f.to_ndarray(format="gray").mean().round()) for f in container.decode(video=0)]


def test_stitching_continuations_gives_one_continuous_timeline(tmp_path: Path) -> None:
    """Each segment starts on the previous one's last frame, as a continuation does."""
    clips = [make_clip(tmp_path / f"seg{k}.mp4", 2, first_value=40 + k * 19) for k in range(3)]
    target = tmp_path / "stitched.mp4"
    stitch_videos(clips, target, 5, drop_seam_frame=True)
    info = probe_video(target)
    assert info.duration_seconds == pytest.approx(5.0, abs=0.1)
    values = frame_values(target)
    first, *rest = (frame_values(clip) for clip in clips)
    expected = (first + [v for later in rest for v in later[1:]])[:50]
    assert len(values) == 50
    assert all(abs(a - b) <= 1 for a, b in zip(values, expected, strict=True)), values
    assert all(b >= a for a, b in itertools.pairwise(values)), "time never runs backwards"
    assert 4.8 < stream_seconds(target, "audio") < 5.0


def test_last_frame_png_is_the_final_frame(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", 1, audio=False, first_value=100)
    png = last_frame_png(clip)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L")).mean()
    assert grey == pytest.approx(109, abs=3)
