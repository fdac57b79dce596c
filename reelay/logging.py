"""structlog set-up shared by the API, the worker and the emulator.

Logging must stay cheap under a flood of errors: tracebacks are rendered as plain, bounded
structured data (no locals, at most `MAX_FRAMES` frames), every line is capped at
`MAX_LINE_CHARS`, and the writing happens on a background thread (a `QueueListener`), never
on the event loop.

structlog's own events and the standard library's records (Temporal's workflow and activity
loggers, uvicorn) go through the same processors, so every line is JSON with `log_json`, and
carries the correlation fields bound in the context (`job_id`, `tenant`, `request_id`,
`provider`: `reelay.tracing.job_context`); a Temporal workflow's or activity's record gets
its `job_id` and `workflow_id` from the logger's own `temporal_workflow`/`temporal_activity`
extra, and any of `CORRELATION_FIELDS` passed as `extra=` (workflow code has no context of
its own: `workflow.logger.warning(..., extra={"provider": ...})`). Records are rendered in
the thread that logs (where the context is), written on the background thread.

No line carries a credential from a URL: uvicorn's access line has the values of
`SECRET_QUERY_PARAMS` redacted (a signed download link's `signature`, `api.signing`), and
httpx's line per request (its URL: a provider's signed output URL among them) is not
written below WARNING; each provider call is in the metrics and the traces instead.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

import structlog

from reelay.settings import Settings
from reelay.tracing import job_id_of

MAX_FRAMES = 12
#: Fields a standard-library record may carry in its `extra` (e.g. from `workflow.logger`).
CORRELATION_FIELDS = ("job_id", "tenant", "request_id", "provider", "model")
MAX_LINE_CHARS = 16_000
#: Query parameters whose values are credentials: a signed link's (`api.signing`), and those
#: of presigned S3 and Google Cloud Storage URLs and of the providers' signed CDN URLs.
SECRET_QUERY_PARAMS = frozenset(
    {
        "signature",
        "sig",
        "token",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
    }
)
REDACTED = "REDACTED"
#: Loggers held at WARNING whatever the level: httpx's INFO line per request names its URL.
QUIET_LOGGERS = ("httpx",)

_listener: logging.handlers.QueueListener | None = None


def _cap(_: Any, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    """Cut long values (messages, exception texts) so no single line grows without bound."""
    for key, value in event_dict.items():
        if isinstance(value, str) and len(value) > MAX_LINE_CHARS:
            event_dict[key] = value[:MAX_LINE_CHARS] + "...[truncated]"
    return event_dict


def _temporal_context(
    _: Any, __: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """A Temporal workflow's or activity's record: its job and workflow ids (from the extra
    Temporal's `workflow.logger` and `activity.logger` attach)."""
    record = event_dict.get("_record")
    for extra in ("temporal_workflow", "temporal_activity"):
        info = getattr(record, extra, None)
        if isinstance(info, dict) and isinstance(info.get("workflow_id"), str):
            event_dict.setdefault("job_id", job_id_of(info["workflow_id"]))
            event_dict.setdefault("workflow_id", info["workflow_id"])
            break
    return event_dict


def _exception_text(
    _: Any, __: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """For the console: the bounded exception data as a short traceback text."""
    exception = event_dict.get("exception")
    if isinstance(exception, list):
        event_dict["exception"] = "\n".join(
            f"{error.get('exc_type')}: {error.get('exc_value')}"
            + "".join(
                f"\n  {frame.get('filename')}:{frame.get('lineno')} in {frame.get('name')}"
                for frame in error.get("frames", [])
            )
            for error in exception
        )
    return event_dict


def redact_query(target: str) -> str:
    """`target` (a path or URL) with the value of each of `SECRET_QUERY_PARAMS` redacted."""
    path, question, query = target.partition("?")
    if not question:
        return target
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.lower() in SECRET_QUERY_PARAMS for name, _ in pairs):
        return target
    kept = [(n, REDACTED if n.lower() in SECRET_QUERY_PARAMS else v) for n, v in pairs]
    return f"{path}?{urlencode(kept)}"


class _RedactedAccess(logging.Filter):
    """uvicorn's access line (`'%s - "%s %s HTTP/%s" %d'`: client, method, target, version,
    status) with the target's credentials redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def _keep_credentials_out() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactedAccess) for f in access.filters):
        access.addFilter(_RedactedAccess())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _background_root(level: int, stream: TextIO, formatter: logging.Formatter) -> None:
    """The root logger renders with `formatter` where a record is made, then writes it
    through a queue to `stream` on a thread of its own."""
    global _listener
    shutdown_logging()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = logging.StreamHandler(stream)
    writer.setFormatter(logging.Formatter("%(message)s"))
    _listener = logging.handlers.QueueListener(records, writer, respect_handler_level=False)
    _listener.start()
    atexit.register(shutdown_logging)
    handler = logging.handlers.QueueHandler(records)
    handler.setFormatter(formatter)  # QueueHandler.prepare formats: in the logging thread
    root = logging.getLogger()
    root.handlers = [handler]
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
    renderers: list[structlog.types.Processor] = (
        [structlog.processors.JSONRenderer()]
        if settings.log_json
        else [
            _exception_text,
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            ),
        ]
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *shared,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(allow=CORRELATION_FIELDS),
            _temporal_context,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(
                    show_locals=False, max_frames=MAX_FRAMES, use_rich=False
                )
            ),
            _cap,
            *renderers,
        ],
    )
    _background_root(level, stream or sys.stderr, formatter)
    _keep_credentials_out()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
