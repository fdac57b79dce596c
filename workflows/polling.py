"""The poll-interval rule: pure, so the workflow stays deterministic and it is easy to test."""

from __future__ import annotations


def estimate_remaining(elapsed_seconds: float, progress: float | None) -> float | None:
    """Seconds left, extrapolated from progress so far; None until progress is meaningful."""
    if progress is None or progress < 0.02 or elapsed_seconds <= 0:
        return None
    if progress >= 1.0:
        return 0.0
    return elapsed_seconds * (1.0 - progress) / progress


def next_poll_delay(
    *, polls: int, remaining: float | None, min_seconds: float, max_seconds: float
) -> float:
    """Poll at about half the remaining time, within bounds; back off gently without an ETA."""
    delay = min_seconds * 1.5**polls if remaining is None else remaining / 2
    return max(min_seconds, min(max_seconds, delay))
