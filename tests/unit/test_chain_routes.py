"""Which routes may make a chain's next segment (failover within a chain)."""

from __future__ import annotations

from reelay.jobs import Continuation, Route
from workflows.video_generation import continuing_routes

EXTEND = Route(adapter="gemini", upstream_model="veo-3.1", continuation=Continuation.EXTEND)
FRAME = Route(adapter="runway", upstream_model="veo3", continuation=Continuation.LAST_FRAME)
OTHER = Route(adapter="fal", upstream_model="kling", continuation=Continuation.LAST_FRAME)
ROUTES = [EXTEND, FRAME, OTHER]


def test_the_first_segment_may_go_to_any_route() -> None:
    assert continuing_routes(ROUTES, None) == ROUTES


def test_a_video_a_provider_extends_stays_with_that_route() -> None:
    assert continuing_routes(ROUTES, EXTEND) == [EXTEND]


def test_a_last_frame_video_may_go_on_on_any_last_frame_route_its_own_first() -> None:
    assert continuing_routes(ROUTES, OTHER) == [OTHER, FRAME]
