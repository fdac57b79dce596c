"""`make up`'s engine (`python -m reelay.devstack up`) and its process-supervision helpers."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

import httpx
import pytest
from minio import Minio
from temporalio.client import Client

from reelay import devstack
from reelay.devstack import supervise
from reelay.settings import Settings
from tests.conftest import clean_env
from tests.support import pid_alive

STARTUP_TIMEOUT = 180.0
SHUTDOWN_TIMEOUT = 90.0


def _output(proc: devstack.ManagedProcess) -> list[str]:
    """The process's own log lines (without the `=== starting` header)."""
    return [line for line in proc.log_tail().splitlines() if line and not line.startswith("===")]


# --- supervision ----------------------------------------------------------------------------


def _http_part(name: str, logs: Path) -> supervise.Part:
    """A cheap real server: `python -m http.server` on a port of its own."""
    port = devstack.free_port()

    def spawn() -> devstack.ManagedProcess:
        args = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        return devstack.ManagedProcess(name, args, log_path=logs / f"{name}.log")

    def wait(proc: devstack.ManagedProcess) -> None:
        devstack.wait_for_http(f"http://127.0.0.1:{port}/", timeout=30, process=proc)

    return supervise.Part(name, name, spawn, wait)


def test_backoff_grows_to_its_cap() -> None:
    backoff = supervise.Backoff(initial=1, factor=2, maximum=30)
    assert [backoff.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_killed_part_is_restarted_and_healthy_while_the_others_keep_running(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    parts = [_http_part(name, tmp_path) for name in ("first", "second", "third")]
    supervisor = supervise.Supervisor(
        parts, announce=lines.append, backoff=supervise.Backoff(initial=0.1)
    )
    try:
        for part in parts:
            supervisor.start(part)
        supervisor.watch()
        before = supervisor.pids()
        victim = before["second"]
        assert victim is not None
        os.kill(victim, signal.SIGKILL)

        back = "second is back (pid "
        devstack.wait_until(lambda: any(back in line for line in lines), what="a restart")
        after = supervisor.pids()
        assert after["second"] not in (None, victim)
        assert lines == [
            f"second (pid {victim}) exited ({-signal.SIGKILL}); restart 1 in 0.1s",
            f"second is back (pid {after['second']})",
        ]
        # Healthy again (its wait passed; it answers now), the others untouched.
        parts[1].wait(supervisor.process("second"))
        assert {n: after[n] for n in ("first", "third")} == {
            n: before[n] for n in ("first", "third")
        }
        for name in ("first", "third"):
            pid = before[name]
            assert pid is not None and pid_alive(pid)
        log = (tmp_path / "second.log").read_text()
        assert lines[0] in log and lines[1] in log
    finally:
        for proc in supervisor.halt():
            proc.stop()
    for pid in supervisor.pids().values():
        assert pid is not None and not pid_alive(pid)


def test_a_crash_looping_part_backs_off_and_stops_when_halted(tmp_path: Path) -> None:
    # Healthy on its first start; every later process dies at once (the marker file exists).
    marker = tmp_path / "started-once"
    script = (
        "import os, pathlib, sys, time; m = pathlib.Path(sys.argv[1]); sys.exit(4) if m.exists() "
        "else (m.touch(), print(os.getpid(), flush=True), time.sleep(300))"
    )

    def spawn() -> devstack.ManagedProcess:
        args = [sys.executable, "-c", script, str(marker)]
        return devstack.ManagedProcess("looping", args, log_path=tmp_path / "looping.log")

    def wait(proc: devstack.ManagedProcess) -> None:
        up = str(proc.pid)  # the log file is shared by every process of the part
        devstack.wait_until(lambda: up in _output(proc), what="up", timeout=30, process=proc)

    lines: list[str] = []
    part = supervise.Part("looping", "looping", spawn, wait)
    supervisor = supervise.Supervisor(
        [part], announce=lines.append, backoff=supervise.Backoff(initial=0.05, maximum=0.2)
    )
    supervisor.start(part)
    supervisor.watch()
    first = supervisor.pids()["looping"]
    assert first is not None
    os.kill(first, signal.SIGKILL)
    devstack.wait_until(
        lambda: sum("restart" in line for line in lines) >= 4, what="four restarts", timeout=30
    )
    for proc in supervisor.halt():
        proc.stop()
    restarts = [line for line in lines if " in " in line and "restart" in line]
    assert restarts[0].endswith("restart 1 in 0.05s")
    assert restarts[1].endswith("restart 2 in 0.1s")
    assert restarts[2].endswith("restart 3 in 0.2s")
    assert restarts[3].endswith("restart 4 in 0.2s")  # capped
    assert any("did not come back" in line and "exited (4)" in line for line in lines)
    count = len(lines)
    devstack.wait_until(lambda: not supervisor.watching(), what="the watchers to end", timeout=10)
    assert len(lines) == count  # nothing restarted after the halt


# --- `python -m reelay.devstack up` ---------------------------------------------------------


class Stack:
    """A running `python -m reelay.devstack up`, its output collected line by line."""

    def __init__(self, env: dict[str, str], cwd: Path, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reelay.devstack", "up"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,  # a Ctrl-C on pytest must not reach it; we signal it ourselves
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def diagnostics(self) -> str:
        logs = []
        for log in sorted((self.data_dir / "logs").glob("*.log")):
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            logs.append(f"--- {log.name} ---\n{tail}")
        return f"--- devstack output ---\n{self.output}\n" + "\n".join(logs)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while devstack.READY_MARKER not in self.output:
            if self.proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"devstack exited ({self.proc.returncode})\n{self.diagnostics()}")
            if time.monotonic() > deadline:
                pytest.fail(f"not ready after {STARTUP_TIMEOUT:g}s\n{self.diagnostics()}")
            time.sleep(0.2)

    def started_pids(self) -> dict[str, int]:
        """Each part's pid as its start line printed it (`✓ <label> (pid N, 1.2s)`)."""
        started = re.compile(r"✓ (.+) \(pid (\d+), ")
        return {m.group(1): int(m.group(2)) for m in map(started.search, self.lines) if m}

    def wait_line(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """The first output line matching `pattern`, waiting for it (bounded)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := pattern.search(line):
                    return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"no line matching {pattern.pattern!r}\n{self.diagnostics()}")

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {SHUTDOWN_TIMEOUT:g}s after SIGINT\n{self.diagnostics()}")
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@contextmanager
def running_stack(env: dict[str, str], cwd: Path, data_dir: Path) -> Iterator[Stack]:
    stack = Stack(env, cwd, data_dir)
    try:
        yield stack
    finally:
        stack.kill()  # only if a failed assertion left it running
        _kill_leftovers(data_dir)


def _processes_mentioning(marker: str) -> list[int]:
    """Pids of live processes whose command line or environment contain `marker`."""
    found = []
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit() or int(proc_dir.name) == os.getpid():
            continue
        try:
            blob = (proc_dir / "cmdline").read_bytes() + (proc_dir / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob and pid_alive(int(proc_dir.name)):
            found.append(int(proc_dir.name))
    return found


def _kill_leftovers(data_dir: Path) -> None:
    for pid in _processes_mentioning(str(data_dir)):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _start_probe_workflow(address: str, workflow_id: str) -> None:
    client = await Client.connect(address)
    # No worker serves this type; the execution just has to exist in the database.
    await client.start_workflow("DevstackProbe", id=workflow_id, task_queue="devstack-probe")


async def _probe_workflow_exists(address: str, workflow_id: str) -> bool:
    client = await Client.connect(address)
    description = await client.get_workflow_handle(workflow_id).describe()
    return description.id == workflow_id


def test_up_starts_the_whole_stack_keeps_its_data_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    temporal_port, ui_port = devstack.free_port(), devstack.free_port()
    s3_port = devstack.free_port(with_grpc=True)
    emulator_port, api_port = devstack.free_port(), devstack.free_port()
    api = f"http://127.0.0.1:{api_port}"
    env = clean_env() | {
        "REELAY_DATA_DIR": str(data_dir),
        "REELAY_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "REELAY_TEMPORAL_UI_PORT": str(ui_port),
        "REELAY_S3_ENDPOINT": f"127.0.0.1:{s3_port}",
        "REELAY_EMULATOR_PORT": str(emulator_port),
        "REELAY_API_PORT": str(api_port),
        "REELAY_PUBLIC_URL": api,
        "REELAY_TASK_QUEUE": "devstack-test",
        "REELAY_EMULATOR_GENERATION_SECONDS": "1",
        "REELAY_EMULATOR_RENDER_SCALE": "8",
    }
    ports = [temporal_port, ui_port, s3_port, s3_port + 10000, emulator_port, api_port]
    defaults = Settings.model_fields
    s3 = Minio(
        f"127.0.0.1:{s3_port}",
        access_key=defaults["s3_access_key"].default,
        secret_key=defaults["s3_secret_key"].default.get_secret_value(),
        secure=False,
    )
    bucket = defaults["s3_bucket"].default
    workflow_id = "devstack-probe-1"

    # First run: everything comes up, answers, and stops on Ctrl-C with nothing left behind.
    with running_stack(env, tmp_path, data_dir) as stack:
        stack.wait_ready()
        assert httpx.get(f"{api}/healthz").status_code == 200
        assert httpx.get(f"{api}/readyz").status_code == 200
        ui = httpx.get(f"http://127.0.0.1:{ui_port}/")
        assert ui.status_code == 200, ui.text[:200]
        assert httpx.get(f"http://127.0.0.1:{emulator_port}/healthz").status_code == 200

        key = (data_dir / "dev_api_key").read_text().strip()
        assert key.startswith("rl_dev_")
        assert key in stack.output  # printed, with a curl example
        assert "curl" in stack.output
        assert f"{api}/docs" in stack.output
        # The API got the generated key: a job lookup is refused without it, accepted with it.
        lookup = f"{api}/v1/video/generations/no-such-job"
        assert httpx.get(lookup).status_code == 401
        authed = httpx.get(lookup, headers={"Authorization": f"Bearer {key}"})
        assert authed.status_code not in (401, 403), authed.text[:200]

        s3.put_object(bucket, "probe/persisted.txt", io.BytesIO(b"still here"), length=10)
        asyncio.run(_start_probe_workflow(f"127.0.0.1:{temporal_port}", workflow_id))

        # SIGKILL the worker: it alone is restarted (and polls again); the rest keep running.
        pids = stack.started_pids()
        assert set(pids) == {
            "Temporal dev server",
            "SeaweedFS (S3)",
            "provider emulator",
            "worker",
            "API",
        }
        os.kill(pids["worker"], signal.SIGKILL)
        back = stack.wait_line(re.compile(r"worker is back \(pid (\d+)\)"))
        assert int(back.group(1)) != pids["worker"]
        assert pid_alive(int(back.group(1)))
        assert f"worker (pid {pids['worker']}) exited (-9); restart 1 in 1s" in stack.output
        for label, pid in pids.items():
            if label != "worker":
                assert pid_alive(pid), label
        assert [line for line in stack.lines if "exited (" in line] == [
            line for line in stack.lines if f"worker (pid {pids['worker']}) exited" in line
        ]
        assert httpx.get(f"{api}/readyz").status_code == 200
        assert "worker is back" in (data_dir / "logs" / "worker.log").read_text()

        assert stack.interrupt() == 0, stack.diagnostics()
        assert "stopped temporal" in stack.output
    for port in ports:
        assert not devstack.port_is_open("127.0.0.1", port), f"port {port} still open"
    assert _processes_mentioning(str(data_dir)) == []
    for name in devstack.STACK_ORDER:
        assert (data_dir / "logs" / f"{name}.log").stat().st_size > 0
    # Temporal's database commits through a write-ahead log (`temporal.SQLITE_PRAGMAS`).
    with closing(sqlite3.connect(data_dir / "temporal.db")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    # Second run on the same data dir: same key, same objects, same workflow history.
    with running_stack(env, tmp_path, data_dir) as stack:
        stack.wait_ready()
        assert (data_dir / "dev_api_key").read_text().strip() == key
        assert key in stack.output
        assert s3.get_object(bucket, "probe/persisted.txt").read() == b"still here"
        assert asyncio.run(_probe_workflow_exists(f"127.0.0.1:{temporal_port}", workflow_id))
        assert stack.interrupt() == 0, stack.diagnostics()
    for port in ports:
        assert not devstack.port_is_open("127.0.0.1", port), f"port {port} still open"
    assert _processes_mentioning(str(data_dir)) == []


# --- an ephemeral stack (the benchmarks' and the history recorder's) ------------------------

HOLD_STACK = """
import sys, time
from pathlib import Path
from reelay.devstack import ephemeral_stack
with ephemeral_stack(Path(sys.argv[1]), app=False):
    print("up", flush=True)
    time.sleep(600)
"""


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found += [child]
            todo.append(child)
    return found


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=str)
def test_a_tool_holding_an_ephemeral_stack_stops_it_when_told_to_stop(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """Ctrl-C, `kill` or `timeout`, a closed terminal: the tool's stack goes with it (its
    processes run in sessions of their own, out of reach of the terminal's signals)."""
    tool = subprocess.Popen(
        [sys.executable, "-c", HOLD_STACK, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    held: list[int] = []
    try:
        assert tool.stdout is not None
        assert tool.stdout.readline().strip() == "up"
        held += _descendants(tool.pid)
        assert len(held) >= 3  # temporal, s3, emulator
        tool.send_signal(stop)
        tool.send_signal(stop)  # a second signal does not cut the stopping short
        tool.wait(SHUTDOWN_TIMEOUT)
        assert [pid for pid in held if pid_alive(pid)] == []
    finally:
        tool.kill()
        for pid in held:  # only if the stack outlived the tool
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
