"""What unit and integration tests share: settings isolated from the developer's environment.

The servers (Temporal, SeaweedFS, the emulator) and the `make_stack` factory are fixtures of
tests/integration/conftest.py; nothing under tests/unit starts a server.
"""

from __future__ import annotations

import os
from typing import Any

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
