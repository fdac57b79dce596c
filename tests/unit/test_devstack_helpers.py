"""`reelay.devstack`'s helpers: free ports, the settings env, `ManagedProcess` and its
bounded waits, and `up` refusing a taken port (no server is started)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import get_args

import pytest
from temporalio.api.enums.v1 import IndexedValueType

from reelay import devstack
from reelay.devstack import temporal
from reelay.search_attributes import SearchAttributeType, search_attribute_types
from reelay.settings import Settings
from tests.conftest import clean_env, isolated_settings
from tests.support import pid_alive
from workflows import search_attributes


def test_free_port_with_grpc_leaves_both_ports_free() -> None:
    ports = {devstack.free_port(with_grpc=True) for _ in range(5)}
    assert len(ports) == 5
    for port in ports:
        assert devstack.port_is_free(port)
        assert devstack.port_is_free(port + devstack.GRPC_PORT_OFFSET)


def test_settings_env_round_trips_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    original = isolated_settings(
        api_port=devstack.free_port(), s3_secure=True, s3_secret_key="s3cr3t", poll_min_seconds=0.5
    )
    env = devstack.settings_env(original)
    unset = {name for name in Settings.model_fields if getattr(original, name) is None}
    assert set(env) == {
        f"REELAY_{name.upper()}" for name in Settings.model_fields if name not in unset
    }
    for name in list(os.environ):
        if name.upper().startswith("REELAY_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None) == original


def _output(proc: devstack.ManagedProcess) -> list[str]:
    """The process's own log lines (without the `=== starting` header)."""
    return [line for line in proc.log_tail().splitlines() if line and not line.startswith("===")]


def test_stop_terminates_the_whole_process_group(tmp_path: Path) -> None:
    # The shell dies on SIGTERM, its background child ignores it: nothing may be orphaned.
    script = "(trap '' TERM; exec sleep 300) & echo child=$!; wait"
    proc = devstack.ManagedProcess("sh", ["sh", "-c", script], log_path=tmp_path / "sh.log")
    proc.start()
    devstack.wait_until(lambda: bool(_output(proc)), what="the child pid", timeout=10)
    child = int(_output(proc)[0].removeprefix("child="))
    assert pid_alive(child)
    proc.stop(grace=5)
    assert not proc.alive()
    devstack.wait_until(lambda: not pid_alive(child), what="the grandchild to exit", timeout=5)


def test_stop_escalates_to_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(300)"
    )
    proc = devstack.ManagedProcess(
        "stubborn", [sys.executable, "-c", stubborn], log_path=tmp_path / "stubborn.log"
    ).start()
    devstack.wait_until(lambda: _output(proc) == ["ready"], what="ready", timeout=10)
    began = time.monotonic()
    assert proc.stop(grace=0.5) == -signal.SIGKILL
    assert time.monotonic() - began < 5


def test_waits_fail_fast_with_the_log_tail_when_the_process_dies(tmp_path: Path) -> None:
    crashing = "import sys; print('the-reason-it-died'); sys.exit(3)"
    proc = devstack.ManagedProcess(
        "crashing", [sys.executable, "-c", crashing], log_path=tmp_path / "crashing.log"
    ).start()
    began = time.monotonic()
    with pytest.raises(devstack.StackError) as failure:
        devstack.wait_for_http(
            f"http://127.0.0.1:{devstack.free_port()}/healthz", timeout=60, process=proc
        )
    assert time.monotonic() - began < 10
    assert "exited (3)" in str(failure.value)
    assert "the-reason-it-died" in str(failure.value)


def test_waits_are_bounded(tmp_path: Path) -> None:
    with pytest.raises(devstack.StackTimeout):
        devstack.wait_for_tcp("127.0.0.1", devstack.free_port(), timeout=0.5)


def test_up_refuses_to_start_when_a_port_is_taken(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        api_port = taken.getsockname()[1]
        env = clean_env() | {"REELAY_DATA_DIR": str(data_dir), "REELAY_API_PORT": str(api_port)}
        done = subprocess.run(
            [sys.executable, "-m", "reelay.devstack", "up"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"{api_port} (REELAY_API_PORT)" in done.stdout
    assert not (data_dir / "logs" / "temporal.log").exists()  # nothing was started


def test_search_attributes_reach_the_dev_server_from_their_data_file() -> None:
    types = search_attribute_types()
    assert types and set(types) == {key.name for key in search_attributes.ALL}
    flags = temporal.dev_server_flags()
    assert flags[0::2] == ["--search-attribute"] * len(types)
    assert flags[1::2] == [f"{name}={kind}" for name, kind in types.items()]
    # Every type the data may name maps onto Temporal's own enum (the SDK is the oracle).
    for kind in get_args(SearchAttributeType):
        assert IndexedValueType.Name(temporal.indexed_value_type(kind)).startswith(
            "INDEXED_VALUE_TYPE_"
        )
    assert (
        temporal.indexed_value_type("KeywordList")
        == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST
    )
    for key in search_attributes.ALL:
        assert temporal.indexed_value_type(types[key.name]) == int(key.indexed_value_type)
