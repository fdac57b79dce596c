"""One managed child process: its own process group, a log file, a clean stop."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType


class StackError(RuntimeError):
    """A managed process failed to start, died, or did not become healthy in time."""


class StackTimeout(StackError, TimeoutError):
    """A bounded wait ran out of time."""


class ManagedProcess:
    """One child process in its own process group (session), logging to a file.

    `stop()` sends SIGTERM to the whole group and SIGKILL after `grace` seconds; `kill()` sends
    SIGKILL at once. Either way nothing of the group is left running afterwards.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.args = [str(a) for a in args]
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "not started" if self._popen is None else f"pid={self._popen.pid}"
        return f"<ManagedProcess {self.name} {state}>"

    def start(self) -> ManagedProcess:
        if self._popen is not None:
            raise StackError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            stamp = datetime.now().isoformat(timespec="seconds")
            log.write(f"\n=== {stamp} starting {self.name}: {shlex.join(self.args)}\n".encode())
            log.flush()
            try:
                self._popen = subprocess.Popen(
                    self.args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,  # own process group: Ctrl-C is ours to forward
                )
            except OSError as exc:
                raise StackError(f"cannot start {self.name}: {exc}") from exc
        return self

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def note(self, text: str) -> None:
        """Append a stamped `=== ...` line of our own to the process's log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().isoformat(timespec="seconds")
        with open(self.log_path, "ab") as log:
            log.write(f"=== {stamp} {text}\n".encode())

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 64 * 1024))
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def describe_failure(self, what: str) -> str:
        tail = self.log_tail()
        msg = f"{self.name} {what}; log: {self.log_path}"
        return f"{msg}\n--- last lines of {self.log_path.name} ---\n{tail}" if tail else msg

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the group, SIGKILL it after `grace` seconds; returns the exit code."""
        proc = self._popen
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait()
        self._signal_group(signal.SIGKILL)  # whatever the leader left behind in its group
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole group at once (a crash, as far as the process can tell)."""
        if self._popen is None:
            return
        self._signal_group(signal.SIGKILL)
        self._popen.wait()

    def __enter__(self) -> ManagedProcess:
        return self if self._popen is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
