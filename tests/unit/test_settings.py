"""`REELAY_ENV=production` refuses what is only safe in development, naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from providers.registry import endpoint
from reelay.settings import Environment, Settings, get_settings
from tests.conftest import clean_env, isolated_settings

ROOT = Path(__file__).resolve().parents[2]
#: Everything production asks for, set: the baseline each refusal changes one thing of.
PRODUCTION: dict[str, Any] = {
    "env": "production",
    "s3_access_key": "reelay-prod",
    "s3_secret_key": SecretStr("s3-secret-0123456789abcdef"),
    "url_signing_secret": SecretStr("signing-secret-0123456789abcdef"),
}


def refusal(**changes: Any) -> str:
    # The changed values first: a leaked input would show them even where errors truncate it.
    values = changes | {name: v for name, v in PRODUCTION.items() if name not in changes}
    with pytest.raises(ValidationError) as refused:
        isolated_settings(**values)
    return str(refused.value)


def test_development_runs_on_the_defaults() -> None:
    settings = isolated_settings()
    assert settings.env is Environment.DEVELOPMENT
    assert settings.require_provider_keys is False
    assert endpoint(settings, "runway") is not None  # served by the emulator


def test_production_with_its_own_secrets_serves_no_provider_from_the_emulator() -> None:
    settings = isolated_settings(**PRODUCTION)
    assert settings.env is Environment.PRODUCTION
    assert settings.require_provider_keys is True
    assert endpoint(settings, "runway") is None
    keyed = isolated_settings(**PRODUCTION, runway_api_key=SecretStr("key_live"))
    served = endpoint(keyed, "runway")
    assert served is not None and not served.emulated


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"s3_access_key": Settings.model_fields["s3_access_key"].default}, "REELAY_S3_ACCESS_KEY"),
        ({"s3_secret_key": Settings.model_fields["s3_secret_key"].default}, "REELAY_S3_SECRET_KEY"),
        ({"s3_secret_key": SecretStr("short")}, "REELAY_S3_SECRET_KEY"),
        (
            {"url_signing_secret": Settings.model_fields["url_signing_secret"].default},
            "REELAY_URL_SIGNING_SECRET",
        ),
        ({"url_signing_secret": SecretStr("short")}, "REELAY_URL_SIGNING_SECRET"),
        ({"dev_api_key": "rl_dev_0123456789"}, "REELAY_DEV_API_KEY"),
        ({"require_provider_keys": False}, "REELAY_REQUIRE_PROVIDER_KEYS"),
    ],
)
def test_each_refusal_names_its_setting_and_only_it(changes: dict[str, Any], setting: str) -> None:
    message = refusal(**changes)
    assert "REELAY_ENV=production" in message
    assert setting in message
    others = {"REELAY_S3_ACCESS_KEY", "REELAY_S3_SECRET_KEY", "REELAY_URL_SIGNING_SECRET"}
    others |= {"REELAY_DEV_API_KEY", "REELAY_REQUIRE_PROVIDER_KEYS"}
    assert not [name for name in others - {setting} if f"{name} " in message]
    # The offending value is never echoed (nor any other input).
    assert "input_value" not in message
    for value in changes.values():
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if len(text) > 6:
            assert text not in message.replace(setting, "")


def test_every_default_secret_is_named_at_once() -> None:
    message = refusal(
        s3_access_key=Settings.model_fields["s3_access_key"].default,
        s3_secret_key=Settings.model_fields["s3_secret_key"].default,
        url_signing_secret=Settings.model_fields["url_signing_secret"].default,
    )
    for setting in ("REELAY_S3_ACCESS_KEY", "REELAY_S3_SECRET_KEY", "REELAY_URL_SIGNING_SECRET"):
        assert setting in message


def test_an_empty_signing_secret_is_refused_everywhere() -> None:
    with pytest.raises(ValidationError, match="REELAY_URL_SIGNING_SECRET must not be empty"):
        isolated_settings(url_signing_secret=SecretStr(""))


def test_the_url_signing_key_is_its_own_secret_not_the_s3_one() -> None:
    one = isolated_settings(s3_secret_key=SecretStr("s3-one"), url_signing_secret=SecretStr("a"))
    two = isolated_settings(s3_secret_key=SecretStr("s3-two"), url_signing_secret=SecretStr("a"))
    other = isolated_settings(s3_secret_key=SecretStr("s3-one"), url_signing_secret=SecretStr("b"))
    assert one.signing_key() == two.signing_key() == b"a"
    assert other.signing_key() != one.signing_key()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REELAY_ENV": "production", "REELAY_DEV_API_KEY": "rl_dev_0123"}, "REELAY_DEV_API_KEY"),
        ({"REELAY_API_PORT": "eighty"}, "REELAY_API_PORT: "),
        ({"REELAY_PROVIDER_SUBMITS_PER_SECOND": '{"runway": "x"}'}, "_SECOND[runway]: "),
    ],
    ids=["production", "field", "nested"],
)
def test_get_settings_ends_the_process_with_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name in list(os.environ):
        if name.upper().startswith("REELAY_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT / "tests")  # no .env here
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as stopped:
            get_settings()
    finally:
        get_settings.cache_clear()
    message = str(stopped.value.code)
    assert "\n" not in message
    assert message.startswith("reelay: invalid configuration: ")
    assert named in message


@pytest.mark.parametrize(
    "command", [["-m", "api"], [str(ROOT / "worker.py")]], ids=["api", "worker"]
)
def test_the_api_and_the_worker_refuse_to_start_with_a_default_secret(
    command: list[str], tmp_path: Path
) -> None:
    env = clean_env() | {
        "REELAY_ENV": "production",
        "REELAY_S3_ACCESS_KEY": "reelay-prod",
        "REELAY_S3_SECRET_KEY": "reelay-secret-key",  # the development default
        "REELAY_URL_SIGNING_SECRET": "signing-secret-0123456789abcdef",
    }
    done = subprocess.run(
        [sys.executable, *command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    assert "REELAY_S3_SECRET_KEY is the development default" in lines[0]
    assert "REELAY_URL_SIGNING_SECRET" not in lines[0]
