"""The API docs work offline: `/docs` (Swagger UI) and `/redoc` (ReDoc) render every operation
in headless Chromium with every host but the API's unreachable; the OpenAPI document groups
the dialects by tag, and each request example it documents is accepted by a live API.

Chromium is Debian's (`make chromium` installs it when missing; the fixture calls it).
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelay.settings import Settings
from tests.conftest import DEV_API_KEY
from tests.support import MakeStack

ROOT = Path(__file__).resolve().parents[2]
# Budget of virtual time for the page's scripts to fetch /openapi.json and render.
RENDER_BUDGET_MS = 20_000
CHROMIUM_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def stack(make_stack: MakeStack) -> Settings:
    return make_stack().settings


@pytest.fixture(scope="module")
def doc(stack: Settings) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{stack.public_url}/openapi.json").json()
    return document


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary, installed by `make chromium` when missing."""
    if shutil.which("chromium") is None:
        subprocess.run(["make", "-s", "chromium"], cwd=ROOT, check=True)
    found = shutil.which("chromium")
    assert found is not None, "`make chromium` did not install chromium"
    return found


class Elements(HTMLParser):
    """Every element's attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.attrs: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs.append({name: value or "" for name, value in attrs})

    def values(self, name: str, *, css_class: str | None = None) -> list[str]:
        """The values of attribute `name`, on elements of class `css_class` if given."""
        return [
            element[name]
            for element in self.attrs
            if name in element
            and (css_class is None or css_class in element.get("class", "").split())
        ]


def rendered(chromium: str, url: str, profile: Path) -> Elements:
    """The DOM of `url` after its scripts ran, in headless Chromium that can reach no host
    but 127.0.0.1: a script or stylesheet from a CDN would fail to load."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--virtual-time-budget={RENDER_BUDGET_MS}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT_SECONDS,
        check=True,
    )
    elements = Elements()
    elements.feed(result.stdout)
    return elements


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, methods in doc["paths"].items()
        for method, operation in methods.items()
    ]


@pytest.mark.parametrize(
    ("page", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
def test_the_docs_pages_load_everything_from_the_api(
    stack: Settings, page: str, script: str
) -> None:
    html = httpx.get(f"{stack.public_url}{page}").text
    assert "://" not in html, html
    page_elements = Elements()
    page_elements.feed(html)
    assets = page_elements.values("src") + page_elements.values("href")
    assert any(asset.endswith("/" + script) for asset in assets), assets
    for asset in assets:
        assert asset.startswith("/"), asset
        assert httpx.get(f"{stack.public_url}{asset}").status_code == 200, asset


def test_swagger_ui_renders_every_operation_offline(
    stack: Settings, doc: dict[str, Any], chromium: str, tmp_path: Path
) -> None:
    dom = rendered(chromium, f"{stack.public_url}/docs", tmp_path / "profile")
    shown = set(dom.values("data-path", css_class="opblock-summary-path"))
    assert "/v1/video/generations" in shown
    assert shown == set(doc["paths"])
    # One section per tag, in the document's order.
    assert list(dict.fromkeys(dom.values("data-tag"))) == [tag["name"] for tag in doc["tags"]]


def test_redoc_renders_every_operation_offline(
    stack: Settings, doc: dict[str, Any], chromium: str, tmp_path: Path
) -> None:
    dom = rendered(chromium, f"{stack.public_url}/redoc", tmp_path / "profile")
    # The menu: each tag in the document's order, each operation under each of its tags.
    slugs = {tag["name"]: "tag/" + tag["name"].replace(" ", "-") for tag in doc["tags"]}
    menu = dom.values("data-item-id")
    assert [item for item in menu if item.count("/") == 1] == list(slugs.values())
    assert {
        f"{slugs[tag]}/operation/{operation['operationId']}"
        for _, _, operation in operations(doc)
        for tag in operation["tags"]
    } <= set(menu)
    # And each operation's section (its parameters, bodies, responses).
    assert {f"operation/{operation['operationId']}" for _, _, operation in operations(doc)} <= set(
        dom.values("data-section-id")
    )


def test_every_tag_says_what_it_is(doc: dict[str, Any]) -> None:
    described = {tag["name"]: tag["description"] for tag in doc["tags"]}
    used = {tag for _, _, operation in operations(doc) for tag in operation["tags"]}
    assert used == described.keys()
    assert all(described.values())
    assert next(iter(described)) == "native (seed 000)"
    # The vendor API each dialect imitates.
    for tag, vendor in {
        "native (seed 000)": "Perf",
        "seed 001": "Lunos",
        "seed 003": "PowerPost",
        "seed 004": "Runcrate",
        "OpenAI videos": "OpenAI",
    }.items():
        assert vendor in described[tag], tag


def documented_examples(doc: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(path, example name, request body) of every JSON request example."""
    return [
        (path, name, example["value"])
        for path, method, operation in operations(doc)
        for name, example in operation.get("requestBody", {})
        .get("content", {})
        .get("application/json", {})
        .get("examples", {})
        .items()
        if method == "post"
    ]


def test_every_documented_request_example_is_accepted(stack: Settings, doc: dict[str, Any]) -> None:
    examples = documented_examples(doc)
    # Every dialect's submit route documents examples.
    assert {path for path, _, _ in examples} == {
        "/v1/video/generations",
        "/v2/videos/generate",
        "/api/v1/videos/generate",
        "/v1/videos",
    }
    with httpx.Client(
        base_url=stack.public_url, headers={"Authorization": f"Bearer {DEV_API_KEY}"}, timeout=30
    ) as api:
        for path, name, body in examples:
            response = api.post(path, json=body)
            assert response.is_success, (name, response.status_code, response.text)
