"""Schemathesis over the live API (issue 11): every operation of every dialect, with a key,
valid and invalid requests generated from the served `/openapi.json`.

Checks on each answer: never a 5xx, a documented status code, the documented content type
and body schema, and no 2xx for a request the schema calls invalid. After the run the
tenant's jobs are counted: exactly those some submit answered 2xx exist (no invalid request
made a job behind a 4xx).

Bounded and reproducible by default (`FUZZ_EXAMPLES` cases per operation, derandomized).
A longer exploratory session: `REELAY_FUZZ_EXAMPLES=1000 REELAY_FUZZ_SEED=<n>` (see README).
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from api.main import create_app
from reelay.tenants import hash_key
from tests.conftest import isolated_settings
from tests.support import MakeStack

KEY = "rl_fuzz_0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
FUZZ_EXAMPLES = int(os.environ.get("REELAY_FUZZ_EXAMPLES", "30"))
FUZZ_SEED = os.environ.get("REELAY_FUZZ_SEED")
# A tenant that a few thousand submits neither bankrupt nor rate-limit; two jobs run at a
# time (the rest wait in its queue), so the run does not render hundreds of videos.
TENANTS = f"""
[[tenants]]
id = "fuzz"
tier = "enterprise"
opening_balance_usd = 1000000.0
concurrent_jobs = 2
jobs_per_day = 1000000
key_hashes = ["{hash_key(KEY)}"]
"""
SUBMITS = {
    ("POST", "/v1/video/generations"),
    ("POST", "/v2/videos/generate"),
    ("POST", "/api/v1/videos/generate"),
    ("POST", "/v1/videos"),
}
# The keys a submit answer names its job by, per dialect.
ID_FIELDS = ("id", "jobId", "video_generation_id")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

answered_jobs: set[str] = set()


@pytest.fixture(scope="module")
def base_url(make_stack: MakeStack, tmp_path_factory: pytest.TempPathFactory) -> str:
    tenants = tmp_path_factory.mktemp("fuzz") / "tenants.toml"
    tenants.write_text(TENANTS)
    stack = make_stack(tenants_file=tenants, tenant_queue_cap=1_000_000)
    return stack.settings.public_url


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> OpenApiSchema:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", wait_for_schema=30)
    # The key goes on every request; generated (mostly wrong) keys would only test auth,
    # which tests/integration/test_hostile_input.py does by hand.
    schema.config.update(base_url=base_url, headers=AUTH)
    schema.config.generation.update(with_security_parameters=False)
    return schema


def _documented_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation the app documents (the live document must agree)."""
    doc = create_app(isolated_settings()).openapi()
    return [(method.upper(), path) for path, ops in doc["paths"].items() for method in ops]


OPERATIONS = _documented_operations()


def _settings() -> hypothesis.settings:
    """The run's Hypothesis settings: derandomized unless `REELAY_FUZZ_SEED` is given."""
    return hypothesis.settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=FUZZ_SEED is None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )


def test_the_live_document_lists_every_operation(api_schema: OpenApiSchema) -> None:
    live = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert live == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_api_holds_against_generated_requests(
    api_schema: OpenApiSchema, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @_settings()
    @hypothesis.given(case=cases)
    def holds(case: Case) -> None:
        response = case.call(timeout=30)
        if (method, path) in SUBMITS and 200 <= response.status_code < 300:
            body = response.json()
            answered_jobs.add(next(str(body[key]) for key in ID_FIELDS if key in body))
        case.validate_response(response, checks=CHECKS)

    if FUZZ_SEED is not None:
        holds = hypothesis.seed(int(FUZZ_SEED))(holds)
    holds()


def _tenant_jobs(base_url: str) -> set[str]:
    found: set[str] = set()
    cursor: str | None = None
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=60) as api:
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = api.get("/v1/video/generations", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            found.update(job["id"] for job in body["data"])
            cursor = body.get("next_cursor")
            if not cursor:
                return found


def test_only_accepted_submits_made_jobs(base_url: str) -> None:
    """Runs after the fuzzing: the tenant's jobs are exactly the ones answered 2xx.

    The listing reads Temporal's visibility, which may lag a just-started job a moment."""
    deadline = time.monotonic() + 30
    found = _tenant_jobs(base_url)
    while not found >= answered_jobs and time.monotonic() < deadline:
        time.sleep(0.5)
        found = _tenant_jobs(base_url)
    assert found == answered_jobs
