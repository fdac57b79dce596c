"""The catalog as data: `models.toml` loads, every entry fits its family's vocabulary, and a
broken entry is refused with a message naming the entry and the field (pure, no servers)."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from providers.catalog import MODELS, CatalogDataError, parse_catalog
from providers.families import FAMILIES

RAW = tomllib.loads(
    resources.files("providers.catalog").joinpath("models.toml").read_text(encoding="utf-8")
)


def test_the_data_file_is_the_catalog() -> None:
    assert [m["id"] for m in RAW["models"]] == [m.id for m in MODELS]
    assert len(MODELS) >= 37


@pytest.mark.parametrize(
    ("model_id", "index"),
    [(m.id, i) for m in MODELS for i in range(len(m.routes))],
)
def test_every_route_entry_fits_its_family(model_id: str, index: int) -> None:
    entry = next(m for m in RAW["models"] if m["id"] == model_id)["routes"][index]
    family = FAMILIES[entry["family"]]  # a known family, by name
    route = next(m for m in MODELS if m.id == model_id).routes[index]
    assert route.adapter == family.adapter
    assert set(route.resolutions) <= set(family.resolutions)
    image_ratios = family.image_aspect_ratios or ()
    assert set(route.aspect_ratios) <= {*family.aspect_ratios, *image_ratios}
    for resolution in route.resolutions:
        assert set(route.lengths(resolution)) <= set(family.durations), resolution
    for flag in ("text_to_video", "image_to_video", "audio", "enhance_prompt"):
        assert getattr(family, flag) or not getattr(route, flag), flag
    # What the entry says is only ever a narrowing of the family: nothing left unchecked.
    assert set(entry) <= set(type(route).model_fields)


def test_a_model_of_a_known_family_is_one_entry() -> None:
    (model,) = parse_catalog(
        """
        [[models]]
        id = "new-kling"
        name = "New Kling"
        vendor = "Kuaishou"
        max_duration_seconds = 10
        default_duration_seconds = 5
        price_usd_per_second = 0.1
        [[models.routes]]
        family = "fal-kling"
        upstream_model = "fal-ai/kling-video/v9/text-to-video"
        """
    )
    (route,) = model.routes
    assert (route.adapter, route.durations, route.aspect_ratios) == (
        "fal",
        (5, 10),
        ("16:9", "9:16", "1:1"),
    )


@pytest.mark.parametrize(
    ("route_lines", "message"),
    [
        ("durations = [5, 7]", "model 'bad' route 1 (fal-ai/x): durations"),
        ('resolutions = ["4k"]', "model 'bad' route 1 (fal-ai/x): resolutions"),
        ("audio = true", "route 1 (fal-ai/x): audio: not something family fal-kling does"),
        ('colour = "red"', "model 'bad' route 1 (fal-ai/x): colour: Extra inputs"),
    ],
)
def test_a_broken_entry_names_the_model_and_the_field(route_lines: str, message: str) -> None:
    text = f"""
        [[models]]
        id = "bad"
        name = "Bad"
        vendor = "V"
        max_duration_seconds = 10
        default_duration_seconds = 5
        price_usd_per_second = 0.1
        [[models.routes]]
        family = "fal-kling"
        upstream_model = "fal-ai/x"
        {route_lines}
        """
    with pytest.raises(CatalogDataError) as caught:
        parse_catalog(text)
    assert message in str(caught.value)
    assert str(caught.value).startswith("models.toml: ")


def test_an_unknown_family_and_a_missing_field_are_named() -> None:
    base = '[[models]]\nid = "m"\nname = "M"\nvendor = "V"\nprice_usd_per_second = 1\n'
    with pytest.raises(CatalogDataError, match="model 'm': max_duration_seconds: Field required"):
        parse_catalog(base + "default_duration_seconds = 1\n")
    unknown = base + (
        "max_duration_seconds = 1\ndefault_duration_seconds = 1\n"
        '[[models.routes]]\nfamily = "nope"\nupstream_model = "u"\n'
    )
    with pytest.raises(CatalogDataError, match=r"model 'm' route 1 \(u\): .*nope"):
        parse_catalog(unknown)
    with pytest.raises(CatalogDataError, match="aliases: 'x' already names 'a'"):
        parse_catalog(
            "\n".join(
                f'[[models]]\nid = "{i}"\nname = "N"\nvendor = "V"\naliases = ["x"]\n'
                "max_duration_seconds = 1\ndefault_duration_seconds = 1\n"
                "price_usd_per_second = 1\n"
                for i in ("a", "b")
            )
        )


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_table_is_consistent(name: str) -> None:
    family = FAMILIES[name]
    assert family.name == name
    assert family.text_to_video or family.image_to_video
    ratios = {*family.aspect_ratios, *(family.image_aspect_ratios or ())}
    for ratio, resolution in {**family.frames, **family.image_frames}:
        assert ratio in ratios and resolution in family.resolutions, (ratio, resolution)
    for resolution, lengths in family.durations_by_resolution.items():
        assert resolution in family.resolutions and set(lengths) <= set(family.durations)
    assert set(family.resolution_values) <= set(family.resolutions)
    if family.fields.size is not None:
        assert family.frames, "a size field needs the frame table"
