"""Catalog validation and cost rules (pure, no servers)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from providers.catalog import (
    MODELS,
    SEAM_SECONDS,
    CatalogError,
    find_model,
    resolve_request,
)
from reelay.jobs import Continuation, JobSpec, Route, settled_cost_micro_usd

SEED_000_MODELS = {
    "veo-3": (60, 0.35),
    "runway-gen3": (16, 0.10),
    "luma-dream-machine": (10, 0.06),
    "pika": (4, 0.067),
}


@pytest.mark.parametrize(("model_id", "limits"), SEED_000_MODELS.items())
def test_seed_000_models_have_the_published_limits_and_prices(
    model_id: str, limits: tuple[int, float]
) -> None:
    model = find_model(model_id)
    assert model is not None
    assert (model.max_duration_seconds, model.price_usd_per_second) == limits


def test_bare_request_takes_the_seed_defaults() -> None:
    resolved = resolve_request(prompt="  a cat  ", model=None)
    assert resolved.model.id == "runway-gen3"
    assert (resolved.duration_seconds, resolved.resolution, resolved.aspect_ratio) == (
        4,
        "1080p",
        "16:9",
    )
    assert resolved.prompt == "a cat"
    assert resolved.estimated_cost_micro_usd == 400_000


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"prompt": None}, "prompt", "prompt is required"),
        ({"prompt": "   "}, "prompt", "prompt must not be empty"),
        ({"model": "sora-9"}, "model", "model 'sora-9' is not supported"),
        (
            {"duration_seconds": 17},
            "duration_seconds",
            "duration_seconds exceeds maximum of 16 for runway-gen3 model",
        ),
        ({"duration_seconds": 0}, "duration_seconds", "must be at least 2"),
        ({"duration_seconds": -3}, "duration_seconds", "must be at least 2"),
        ({"duration_seconds": 4.5}, "duration_seconds", "whole number of seconds"),
        ({"resolution": "4k"}, "resolution", "resolution must be one of 720p, 1080p"),
        ({"aspect_ratio": "2:1"}, "aspect_ratio", "aspect_ratio must be one of 16:9, 9:16, 1:1"),
        ({"model": "pika", "duration_seconds": 5}, "duration_seconds", "maximum of 4 for pika"),
        ({"model": "veo-3", "aspect_ratio": "1:1"}, "aspect_ratio", "16:9, 9:16 for veo-3"),
        ({"prompt": "x" * 4001}, "prompt", "prompt exceeds maximum of 4000 characters"),
    ],
)
def test_invalid_requests_name_the_field_and_rule(
    kwargs: dict[str, object], field: str, message: str
) -> None:
    request: dict[str, object] = {"prompt": "a lion", "model": "runway-gen3", **kwargs}
    with pytest.raises(CatalogError) as caught:
        resolve_request(**request)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert message in caught.value.message


def test_a_length_the_route_cannot_make_is_generated_longer_and_trimmed() -> None:
    resolved = resolve_request(prompt="x", model="veo-3", duration_seconds=5, resolution="720p")
    assert resolved.routes[0].clip_seconds == 6
    assert resolved.estimated_cost_micro_usd == 5 * 350_000  # billed for what was asked
    exact = resolve_request(prompt="x", model="veo-3", duration_seconds=6, resolution="720p")
    assert exact.routes[0].clip_seconds is None
    # Veo 3 makes only 8 s clips at 1080p (its default).
    assert (
        resolve_request(prompt="x", model="veo-3", duration_seconds=6).routes[0].clip_seconds == 8
    )


@pytest.mark.parametrize(
    ("model", "seconds", "mechanism", "segments"),
    [
        ("veo-3", 60, "last_frame", [8, 8, 8, 8, 8, 8, 8, 8]),  # 8 s clips only at 1080p
        ("runway-gen3", 16, "last_frame", [8, 8]),  # 1080p: Runway's veo3.1_fast
        ("luma-dream-machine", 10, "keyframe", [9, 5]),
    ],
)
def test_longer_than_one_clip_becomes_a_chain_of_continued_segments(
    model: str, seconds: int, mechanism: str, segments: list[int]
) -> None:
    resolved = resolve_request(prompt="x", model=model, duration_seconds=seconds)
    assert resolved.segments == segments
    assert resolved.routes[0].continuation == mechanism
    # A last-frame seam drops one frame; the chain covers the request to within one frame
    # (SEAM_SECONDS) rather than buying another clip for it.
    seam = SEAM_SECONDS if mechanism == "last_frame" else 0
    assert sum(segments) - seam * (len(segments) - 1) >= seconds - seam
    assert resolved.upstream_seconds == sum(segments)
    assert resolved.estimated_cost_micro_usd == seconds * resolved.price_micro_usd_per_second


def test_model_ids_are_case_insensitive_and_echo_what_was_sent() -> None:
    resolved = resolve_request(prompt="x", model="Runway-Gen3")
    assert resolved.model.id == "runway-gen3"
    assert resolved.requested_model == "Runway-Gen3"


def test_every_model_default_is_servable() -> None:
    for model in MODELS:
        if model.retired_on or model.unavailable_reason:
            continue  # refused with its reason: see test_catalog_models.py
        resolved = resolve_request(prompt="x", model=model.id, with_image=not model.text_to_video)
        assert resolved.duration_seconds == model.default_duration_seconds


def _spec(duration: int, price_micro: int) -> JobSpec:
    return JobSpec(
        job_id="job_vid_x",
        tenant_id="t",
        request_id="r",
        model="runway-gen3",
        requested_model="runway-gen3",
        routes=[Route(adapter="runway", upstream_model="gen4.5")],
        prompt="p",
        duration_seconds=duration,
        resolution="1080p",
        aspect_ratio="16:9",
        price_micro_usd_per_second=price_micro,
        created_at=datetime.now(UTC),
        deadline_seconds=60,
    )


def test_cost_is_price_times_duration_and_settles_on_the_stored_duration() -> None:
    spec = _spec(8, 100_000)
    assert spec.estimated_cost_micro_usd == 800_000
    assert settled_cost_micro_usd(spec, 8.0) == 800_000
    assert settled_cost_micro_usd(spec, 7.5) == 750_000
    # A provider that delivers a little extra never costs more than the quote.
    assert settled_cost_micro_usd(spec, 8.4) == 800_000
    assert settled_cost_micro_usd(_spec(4, 67_000), 4.0) == 268_000


def test_a_chain_carries_every_route_that_makes_the_same_segments() -> None:
    """Segments fail over among routes that can make each planned clip and continue it."""
    veo = resolve_request(prompt="x", model="veo-3", duration_seconds=60)
    assert [(r.adapter, r.upstream_model) for r in veo.routes] == [
        ("veo", "veo-3.0-generate-001"),
        ("runway", "veo3.1"),
    ]
    assert all(r.continuation is Continuation.LAST_FRAME for r in veo.routes)
    # gen4.5's 10 s clips are made by no other runway-gen3 route: no failover for that chain.
    gen45 = resolve_request(prompt="x", model="runway-gen3", duration_seconds=16, resolution="720p")
    assert gen45.segments == [10, 6] and len(gen45.routes) == 1
