"""Peak memory of stitching a 60 s 1080p chain: eight 8 s segments rendered at full size,
stitched (decode and re-encode, frame by frame) in a fresh process whose peak RSS is read.

`python -m bench.stitch [--fps 24]`
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
from providers.emulator.render import render_mp4

WIDTH, HEIGHT = 1920, 1080
SEGMENT_SECONDS, SEGMENTS, TARGET_SECONDS = 8, 8, 60


def stitch_and_report(parts: list[str], target: str) -> None:
    """Runs in the child: stitch, then print seconds taken and peak RSS (MiB)."""
    started = time.perf_counter()
    stitch_videos([Path(p) for p in parts], Path(target), TARGET_SECONDS, drop_seam_frame=True)
    took = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{took:.1f} {peak_mib:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reelay-stitch-") as tmp:
        parts = []
        for index in range(SEGMENTS):
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
        code = (
            f"from bench.stitch import stitch_and_report; stitch_and_report({parts!r}, {target!r})"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
        took, peak = float(out[0]), float(out[1])
        info = probe_video(Path(target))
        inputs = sum(Path(p).stat().st_size for p in parts) / 2**20
        print(
            f"stitched {SEGMENTS} x {SEGMENT_SECONDS} s {WIDTH}x{HEIGHT}@{args.fps} "
            f"({inputs:.0f} MiB) into {info.duration_seconds:.2f} s "
            f"{info.width}x{info.height} in {took:.1f} s; peak RSS {peak:.0f} MiB"
        )


if __name__ == "__main__":
    main()
