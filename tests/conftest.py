"""What unit and integration tests share: settings isolated from the developer's environment,
and the JSON logs of this process in a buffer (`json_logs`).

The servers (Temporal, SeaweedFS, the emulator) and the `make_stack` factory are fixtures of
tests/integration/conftest.py; nothing under tests/unit starts a server.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from reelay.logging import configure_logging, shutdown_logging
from reelay.settings import Settings

DEV_API_KEY = "rl_test_0123456789abcdef"


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


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """JSON logs into a buffer; the previous set-up restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging(isolated_settings(log_json=True), stream=buffer)
    try:
        yield buffer
    finally:
        shutdown_logging()
        structlog.reset_defaults()
        root.handlers, root.level = handlers, level
