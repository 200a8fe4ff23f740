"""structlog setup: one pipeline for our logs and the libraries' (hikari, saq, aiohttp, litellm).

Correlation ids (request_id, job_id, personality, channel_id, user_id) live in contextvars, so
every record written inside a request or job carries them. Secrets are redacted on the way out
by tzurot.redaction (values, exception tracebacks and library records alike).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from tzurot.redaction import REDACTED, Redactor, SecretRedactor, redactor

__all__ = [
    "REDACTED",
    "Redactor",
    "SecretRedactor",
    "configure_logging",
    "current_context",
    "get_logger",
    "log_context",
    "redactor",
]

_LIBRARY_LOGGERS = ("hikari", "lightbulb", "saq", "aiohttp", "LiteLLM", "litellm", "httpx")
# Keys the pipeline itself writes (from the clock, the level and the logger's name): nothing
# to mask there, and skipping them keeps redaction cheap.
_PIPELINE_KEYS = frozenset({"timestamp", "level", "logger"})


def _render_exceptions_then_redact(
    logger: WrappedLogger, method: str, event_dict: EventDict
) -> EventDict:
    """Render exc_info (structlog's and the standard library records') to text, then mask
    every value: the traceback is plain text by the time any renderer sees it, in both formats,
    so neither a renderer's own exception formatting nor a repr can show a secret."""
    event_dict = structlog.processors.format_exc_info(logger, method, event_dict)
    return {
        key: value
        if key in _PIPELINE_KEYS and isinstance(value, str)
        else redactor.redact_item(key, value)
        for key, value in event_dict.items()
    }


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """A last look at the rendered line for the registered secret values (cheap), in case a
    renderer produced text the per-value pass did not see."""

    def format(self, record: logging.LogRecord) -> str:
        return redactor.redact_known(super().format(record))


class _RedactingHandler(logging.StreamHandler[TextIO]):
    def handleError(self, record: logging.LogRecord) -> None:
        # The standard library would print the raw message and its arguments to stderr.
        try:
            kind, exc, _ = sys.exc_info()
            detail = redactor.redact(f"{kind.__name__ if kind else 'error'}: {exc}")
            sys.stderr.write(f"--- logging error in {record.name}: {detail}\n")
        except Exception:  # noqa: S110 - there is nowhere left to report it
            pass


def _install_uncaught_hooks() -> None:
    """Exceptions nobody caught (main thread, other threads, __del__/finalizers) and warnings
    go through the pipeline instead of Python's raw stderr printing."""
    crash = logging.getLogger("tzurot.uncaught")

    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        crash.critical("uncaught exception", exc_info=(kind, exc, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "?"
        crash.error(
            "uncaught exception in thread %s",
            name,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    def unraisablehook(unraisable: Any) -> None:
        exc = unraisable.exc_value
        info = (type(exc), exc, unraisable.exc_traceback) if exc is not None else None
        crash.error(
            "unraisable exception: %s",
            unraisable.err_msg or "Exception ignored in",
            exc_info=info,
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    sys.unraisablehook = unraisablehook
    logging.captureWarnings(True)


def configure_logging(
    level: str = "INFO",
    fmt: str = "json",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Route structlog and the standard library through one pipeline to stdout, redacted.

    Writing to the process's stdout (no `stream`), uncaught exceptions and warnings are routed
    through the pipeline as well.
    """
    redactor.add(secrets)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = _RedactingFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _render_exceptions_then_redact,
            renderer,
        ],
    )
    handler = _RedactingHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _LIBRARY_LOGGERS:
        library_logger = logging.getLogger(name)
        library_logger.handlers[:] = []
        library_logger.propagate = True
    # litellm and httpx are chatty at INFO (one line per call); keep their warnings.
    for name in ("LiteLLM", "litellm", "httpx", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # SAQ logs every job's enqueue, start and end at INFO with its arguments: users' messages.
    # Those never belong in a log (and cost CPU on every job); its warnings and errors stay.
    saq_logger = logging.getLogger("saq")
    saq_logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _AbridgedJobs) for f in saq_logger.filters):
        saq_logger.addFilter(_AbridgedJobs())
    if stream is None:
        _install_uncaught_hooks()


class _AbridgedJobs(logging.Filter):
    """SAQ's errors name the job with all its arguments (a memory write's payload holds what a
    user said): it is named by function, key and run instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_abridged(arg) for arg in record.args)
        return True


def _abridged(value: Any) -> Any:
    key, function = getattr(value, "key", None), getattr(value, "function", None)
    if isinstance(key, str) and isinstance(function, str) and hasattr(value, "kwargs"):
        return f"Job<{function} {key} run {getattr(value, 'attempts', '?')}>"
    return value


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Bind correlation ids for everything logged inside the block (and its tasks)."""
    present = {k: v for k, v in ids.items() if v is not None}
    tokens = structlog.contextvars.bind_contextvars(**present)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def current_context() -> MutableMapping[str, Any]:
    return structlog.contextvars.get_contextvars()
