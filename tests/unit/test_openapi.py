"""The OpenAPI document's request schemas against the catalog and against the API's own
parsing (issue 11, item 9), and the small fixes the fuzzing found."""

from __future__ import annotations

import asyncio
from typing import Any

import jsonschema
import pytest
from starlette.requests import Request

from api.dialects import bodies
from api.dialects.openai.shapes import shape_of
from api.main import create_app
from api.problem import APIError
from providers.catalog import MODELS, find_model, resolve_request
from tests.conftest import isolated_settings

SUBMITS = [
    ("/v1/video/generations", "post"),
    ("/v2/videos/generate", "post"),
    ("/api/v1/videos/generate", "post"),
    ("/v1/videos", "post"),
]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(isolated_settings()).openapi()


def _bodies(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every request body schema of a submit (each option of a oneOf, each media type)."""
    found = []
    for path, method in SUBMITS:
        for media in document["paths"][path][method]["requestBody"]["content"].values():
            found.extend(media["schema"].get("oneOf", [media["schema"]]))
    return found


def _branch(prop: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The non-null branch of a property schema that has `key`."""
    for option in prop.get("anyOf", [prop]):
        if key in option:
            return option
    return None


def _served(name: str) -> bool:
    model = find_model(name)
    return model is not None and bool(model.routes) and model.retired_on is None


def test_every_documented_model_id_is_served_and_every_served_one_is_documented(
    document: dict[str, Any],
) -> None:
    documented: set[str] = set()
    for schema in _bodies(document):
        model = _branch(schema["properties"]["model"], "enum")
        assert model is not None, schema["title"]
        assert all(_served(name) for name in model["enum"]), schema["title"]
        documented |= set(model["enum"])
    served = {
        name
        for spec in MODELS
        if spec.routes and spec.retired_on is None and spec.unavailable_reason is None
        for name in (spec.id, *spec.aliases)
    }
    assert documented == served


def test_each_text_dialects_model_takes_a_text_prompt_with_its_defaults(
    document: dict[str, Any],
) -> None:
    native = document["paths"]["/v1/video/generations"]["post"]["requestBody"]
    schema = native["content"]["application/json"]["schema"]["oneOf"][0]
    model = _branch(schema["properties"]["model"], "enum")
    assert model is not None
    for name in model["enum"]:
        resolve_request(prompt="a kite", model=name)  # raises CatalogError if not


def test_duration_bounds_are_the_catalogs(document: dict[str, Any]) -> None:
    served = [m for m in MODELS if m.routes and m.retired_on is None and not m.unavailable_reason]
    low, high = min(m.shortest_seconds for m in served), max(m.longest_seconds for m in served)
    native = document["paths"]["/v1/video/generations"]["post"]["requestBody"]
    schema = native["content"]["application/json"]["schema"]["oneOf"][0]
    duration = _branch(schema["properties"]["duration_seconds"], "minimum")
    assert duration is not None
    assert (duration["minimum"], duration["maximum"]) == (low, high)


def test_request_examples_fit_their_own_schemas(document: dict[str, Any]) -> None:
    for schema in _bodies(document):
        for example in schema.get("examples", []):
            jsonschema.validate(example, schema)


def test_a_native_body_with_seed_001_fields_is_not_a_native_body(
    document: dict[str, Any],
) -> None:
    native = document["paths"]["/v1/video/generations"]["post"]["requestBody"]
    schema = native["content"]["application/json"]["schema"]["oneOf"][0]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"prompt": "a kite", "parameters": 5}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"model": "runway-gen3"}, schema)  # no prompt


def test_every_route_that_reads_a_body_documents_the_408(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert "408" in operation["responses"], (method, path)


# --- fixes found by the fuzzing ------------------------------------------------------------


def test_a_form_body_that_never_arrives_is_408(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies, "BODY_TIMEOUT_SECONDS", 0.05)

    async def never(*_: Any) -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/media",
        "headers": [(b"content-type", b"multipart/form-data; boundary=x")],
    }

    async def read() -> None:
        await bodies.form_fields(Request(scope, never), isolated_settings())

    with pytest.raises(APIError) as refused:
        asyncio.run(read())
    assert refused.value.status_code == 408


# Arabic-Indic and fullwidth digits: `int()` reads them, providers would not.
@pytest.mark.parametrize(
    "size",
    ["\u0661\u0662\u0668\u0660x\u0667\u0662\u0660", "\uff11\uff12\uff18\uff10x\uff17\uff12\uff10"],
)
def test_openai_sizes_are_ascii_digits(size: str) -> None:
    spec = find_model("runway-gen3")
    assert spec is not None
    with pytest.raises(APIError) as refused:
        shape_of(size, spec)
    assert refused.value.param == "size"
