"""Synthetic H.264 MP4s of an exact length and size, cached on disk by their parameters."""

from __future__ import annotations

import io
import os
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def scaled_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """`width`x`height` divided by `scale`, rounded down to even numbers (yuv420p needs them)."""
    return max(2, width // scale // 2 * 2), max(2, height // scale // 2 * 2)


def frame_size(aspect_ratio: str, short_side: int) -> tuple[int, int]:
    """Full-size pixels for `aspect_ratio` ("W:H") with its shorter side `short_side`."""
    w, h = (int(part) for part in aspect_ratio.split(":"))
    long_side = round(short_side * max(w, h) / min(w, h) / 2) * 2
    return (long_side, short_side) if w >= h else (short_side, long_side)


PHASE_STEP = 4  # pixels the gradient moves per frame


def render_mp4(
    path: Path,
    *,
    width: int,
    height: int,
    duration_seconds: float,
    fps: int,
    start_frame: int = 0,
) -> Path:
    """Encode exactly `duration_seconds * fps` frames: a gradient drifting `PHASE_STEP` px a
    frame (its phase is the frame number, so a continuation from `start_frame` carries the
    motion on seamlessly) plus, in the top half, a bar whose position marks the frame.
    Written under a temporary name, then renamed."""
    frames = round(duration_seconds * fps)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    gradient = (np.arange(width) * 255 // max(1, width - 1)).astype(np.uint8)
    bar = max(2, width // 32)
    try:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "faststart"}) as out:
            stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            planes = np.full((height * 3 // 2, width), 128, dtype=np.uint8)  # Y, then U and V
            for index in range(start_frame, start_frame + frames):
                planes[:height] = np.roll(gradient, index * PHASE_STEP)
                x = index * 2 % max(1, width - bar)
                planes[: height // 2, x : x + bar] = 255
                frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
                frame.pts, frame.time_base = index - start_frame, Fraction(1, fps)
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class RenderCache:
    """Renders in worker threads; identical requests share one file (and one in-flight job)."""

    def __init__(self, directory: Path, *, workers: int = 2) -> None:
        self._dir = directory
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emulator-render")
        self._lock = threading.Lock()
        self._jobs: dict[Path, Future[Path]] = {}

    def get(
        self, *, width: int, height: int, duration_seconds: float, fps: int, start_frame: int = 0
    ) -> Future[Path]:
        name = f"{width}x{height}_{duration_seconds:g}s_{fps}fps_from{start_frame}.mp4"
        path = self._dir / name
        with self._lock:
            job = self._jobs.get(path)
            if job is None or (job.done() and job.exception() is not None):
                job = self._pool.submit(
                    self._render, path, width, height, duration_seconds, fps, start_frame
                )
                self._jobs[path] = job
            return job

    def _render(
        self, path: Path, width: int, height: int, duration: float, fps: int, start_frame: int
    ) -> Path:
        if path.exists():
            return path
        self._dir.mkdir(parents=True, exist_ok=True)
        return render_mp4(
            path,
            width=width,
            height=height,
            duration_seconds=duration,
            fps=fps,
            start_frame=start_frame,
        )

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def gradient_phase(luma: np.ndarray) -> int:
    """The frame number (modulo width / PHASE_STEP) a rendered frame shows, from its bottom
    row: the gradient's wrap (its sharpest fall) sits at `frame * PHASE_STEP` pixels."""
    row = luma[-2].astype(np.int32)
    width = row.shape[0]
    fall = np.roll(row, 1) - row  # fall[i] = row[i - 1] - row[i]
    return round(int(np.argmax(fall)) / PHASE_STEP) % max(1, int(width) // PHASE_STEP)


def image_phase(data: bytes) -> int:
    """`gradient_phase` of an image (the last frame a client continues from)."""
    with Image.open(io.BytesIO(data)) as image:
        return gradient_phase(np.asarray(image.convert("L")))
