"""docker-compose.yml and the Dockerfile agree with the code (no Docker engine needed).

The secrets compose generates are checked by running `secrets-init`'s own script here and
building the services' `Settings` (production mode) from what it wrote.
"""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from reelay.devstack import split_host_port
from reelay.devstack.temporal import DYNAMIC_CONFIG
from reelay.search_attributes import search_attribute_types
from reelay.settings import Environment, Settings
from reelay.tenants import TenantDirectory
from tests.conftest import isolated_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
REELAY_APPS = ("worker", "api")
SECRETS_MOUNT = "/run/reelay"
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


def generate_secrets(directory: Path) -> subprocess.CompletedProcess[str]:
    """Run `secrets-init`'s script (as compose would) with its output in `directory`."""
    script = interpolate("\n".join(all_strings(SERVICES["secrets-init"]["command"])))
    env = {k: v for k, v in environment("secrets-init").items()}
    env |= {"SECRETS_DIR": str(directory), "APP_UID": str(os.getuid())}
    env |= {"TEMPORAL_UID": str(os.getuid()), "GRAFANA_UID": str(os.getuid())}
    env |= {"PATH": os.environ["PATH"]}
    return subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, check=True, timeout=30
    )


def env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("secrets")
    generate_secrets(directory)
    return directory


def in_container(path: Path, secrets: Path) -> str:
    """`path` (under `secrets`) as the containers see it (under the volume's mount)."""
    return f"{SECRETS_MOUNT}/{path.relative_to(secrets)}"


