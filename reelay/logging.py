"""structlog set-up shared by the API, the worker and the emulator.

Logging must stay cheap under a flood of errors: tracebacks are rendered as plain, bounded
structured data (no locals, at most `MAX_FRAMES` frames), every line is capped at
`MAX_LINE_CHARS`, and the writing happens on a background thread (a `QueueListener`), never
on the event loop.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
from typing import Any, TextIO

import structlog

from reelay.settings import Settings

MAX_FRAMES = 12
MAX_LINE_CHARS = 16_000

_listener: logging.handlers.QueueListener | None = None


def _cap(_: Any, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    """Cut long values (messages, exception texts) so no single line grows without bound."""
    for key, value in event_dict.items():
        if isinstance(value, str) and len(value) > MAX_LINE_CHARS:
            event_dict[key] = value[:MAX_LINE_CHARS] + "...[truncated]"
    return event_dict


def _background_root(level: int, stream: TextIO) -> None:
    """The root logger writes through a queue to `stream` on a thread of its own."""
    global _listener
    shutdown_logging()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = logging.StreamHandler(stream)
    writer.setFormatter(logging.Formatter("%(message)s"))
    _listener = logging.handlers.QueueListener(records, writer, respect_handler_level=False)
    _listener.start()
    atexit.register(shutdown_logging)
    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(records)]
    root.setLevel(level)


def shutdown_logging() -> None:
    """Write out what is queued and stop the writer thread."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Logs to `stream` (stderr by default), JSON when `log_json`."""
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    _background_root(level, stream or sys.stderr)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(
                    show_locals=False, max_frames=MAX_FRAMES, use_rich=False
                )
            ),
            _cap,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
