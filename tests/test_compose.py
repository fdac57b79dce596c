"""docker-compose.yml and the Dockerfile agree with the code (no Docker engine needed)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from reelay.devstack import split_host_port
from reelay.settings import Settings
from tests.conftest import isolated_settings
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
REELAY_APPS = ("emulator", "worker", "api")
# Compose variable syntax: $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}.
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def interpolate(value: str) -> str:
    """The value as compose sees it with no variable set in the shell (defaults apply)."""
    return _VARIABLE.sub(lambda m: "$" if m.group(0) == "$$" else m.group("default") or "", value)


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): interpolate(str(v)) for k, v in env.items()}


def reelay_settings(service: str) -> Settings:
    """The Settings the service's process would build from its environment."""
    env = environment(service)
    prefix = "REELAY_"
    values = {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
    return isolated_settings(**values)


def all_strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in all_strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in all_strings(value)]
    return []


def depends_on(service: str) -> dict[str, str]:
    deps = SERVICES[service].get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def test_the_expected_services_exist() -> None:
    expected = {
        "postgresql",
        "temporal",
        "temporal-init",
        "temporal-ui",
        "minio",
        "minio-init",
        *REELAY_APPS,
    }
    assert expected <= set(SERVICES)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_reelay_variable_is_a_settings_field(service: str) -> None:
    fields = {f"REELAY_{name.upper()}" for name in Settings.model_fields}
    unknown = {name for name in environment(service) if name.startswith("REELAY_")} - fields
    assert not unknown, f"{service}: not Settings fields: {sorted(unknown)}"


@pytest.mark.parametrize("service", REELAY_APPS)
def test_reelay_services_reach_temporal_minio_and_the_emulator(service: str) -> None:
    env = environment(service)
    for name in (
        "REELAY_TEMPORAL_ADDRESS",
        "REELAY_S3_ENDPOINT",
        "REELAY_S3_ACCESS_KEY",
        "REELAY_S3_SECRET_KEY",
        "REELAY_S3_BUCKET",
    ):
        assert env.get(name), f"{service} lacks {name}"
    settings = reelay_settings(service)  # also: every value parses

    host, port = split_host_port(settings.temporal_address)
    assert (host, port) == ("temporal", 7233)
    host, port = split_host_port(settings.s3_endpoint)
    assert (host, port) == ("minio", 9000)
    assert settings.s3_secure is False

    minio = environment("minio")
    assert settings.s3_access_key == minio["MINIO_ROOT_USER"]
    assert settings.s3_secret_key.get_secret_value() == minio["MINIO_ROOT_PASSWORD"]
    assert settings.s3_bucket == environment("minio-init")["S3_BUCKET"]

    if service != "emulator":
        assert settings.emulator_host == "emulator"
        assert settings.emulator_port == reelay_settings("emulator").emulator_port
        assert {"temporal-init", "minio-init"} <= set(depends_on(service))


def test_minio_credentials_are_valid_for_minio() -> None:
    minio = environment("minio")
    assert len(minio["MINIO_ROOT_USER"]) >= 3
    assert len(minio["MINIO_ROOT_PASSWORD"]) >= 8
    init = environment("minio-init")
    assert (init["S3_ACCESS_KEY"], init["S3_SECRET_KEY"]) == (
        minio["MINIO_ROOT_USER"],
        minio["MINIO_ROOT_PASSWORD"],
    )
    script = "\n".join(all_strings(SERVICES["minio-init"].get("command")))
    assert "http://minio:9000" in interpolate(script)
    assert "mc mb --ignore-existing" in script
    assert depends_on("minio-init") == {"minio": "service_healthy"}
    assert "healthcheck" in SERVICES["minio"]


def test_servers_listen_on_all_interfaces_and_publish_their_ports() -> None:
    api = reelay_settings("api")
    assert api.api_host == "0.0.0.0"
    assert f"{api.api_port}:{api.api_port}" in SERVICES["api"]["ports"]
    assert api.dev_api_key
    emulator = reelay_settings("emulator")
    assert emulator.emulator_host == "0.0.0.0"
    assert "8233:8080" in SERVICES["temporal-ui"]["ports"]
    assert environment("temporal-ui")["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_temporal_runs_on_postgresql() -> None:
    temporal = SERVICES["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    env = environment("temporal")
    assert env["DB"].startswith("postgres")
    assert env["POSTGRES_SEEDS"] == "postgresql"
    postgres = environment("postgresql")
    assert (env["POSTGRES_USER"], env["POSTGRES_PWD"]) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert depends_on("temporal") == {"postgresql": "service_healthy"}


def test_temporal_init_registers_exactly_reelays_search_attributes() -> None:
    init = SERVICES["temporal-init"]
    assert init["image"].startswith("temporalio/admin-tools:")
    script = interpolate("\n".join(all_strings(init.get("command"))))
    assert "temporal operator search-attribute create" in script
    assert "--type Keyword" in script
    loop = re.search(r"for name in ([A-Za-z ]+); do", script)
    assert loop, script
    assert set(loop.group(1).split()) == {key.name for key in SEARCH_ATTRIBUTES}
    assert all(key.indexed_value_type.name == "KEYWORD" for key in SEARCH_ATTRIBUTES)


def test_workers_scale_horizontally() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker  # replicas would fight over host ports
    assert worker.get("deploy", {}).get("replicas", 1) >= 1


def test_reelay_services_run_real_entry_points_from_this_repo_image() -> None:
    for service in REELAY_APPS:
        spec = SERVICES[service]
        if service == "emulator":
            assert spec.get("build") == {"context": ".", "dockerfile": "emulator/Dockerfile"}
        else:
            assert spec.get("build") in (".", {"context": "."}), service
        command = spec["command"]
        assert command[0] == "python"
        if command[1] == "-m":
            assert importlib.util.find_spec(command[2]) is not None, command
        else:
            assert (ROOT / command[1]).is_file(), command
    assert SERVICES["emulator"]["command"][1:] == ["-m", "emulator"]
    assert SERVICES["api"]["command"][1:] == ["-m", "api"]
    assert SERVICES["worker"]["command"][1:] == ["worker.py"]


def test_dependencies_name_existing_services() -> None:
    for service in SERVICES:
        for dependency, condition in depends_on(service).items():
            assert dependency in SERVICES, f"{service} depends on unknown {dependency}"
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{dependency} has no healthcheck"


def test_shell_variables_are_escaped_from_compose_interpolation() -> None:
    # Compose substitutes $name and ${name} itself; the init scripts' own variables need $$.
    for value in all_strings(COMPOSE):
        leftover = _VARIABLE.sub("", value)
        assert "$" not in leftover, f"unescaped $ in {value!r}"


def test_dockerfile_builds_the_package_on_python_311_slim() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = [
        line.split(None, 1)
        for line in dockerfile.splitlines()
        if line.strip() and not line.lstrip().startswith("#") and line[0].isupper()
    ]
    assert instructions[0] == ["FROM", "python:3.11-slim"]
    keywords = [keyword for keyword, *_ in instructions]
    assert "CMD" in keywords and "USER" in keywords
    assert "pip install --no-deps ." in dockerfile
    assert "pyproject.toml" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".data", ".git", ".env"} <= set(ignored)
    # The product image holds no emulator: COPY names what it takes, never the whole tree.
    copies = [" ".join(rest) for keyword, *rest in instructions if keyword == "COPY"]
    assert copies and not any(c.startswith(". ") or "emulator" in c for c in copies), copies