def reelay_settings(service: str, secrets: Path) -> Settings:
    """The Settings the service's process would build: its environment plus the generated
    reelay.env its entrypoint exports (paths in the volume mapped to `secrets`)."""
    env = environment(service) | env_file(secrets / "reelay.env")
    prefix = "REELAY_"
    values = {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
    for name, value in values.items():
        if value.startswith(f"{SECRETS_MOUNT}/"):
            values[name] = str(secrets / value.removeprefix(f"{SECRETS_MOUNT}/"))
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
        "secrets-init",
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
def test_reelay_services_run_in_production_and_reach_temporal_and_minio(
    service: str, secrets_dir: Path
) -> None:
    settings = reelay_settings(service, secrets_dir)  # production's checks pass
    assert settings.env is Environment.PRODUCTION
    assert settings.require_provider_keys is True
    assert settings.dev_api_key == ""

    host, port = split_host_port(settings.temporal_address)
    assert (host, port) == ("temporal", 7233)
    host, port = split_host_port(settings.s3_endpoint)
    assert (host, port) == ("minio", 9000)
    assert settings.s3_secure is False
    assert settings.s3_bucket == environment("minio-init")["S3_BUCKET"]
    assert {"secrets-init", "temporal-init", "minio-init"} <= set(depends_on(service))


@pytest.mark.parametrize("service", REELAY_APPS)
def test_reelay_services_export_the_generated_secrets(service: str) -> None:
    spec = SERVICES[service]
    entrypoint = interpolate(" ".join(spec["entrypoint"]))
    assert f"set -a && . {SECRETS_MOUNT}/reelay.env && set +a" in entrypoint
    assert 'exec "$@"' in entrypoint  # then the service's own command
    assert f"secrets:{SECRETS_MOUNT}" in spec["volumes"]


def test_no_secret_is_a_literal_of_the_compose_file() -> None:
    secret = re.compile(r"(SECRET|PASSWORD|PWD|_KEY)$", re.IGNORECASE)
    for service in SERVICES:
        for name, value in environment(service).items():
            if secret.search(name):
                assert value == "", f"{service}: {name} has a committed value"


def test_secrets_are_generated_once_unguessable_and_private(
    tmp_path: Path, secrets_dir: Path
) -> None:
    generated = env_file(secrets_dir / "reelay.env")
    wanted = {
        "REELAY_S3_ACCESS_KEY",
        "REELAY_S3_SECRET_KEY",
        "REELAY_URL_SIGNING_SECRET",
        "REELAY_WEBHOOK_SECRET_SEED",
        "REELAY_ADMIN_API_KEY",
        "REELAY_DATABASE_URL",
    }
    assert set(generated) == wanted
    ledger_password = env_file(secrets_dir / "postgres.env")["LEDGER_DB_PASSWORD"]
    assert generated["REELAY_DATABASE_URL"] == (
        f"postgresql+asyncpg://reelay:{ledger_password}@postgresql:5432/reelay"
    )
    for name in wanted - {"REELAY_S3_ACCESS_KEY"}:
        assert len(generated[name]) >= 64, name
    for path in secrets_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name

    # A second start keeps them; another volume gets others.
    copy = tmp_path / "again"
    copy.mkdir()
    for path in secrets_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    generate_secrets(copy)
    assert env_file(copy / "reelay.env") == generated
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    generate_secrets(fresh)
    other = env_file(fresh / "reelay.env")
    assert all(other[name] != generated[name] for name in wanted)


def test_the_generated_api_key_is_the_first_tenants(secrets_dir: Path) -> None:
    settings = reelay_settings("api", secrets_dir)
    assert settings.tenants_file == secrets_dir / "tenants.toml"
    assert environment("api")["REELAY_TENANTS_FILE"] == f"{SECRETS_MOUNT}/tenants.toml"
    key = (secrets_dir / "api_key").read_text().strip()
    tenant = TenantDirectory(settings).authenticate(key)
    assert tenant is not None and tenant.id == "default"
    assert TenantDirectory(settings).authenticate(key + "x") is None


def test_minio_and_its_init_use_the_generated_s3_keys(secrets_dir: Path) -> None:
    minio = SERVICES["minio"]
    entrypoint = interpolate(" ".join(minio["entrypoint"]))
    assert f". {SECRETS_MOUNT}/reelay.env" in entrypoint
    assert 'MINIO_ROOT_USER="$REELAY_S3_ACCESS_KEY"' in entrypoint
    assert 'MINIO_ROOT_PASSWORD="$REELAY_S3_SECRET_KEY"' in entrypoint
    assert 'exec minio "$@"' in entrypoint
    assert minio["command"][0] == "server"
    generated = env_file(secrets_dir / "reelay.env")
    assert len(generated["REELAY_S3_ACCESS_KEY"]) >= 3  # MinIO's minimum lengths
    assert len(generated["REELAY_S3_SECRET_KEY"]) >= 8
    script = interpolate("\n".join(all_strings(SERVICES["minio-init"].get("command"))))
    assert f". {SECRETS_MOUNT}/reelay.env" in script
    assert (
        'mc alias set reelay http://minio:9000 "$REELAY_S3_ACCESS_KEY" "$REELAY_S3_SECRET_KEY"'
        in (script)
    )
    assert "mc mb --ignore-existing" in script
    assert depends_on("minio-init") == {"minio": "service_healthy"}
    assert depends_on("minio") == {"secrets-init": "service_completed_successfully"}
    assert "healthcheck" in SERVICES["minio"]


def test_servers_listen_on_all_interfaces_and_publish_their_ports(secrets_dir: Path) -> None:
    api = reelay_settings("api", secrets_dir)
    assert api.api_host == "0.0.0.0"
    assert f"{api.api_port}:{api.api_port}" in SERVICES["api"]["ports"]
    assert "8233:8080" in SERVICES["temporal-ui"]["ports"]
    assert environment("temporal-ui")["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_temporal_runs_on_postgresql() -> None:
    temporal = SERVICES["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    env = environment("temporal")
    assert env["DB"].startswith("postgres")
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert env["POSTGRES_USER"] == environment("postgresql")["POSTGRES_USER"]
    # Both read the generated password from the same file, under the names each one uses.
    temporal_entry = interpolate(" ".join(temporal["entrypoint"]))
    assert f". {SECRETS_MOUNT}/postgres.env" in temporal_entry
    assert 'export POSTGRES_PWD="$POSTGRES_PASSWORD"' in temporal_entry
    assert 'exec /etc/temporal/entrypoint.sh "$@"' in temporal_entry  # the image's own
    assert temporal["command"] == ["autosetup"]
    postgres_entry = interpolate(" ".join(SERVICES["postgresql"]["entrypoint"]))
    assert f"set -a && . {SECRETS_MOUNT}/postgres.env && set +a" in postgres_entry
    assert 'exec docker-entrypoint.sh "$@"' in postgres_entry
    assert depends_on("temporal") == {"postgresql": "service_healthy"}


def test_temporal_runs_with_the_local_stacks_dynamic_config() -> None:
    temporal = SERVICES["temporal"]
    path = temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    mounted = {
        target: source
        for source, target, *_ in (volume.split(":") for volume in temporal["volumes"])
    }
    source = mounted[f"/etc/temporal/{path}"]
    config = yaml.safe_load((ROOT / source).read_text())
    as_flags = {key: str(values[0]["value"]).lower() for key, values in config.items()}
    assert as_flags == DYNAMIC_CONFIG


def test_temporal_init_registers_exactly_reelays_search_attributes(tmp_path: Path) -> None:
    """The one-shot's script, run by `sh` against a stand-in `temporal` CLI that records
    each `search-attribute create`, registers every name with its type from the toml."""
    init = SERVICES["temporal-init"]
    assert init["image"].startswith("temporalio/admin-tools:")
    script = interpolate("\n".join(all_strings(init.get("command"))))
    created = tmp_path / "created"
    cli = tmp_path / "temporal"
    cli.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '  *"cluster health"*) echo SERVING ;;\n'
        '  *"search-attribute create"*) shift 3; echo "$*" >> "$CREATED" ;;\n'
        "esac\n"
    )
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "CREATED": str(created)}
    subprocess.run(["sh", "-c", script], env=env, check=True, timeout=30)
    registered = {}
    for line in created.read_text().splitlines():
        args = line.split()
        registered[args[args.index("--name") + 1]] = args[args.index("--type") + 1]
    assert registered == search_attribute_types()


def test_workers_scale_horizontally() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker  # replicas would fight over host ports
    assert worker.get("deploy", {}).get("replicas", 1) >= 1


def test_reelay_services_run_real_entry_points_from_this_repo_image() -> None:
    for service in REELAY_APPS:
        spec = SERVICES[service]
        assert spec.get("build") in (".", {"context": "."}), service
        command = spec["command"]
        assert command[0] == "python"
        if command[1] == "-m":
            assert importlib.util.find_spec(command[2]) is not None, command
        else:
            assert (ROOT / command[1]).is_file(), command
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
