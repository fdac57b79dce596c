"""Keeps the parts of `make up` running, like a process manager: a part that dies is restarted
with exponential back-off (a line on the console and in its log each time) while the others
keep running; `halt()` ends the supervision so that everything can be stopped.

One thread per part watches its process and brings it back; restarts are health-gated (the
part's `wait`), the same checks as the first start. A part that stayed healthy for
`Backoff.stable_after` seconds before dying starts again at the shortest delay.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reelay.devstack.process import ManagedProcess, StackError

#: How often a watcher looks at its process.
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Part:
    """One process of the stack: `spawn` makes a new (unstarted) one, `wait` returns once it
    is healthy and raises StackError if it dies first or never gets there."""

    name: str
    label: str
    spawn: Callable[[], ManagedProcess]
    wait: Callable[[ManagedProcess], None]


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    stable_after: float = 30.0

    def delay(self, failures: int) -> float:
        """Seconds before restart number `failures + 1` of a crash loop."""
        return float(min(self.maximum, self.initial * self.factor**failures))


class _Halted(Exception):
    """The supervisor is halting: no new process may start."""


class Supervisor:
    """Starts `parts` in order, then keeps each one running until `halt()`."""

    def __init__(
        self,
        parts: Sequence[Part],
        *,
        announce: Callable[[str], None],
        backoff: Backoff = Backoff(),
    ) -> None:
        self.parts = list(parts)
        self._announce = announce
        self._backoff = backoff
        self._procs: dict[str, ManagedProcess] = {}
        self._lock = threading.Lock()
        self._halting = threading.Event()
        self._watchers: list[threading.Thread] = []

    def start(self, part: Part) -> ManagedProcess:
        """The first start of `part`, until healthy; StackError if it cannot get there."""
        proc = self._spawn(part)
        try:
            part.wait(proc)
        except BaseException:
            proc.stop()
            raise
        return proc

    def pids(self) -> dict[str, int | None]:
        with self._lock:
            return {name: proc.pid for name, proc in self._procs.items()}

    def process(self, name: str) -> ManagedProcess:
        """The current process of the part called `name`."""
        with self._lock:
            return self._procs[name]

    def watching(self) -> bool:
        """True while a watcher thread still runs (they end soon after `halt()`)."""
        return any(watcher.is_alive() for watcher in self._watchers)

    def watch(self) -> None:
        """From now on, restart any started part that dies."""
        for part in self.parts:
            if part.name in self._procs:
                watcher = threading.Thread(
                    target=self._keep_running, args=(part,), name=f"supervise-{part.name}"
                )
                watcher.daemon = True  # never keeps the interpreter alive
                watcher.start()
                self._watchers.append(watcher)

    def halt(self) -> list[ManagedProcess]:
        """Stop restarting; the processes, in reverse start order, for the caller to stop."""
        with self._lock:
            self._halting.set()
            return [self._procs[p.name] for p in reversed(self.parts) if p.name in self._procs]

    def _spawn(self, part: Part) -> ManagedProcess:
        with self._lock:
            if self._halting.is_set():
                raise _Halted
            proc = part.spawn().start()
            self._procs[part.name] = proc
            return proc

    def _report(self, proc: ManagedProcess, line: str) -> None:
        proc.note(line)
        self._announce(line)

    def _keep_running(self, part: Part) -> None:
        proc = self._procs[part.name]
        healthy_since: float | None = time.monotonic()
        failures = 0
        while not self._halting.wait(POLL_SECONDS):
            if proc.alive():
                continue
            if healthy_since is not None and time.monotonic() - healthy_since >= (
                self._backoff.stable_after
            ):
                failures = 0
            delay = self._backoff.delay(failures)
            failures += 1
            self._report(
                proc,
                f"{part.label} (pid {proc.pid}) exited ({proc.returncode}); "
                f"restart {failures} in {delay:g}s",
            )
            healthy_since = None
            if self._halting.wait(delay):
                return
            try:
                proc = self._spawn(part)
                part.wait(proc)
            except _Halted:
                return
            except StackError as exc:
                if self._halting.is_set():
                    return
                self._report(proc, f"{part.label} did not come back: {str(exc).splitlines()[0]}")
                proc.stop()
                continue
            healthy_since = time.monotonic()
            self._report(proc, f"{part.label} is back (pid {proc.pid})")
