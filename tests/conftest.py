"""Real servers for the tests, started on free ports in a temp dir and stopped at the end.

Session-scoped (started once, on first use): `temporal_server` (Temporal dev server, in
memory, headless, with Reelay's search attributes), `s3_server` (SeaweedFS `weed mini`, bucket
created) and `emulator_server` (the provider emulator). The function-scoped `settings` points
at all three with a task queue of its own, so tests never see each other's workers.

Nothing has to be started by hand; every process comes from `reelay.devstack`, the same code
that runs `make up`. Server logs are in the session's temp dir (`<tmp>/stack0/logs/*.log`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reelay import devstack
from reelay.devstack import S3Endpoint
from reelay.settings import Settings

S3_ACCESS_KEY = "reelay-test"
S3_SECRET_KEY = "reelay-test-secret-key"
S3_BUCKET = "reelay-test-videos"
DEV_API_KEY = "rl_test_0123456789abcdef"
# The emulator renders fast and small in tests.
EMULATOR_GENERATION_SECONDS = 1.0
EMULATOR_RENDER_SCALE = 8


def _is_reelay_var(name: str) -> bool:
    return name.upper().startswith("REELAY_")


def isolated_settings(**values: Any) -> Settings:
    """Settings from `values` and the defaults only: no `REELAY_*` env var, no `.env` file.

    A developer's own environment (say a real provider key) must not leak into the tests.
    """
    saved = {name: value for name, value in os.environ.items() if _is_reelay_var(name)}
    for name in saved:
        del os.environ[name]
    try:
        return Settings(_env_file=None, **values)
    finally:
        os.environ.update(saved)


def clean_env() -> dict[str, str]:
    """This process's env without any `REELAY_*` variable (children get theirs explicitly)."""
    return {name: value for name, value in os.environ.items() if not _is_reelay_var(name)}


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


@pytest.fixture
def settings(
    temporal_server: str,
    s3_server: S3Endpoint,
    emulator_server: str,
    stack_dir: Path,
    tmp_path: Path,
) -> Settings:
    """Settings pointing at the three servers, with a task queue of this test's own."""
    _, emulator_port = devstack.split_host_port(emulator_server)
    return isolated_settings(
        temporal_address=temporal_server,
        task_queue=f"test-{uuid.uuid4().hex[:12]}",
        **s3_server.settings_kwargs(),
        **_emulator_fields(stack_dir),
        emulator_port=emulator_port,
        poll_min_seconds=0.2,
        poll_max_seconds=1.0,
        dev_api_key=DEV_API_KEY,
        data_dir=tmp_path / "data",
    )
