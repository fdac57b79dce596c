"""Reading stored videos with PyAV: probe and thumbnail. Synchronous; call via a thread."""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
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
    """Save the first decodable frame as a JPEG. One frame is decoded on this thread: the
    decoder's own threads (frame threading) would cost more to start than they save."""
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise InvalidVideoError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "NONE"
            for frame in container.decode(stream):
                frame.to_image().save(target, format="JPEG", quality=85)
                return
    except av.error.FFmpegError as exc:
        raise InvalidVideoError(str(exc)) from exc
    raise InvalidVideoError("no frame to make a thumbnail from")


def trim_video(source: Path, target: Path, seconds: float) -> None:
    """Re-encode the first `seconds` of `source` (video and any audio) into `target`."""
    stitch_videos([source], target, seconds)


def stitch_videos(
    sources: list[Path], target: Path, seconds: float, *, drop_seam_frame: bool = False
) -> None:
    """Join `sources` into one MP4 on a continuous timeline, cut at exactly `seconds`.

    Frames are decoded and re-encoded one at a time (bounded memory, one set of codec
    parameters, exact cut whatever the sources' keyframes). Each source's timestamps are
    laid end to end at the output frame rate, so there are no gaps; with `drop_seam_frame`
    the first frame of every source after the first is dropped (a continuation that starts
    on the previous clip's last frame would otherwise show it twice), with its audio.
    """
    try:
        with av.open(str(target), "w", format="mp4") as dst:
            writer: _Writer | None = None
            offset = 0.0
            for index, source in enumerate(sources):
                with av.open(str(source)) as src:
                    if writer is None:
                        writer = _Writer(dst, src)
                    skip = float(1 / writer.fps) if drop_seam_frame and index > 0 else 0.0
                    offset = writer.append(src, offset, skip, seconds)
                if offset >= seconds - 1e-6:
                    break
            if writer is not None:
                writer.close()
    except av.error.FFmpegError as exc:
        raise InvalidVideoError(str(exc)) from exc


class _Writer:
    """The output side of `stitch_videos`: one video and (optionally) one audio stream."""

    def __init__(self, dst: av.container.OutputContainer, first: av.container.InputContainer):
        video = first.streams.video[0]
        self.fps = Fraction(video.average_rate or video.guessed_rate or 24)
        self.dst = dst
        self.video = dst.add_stream("libx264", rate=self.fps)
        self.video.width = video.codec_context.width
        self.video.height = video.codec_context.height
        self.video.pix_fmt = "yuv420p"
        self.frames = 0
        self.audio: av.audio.stream.AudioStream | None = None
        self.resampler: av.AudioResampler | None = None
        if first.streams.audio:
            rate = first.streams.audio[0].codec_context.sample_rate or 48000
            self.audio = dst.add_stream("aac", rate=rate)
            self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)

    def append(
        self, src: av.container.InputContainer, offset: float, skip: float, limit: float
    ) -> float:
        """Write `src` from `skip` seconds in, starting at `offset`; returns the new end."""
        streams: list[av.stream.Stream] = [src.streams.video[0]]
        if self.audio is not None and src.streams.audio:
            streams.append(src.streams.audio[0])
        end = offset
        for packet in src.demux(*streams):
            for frame in packet.decode():
                if not isinstance(frame, av.VideoFrame | av.AudioFrame) or frame.time is None:
                    continue
                at = offset + frame.time - skip
                if frame.time < skip - 1e-6 or at >= limit - 1e-6:
                    continue
                if isinstance(frame, av.VideoFrame):
                    self._video(frame)
                    end = max(end, float(self.frames / self.fps))
                else:
                    self._audio(frame, at)
        return end

    def _video(self, frame: av.VideoFrame) -> None:
        if (frame.width, frame.height) != (self.video.width, self.video.height):
            frame = frame.reformat(width=self.video.width, height=self.video.height)
        frame.pts = self.frames
        frame.time_base = 1 / self.fps
        self.frames += 1
        self.dst.mux(self.video.encode(frame))

    def _audio(self, frame: av.AudioFrame, at: float) -> None:
        assert self.audio is not None and self.resampler is not None
        rate = self.audio.codec_context.sample_rate
        frame.pts = None
        for chunk in self.resampler.resample(frame):
            chunk.pts = round(at * rate)
            chunk.time_base = Fraction(1, rate)
            self.dst.mux(self.audio.encode(chunk))
            at += chunk.samples / rate

    def close(self) -> None:
        self.dst.mux(self.video.encode(None))
        if self.audio is not None:
            self.dst.mux(self.audio.encode(None))


def last_frame_png(video: Path) -> bytes:
    """The last frame of `video` as a PNG: the first image of the next chained segment."""
    last: av.VideoFrame | None = None
    try:
        with av.open(str(video)) as container:
            for frame in container.decode(video=0):
                last = frame
    except av.error.FFmpegError as exc:
        raise InvalidVideoError(str(exc)) from exc
    if last is None:
        raise InvalidVideoError("no frame to continue from")
    out = io.BytesIO()
    last.to_image().save(out, format="PNG")
    return out.getvalue()
