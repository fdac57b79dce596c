"""The adaptive poll interval."""

from __future__ import annotations

from workflows.polling import estimate_remaining, next_poll_delay


def test_remaining_time_is_extrapolated_from_progress() -> None:
    assert estimate_remaining(10.0, 0.5) == 10.0
    assert estimate_remaining(30.0, 0.75) == 10.0
    assert estimate_remaining(10.0, None) is None
    assert estimate_remaining(10.0, 0.01) is None
    assert estimate_remaining(10.0, 1.0) == 0.0


def test_delay_is_half_the_remaining_time_within_bounds() -> None:
    assert next_poll_delay(polls=3, remaining=20.0, min_seconds=1, max_seconds=30) == 10.0
    assert next_poll_delay(polls=3, remaining=0.5, min_seconds=1, max_seconds=30) == 1
    assert next_poll_delay(polls=3, remaining=600, min_seconds=1, max_seconds=30) == 30


def test_without_an_eta_the_delay_backs_off_gently() -> None:
    delays = [
        next_poll_delay(polls=n, remaining=None, min_seconds=1, max_seconds=30) for n in range(12)
    ]
    assert delays == sorted(delays)
    assert delays[0] == 1
    assert delays[-1] == 30
