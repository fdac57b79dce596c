"""Callback delivery: when a task that asked for a callback ends, POST to its URL at once.

Each protocol says what to send (`build`: body and headers, signed as the provider signs);
this module waits for the task's end in the background, so a gateway polling slowly still
learns immediately, and retries non-2xx answers and connection errors a few times.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from emulator.tasks import Task

log = logging.getLogger(__name__)
BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class Delivery:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


Builder = Callable[["Task"], Delivery | None]


class CallbackSender:
    def __init__(self, *, attempts: int) -> None:
        self._attempts = attempts
        self._pending: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def schedule(self, task: Task, build: Builder) -> None:
        """Deliver `build(task)` to `task.callback_url` when the task ends (None: send nothing).

        `build` runs once per attempt, so signatures carry a fresh timestamp."""
        job = asyncio.get_running_loop().create_task(self._deliver(task, build))
        self._pending.add(job)
        job.add_done_callback(self._pending.discard)

    async def _deliver(self, task: Task, build: Builder) -> None:
        # Task state follows the wall clock (no event marks the end): sleep toward it.
        while True:
            if task.terminal:
                break
            await asyncio.sleep(min(0.5, max(0.05, task.ends_at - time.time())))
        for attempt in range(self._attempts):
            delivery = build(task)
            if delivery is None or task.callback_url is None:
                return
            task.callback_attempts += 1
            try:
                response = await self._http().post(
                    task.callback_url,
                    content=delivery.body,
                    headers={"Content-Type": "application/json", **delivery.headers},
                )
                if response.is_success:
                    task.callback_delivered = True
                    return
                log.info("callback for %s answered %s", task.id, response.status_code)
            except httpx.HTTPError as exc:
                log.info("callback for %s failed: %r", task.id, exc)
            await asyncio.sleep(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)])

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0)
        return self._client

    def cancel_all(self) -> None:
        for job in list(self._pending):
            job.cancel()

    async def aclose(self) -> None:
        self.cancel_all()
        if self._client is not None:
            await self._client.aclose()
