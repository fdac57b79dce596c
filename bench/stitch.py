"""Peak memory of stitching a 1080p chain (default 60 s: eight 8 s segments rendered at
full size), decoded and re-encoded frame by frame in a fresh process whose peak RSS is read.
Run it at two lengths to see that memory does not grow with the video.

`python -m bench.stitch [--seconds 60] [--fps 24]`
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from activities.media import probe_video, stitch_videos
from emulator.render import render_mp4

WIDTH, HEIGHT = 1920, 1080
SEGMENT_SECONDS = 8


def stitch_and_report(parts: list[str], target: str, seconds: float) -> None:
    """Runs in the child: stitch, then print seconds taken and peak RSS (MiB)."""
    started = time.perf_counter()
    stitch_videos([Path(p) for p in parts], Path(target), seconds, drop_seam_frame=True)
    took = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{took:.1f} {peak_mib:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--seconds", type=int, default=60, help="length of the stitched video")
    args = parser.parse_args()
    segments = -(-(args.seconds + 1) // SEGMENT_SECONDS)  # a frame per seam is dropped
    with tempfile.TemporaryDirectory(prefix="reelay-stitch-") as tmp:
        parts = []
        for index in range(segments):
            path = Path(tmp) / f"{index}.mp4"
            render_mp4(
                path,
                width=WIDTH,
                height=HEIGHT,
                duration_seconds=SEGMENT_SECONDS,
                fps=args.fps,
                start_frame=index * SEGMENT_SECONDS * args.fps,
            )
            parts.append(str(path))
        target = str(Path(tmp) / "stitched.mp4")
        call = f"stitch_and_report({parts!r}, {target!r}, {args.seconds})"
        code = f"from bench.stitch import stitch_and_report; {call}"
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
        took, peak = float(out[0]), float(out[1])
        info = probe_video(Path(target))
        inputs = sum(Path(p).stat().st_size for p in parts) / 2**20
        print(
            f"stitched {segments} x {SEGMENT_SECONDS} s {WIDTH}x{HEIGHT}@{args.fps} "
            f"({inputs:.0f} MiB) into {info.duration_seconds:.2f} s "
            f"{info.width}x{info.height} in {took:.1f} s; peak RSS {peak:.0f} MiB"
        )


if __name__ == "__main__":
    main()
