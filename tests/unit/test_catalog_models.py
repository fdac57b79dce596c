"""Every model id clients send (the list at the end of PROVIDERS.md) against the catalog, and
the catalog against the adapters: whatever the catalog accepts, the route's adapter can
express (pure, no servers)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from providers.base import SourceImage
from providers.catalog import (
    MODELS,
    CatalogError,
    ModelSpec,
    find_model,
    resolve_request,
    route_family,
)
from providers.fal import fal_input
from providers.families import PLATFORMS
from providers.luma import generation_body
from providers.registry import PROVIDERS
from providers.replicate import replicate_input
from providers.runway import runway_ratio
from providers.veo import predict_body
from reelay.jobs import JobSpec, Route

# The list at the end of /work/shared/PROVIDERS.md, seed by seed.
SEED_IDS = {
    "000": ["veo-3", "runway-gen3", "luma-dream-machine", "pika"],
    "001": ["google/veo-3.0-generate-preview"],
    "002": [
        "grok-imagine-video",
        "hailuo-02",
        "hailuo-2.3",
        "hailuo-2.3-fast",
        "luma-ray-2",
        "luma-ray-flash-2",
        "kling-2.1",
        "kling-2.1-master",
        "kling-2.5-turbo-pro",
        "kling-2.6",
        "kling-3.0",
        "midjourney-video",
        "runway-gen4-turbo",
        "runway-gen4.5",
        "seedance-1-lite",
        "seedance-1-pro",
        "seedance-1-pro-fast",
        "seedance-1.5-pro",
        "seedance-2",
        "seedance-2-fast",
        "sora-2",
        "sora-2-pro",
        "veo-2",
        "veo-3",
        "veo-3-fast",
        "veo-3.1",
        "veo-3.1-fast",
        "wan-2.5",
        "wan-2.5-fast",
        "wan-2.6",
        "wan-2.6-flash",
    ],
    "003": ["kling-3.0-pro", "veo-3.1", "runway-gen-4.5"],
    # seed 004: `google/veo-3.0` plus its table (Sora 2, Sora 2 Pro, Veo 2.0, Veo 3.0,
    # Veo 3.0 Audio, Kling v3, Seedance, Hailuo 02) under vendor-style ids
    "004": [
        "google/veo-3.0",
        "openai/sora-2",
        "openai/sora-2-pro",
        "google/veo-2.0",
        "google/veo-3.0-audio",
        "kling-v3",
        "seedance",
        "minimax/hailuo-02",
    ],
}
ALL_IDS = sorted({name for names in SEED_IDS.values() for name in names})
RETIRED = {"sora-2", "sora-2-pro", "openai/sora-2", "openai/sora-2-pro"}
NO_ROUTE = {
    "grok-imagine-video": "its own API",
    "midjourney-video": "no public API",
}
IMAGE_ONLY = {"runway-gen4-turbo", "kling-2.1", "hailuo-2.3-fast", "wan-2.6-flash"}
IMAGE = SourceImage(url="https://bucket.test/in.png", content_type="image/png", data=b"png")


@pytest.mark.parametrize("model_id", ALL_IDS)
def test_every_client_model_id_resolves_or_says_why_not(model_id: str) -> None:
    if model_id in RETIRED:
        with pytest.raises(CatalogError, match="retired by its provider on 2026-09-24"):
            resolve_request(prompt="a cat", model=model_id)
        return
    if model_id in NO_ROUTE:
        with pytest.raises(CatalogError, match=f"is not available: .*{NO_ROUTE[model_id]}"):
            resolve_request(prompt="a cat", model=model_id)
        return
    if model_id in IMAGE_ONLY:
        with pytest.raises(CatalogError, match="from an image only") as caught:
            resolve_request(prompt="a cat", model=model_id)
        assert caught.value.field == "image"
        resolved = resolve_request(prompt="a cat", model=model_id, with_image=True)
    else:
        resolved = resolve_request(prompt="a cat", model=model_id)
    assert resolved.duration_seconds == resolved.model.default_duration_seconds
    assert resolved.routes and {r.adapter for r in resolved.routes} <= {*PROVIDERS, *PLATFORMS}


def test_seed_000_models_keep_their_prices_and_get_their_routes() -> None:
    expected = {
        "veo-3": (60, 0.35, [("veo", "veo-3.0-generate-001"), ("runway", "veo3.1")]),
        "runway-gen3": (16, 0.10, [("runway", "gen4.5"), ("runway", "veo3.1_fast")]),
        "luma-dream-machine": (10, 0.06, [("luma", "ray-2")]),
        "pika": (4, 0.067, [("fal", "fal-ai/pika/v2.2/text-to-video")]),
    }
    for model_id, (maximum, price, routes) in expected.items():
        model = find_model(model_id)
        assert model is not None
        assert (model.max_duration_seconds, model.price_usd_per_second) == (maximum, price)
        assert [(r.adapter, r.upstream_model) for r in model.routes] == routes
    pika = resolve_request(prompt="x", model="pika", duration_seconds=4)
    assert pika.routes[0].clip_seconds == 5  # made at 5 s, stored trimmed to 4
    assert pika.estimated_cost_micro_usd == 4 * 67_000


def test_seed_003_prompt_limits() -> None:
    for model_id, limit in [("veo-3.1", 3000), ("kling-3.0-pro", 2500), ("runway-gen-4.5", 1000)]:
        resolve_request(prompt="x" * limit, model=model_id)
        with pytest.raises(CatalogError, match=f"maximum of {limit} characters"):
            resolve_request(prompt="x" * (limit + 1), model=model_id)


def test_aliases_name_the_model_that_runs() -> None:
    assert resolve_request(prompt="x", model="runway-gen-4.5").model.id == "runway-gen4.5"
    veo = resolve_request(prompt="x", model="google/veo-3.0-generate-preview")
    assert (veo.model.id, veo.requested_model) == ("veo-3", "google/veo-3.0-generate-preview")
    assert resolve_request(prompt="x", model="kling-3.0-pro").routes[0].upstream_model == (
        "fal-ai/kling-video/v3/pro/text-to-video"
    )
    names = [name.lower() for model in MODELS for name in (model.id, *model.aliases)]
    assert len(names) == len(set(names)), "an alias names two models"


def test_audio_models_and_prices() -> None:
    audio = resolve_request(prompt="x", model="google/veo-3.0-audio")
    assert audio.audio and audio.price_micro_usd_per_second == 400_000
    kling = resolve_request(prompt="x", model="kling-2.6", audio=True)
    assert kling.price_micro_usd_per_second == 140_000
    assert resolve_request(prompt="x", model="kling-2.6").price_micro_usd_per_second == 70_000
    hailuo = resolve_request(prompt="x", model="hailuo-02", resolution="1080p")
    assert hailuo.price_micro_usd_per_second == 80_000
    assert [r.adapter for r in hailuo.routes] == ["replicate"]  # fal's standard tier stops at 768p


def test_resolution_dependent_durations() -> None:
    at_1080 = resolve_request(prompt="x", model="veo-3.1", duration_seconds=4, resolution="1080p")
    assert [(r.adapter, r.clip_seconds) for r in at_1080.routes] == [
        ("veo", 8),
        ("runway", None),
    ]
    at_720 = resolve_request(prompt="x", model="veo-3.1", duration_seconds=4, resolution="720p")
    assert [r.clip_seconds for r in at_720.routes] == [None, None]
    # No route makes 10 s at 1080p in one clip: two continued 6 s segments do.
    chained = resolve_request(
        prompt="x", model="hailuo-02", duration_seconds=10, resolution="1080p"
    )
    assert chained.segments == [6, 6]
    # Between two upstream lengths: made at the next longer one, stored trimmed.
    kling = resolve_request(prompt="x", model="kling-2.5-turbo-pro", duration_seconds=7)
    assert [r.clip_seconds for r in kling.routes] == [10, 10]


@pytest.mark.parametrize(
    ("request_", "field", "message"),
    [
        ({"model": "sora-2", "duration_seconds": 4}, "model", "retired"),
        ({"model": "google/veo-3.0", "duration_seconds": 7}, "duration_seconds", "one of 4, 6, 8"),
        ({"model": "minimax/hailuo-02", "duration_seconds": 7}, "duration_seconds", "one of 6, 10"),
        ({"model": "wan-2.5", "duration_seconds": 11}, "duration_seconds", "maximum of 10"),
        ({"model": "hailuo-02", "resolution": "720p"}, "resolution", "one of 512p, 768p, 1080p"),
        ({"model": "veo-2", "resolution": "1080p"}, "resolution", "must be one of 720p for veo-2"),
        (
            {"model": "luma-ray-2", "aspect_ratio": "2:1"},
            "aspect_ratio",
            "one of 16:9, 9:16, 1:1, 4:3, 3:4, 21:9, 9:21",
        ),
        ({"model": "seedance-1-pro", "duration_seconds": 13}, "duration_seconds", "maximum of 12"),
        ({"model": "kling-2.1-master", "audio": True}, "audio", "audio is not available"),
        ({"model": "runway-gen4.5", "aspect_ratio": "1:1"}, "aspect_ratio", "one of 16:9, 9:16"),
        ({"model": "kling-3.0", "duration_seconds": 2}, "duration_seconds", "at least 3"),
        ({"model": "veo-3.1", "duration_seconds": 9}, "duration_seconds", "maximum of 8"),
    ],
)
def test_invalid_per_model_parameters_name_the_allowed_values(
    request_: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(CatalogError) as caught:
        resolve_request(prompt="a cat", **request_)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert message in caught.value.message


def test_model_tables_are_consistent() -> None:
    for model in MODELS:
        if model.retired_on or model.unavailable_reason:
            assert not model.routes
            continue
        assert model.default_resolution in model.resolutions, model.id
        assert model.default_aspect_ratio in model.aspect_ratios, model.id
        assert set(model.price_by_resolution) <= set(model.resolutions), model.id
        assert model.one_clip_seconds <= model.max_duration_seconds or model.id in (
            "luma-dream-machine",
            "pika",
        ), model.id


def _job(model: ModelSpec, resolved_route: Route, **fields: object) -> JobSpec:
    return JobSpec.model_validate(
        {
            "job_id": "j",
            "tenant_id": "t",
            "request_id": "r",
            "model": model.id,
            "requested_model": model.id,
            "routes": [resolved_route],
            "prompt": "x",
            "price_micro_usd_per_second": 1,
            "created_at": datetime.now(UTC),
            "deadline_seconds": 60,
            **fields,
        }
    )


def _express(route: Route, job: JobSpec, image: SourceImage | None) -> None:
    """Build the adapter's request body (raises if the adapter cannot express the job)."""
    if route.adapter == "runway":
        family = route_family(route)
        assert family is not None
        runway_ratio(job.aspect_ratio, job.resolution, family, with_image=image is not None)
    elif route.adapter == "luma":
        generation_body(job, route, image, None)
    elif route.adapter == "veo":
        predict_body(job, route, image)
    elif route.adapter == "fal":
        fal_input(job, route, image)
    else:
        assert route.adapter == "replicate"
        replicate_input(job, route, image)


def test_every_accepted_request_is_expressible_by_every_route() -> None:
    checked = 0
    for model in MODELS:
        if model.retired_on or model.unavailable_reason:
            continue
        combos = itertools.product(
            model.resolutions,
            model.aspect_ratios,
            range(1, model.one_clip_seconds + 1),
            (False, True),
            (False, True),
        )
        for resolution, ratio, seconds, with_image, audio in combos:
            try:
                resolved = resolve_request(
                    prompt="x",
                    model=model.id,
                    duration_seconds=seconds,
                    resolution=resolution,
                    aspect_ratio=ratio,
                    with_image=with_image,
                    audio=audio,
                )
            except CatalogError:
                continue
            for route in resolved.routes:
                # A chain asks for each of its segments as one clip of that length.
                for clip in resolved.segments or [seconds]:
                    fields = {
                        "duration_seconds": clip,
                        "resolution": resolution,
                        "aspect_ratio": ratio,
                        "audio": resolved.audio,
                    }
                    image = IMAGE if with_image else None
                    _express(route, _job(model, route, **fields), image)
                    checked += 1
    assert checked > 1000
