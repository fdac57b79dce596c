"""Synthetic H.264 MP4s of an exact length and size, cached on disk by their parameters."""

from __future__ import annotations

import os
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def scaled_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """`width`x`height` divided by `scale`, rounded down to even numbers (yuv420p needs them)."""
    return max(2, width // scale // 2 * 2), max(2, height // scale // 2 * 2)


def render_mp4(path: Path, *, width: int, height: int, duration_seconds: float, fps: int) -> Path:
    """Encode exactly `duration_seconds * fps` frames: a drifting gradient plus a bar whose
    position encodes the frame index. Written under a temporary name, then renamed."""
    frames = round(duration_seconds * fps)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    gradient = (np.arange(width) * 255 // max(1, width - 1)).astype(np.uint8)
    bar = max(2, width // 32)
    try:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "faststart"}) as out:
            stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            planes = np.full((height * 3 // 2, width), 128, dtype=np.uint8)  # Y, then U and V
            for index in range(frames):
                planes[:height] = np.roll(gradient, index * 4)
                x = index * (width - bar) // max(1, frames - 1)
                planes[:height, x : x + bar] = 255
                frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
                frame.pts, frame.time_base = index, Fraction(1, fps)
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

    def get(self, *, width: int, height: int, duration_seconds: float, fps: int) -> Future[Path]:
        path = self._dir / f"{width}x{height}_{duration_seconds:g}s_{fps}fps.mp4"
        with self._lock:
            job = self._jobs.get(path)
            if job is None or (job.done() and job.exception() is not None):
                job = self._pool.submit(self._render, path, width, height, duration_seconds, fps)
                self._jobs[path] = job
            return job

    def _render(self, path: Path, width: int, height: int, duration: float, fps: int) -> Path:
        if path.exists():
            return path
        self._dir.mkdir(parents=True, exist_ok=True)
        return render_mp4(path, width=width, height=height, duration_seconds=duration, fps=fps)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
