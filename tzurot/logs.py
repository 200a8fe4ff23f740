"""structlog setup: one pipeline for our logs and the libraries' (hikari, saq, aiohttp, litellm).

Correlation ids (request_id, job_id, personality, channel_id, user_id) live in contextvars, so
every record written inside a request or job carries them. Secrets are redacted on the way out.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"

# Token shapes worth masking even when we were not told the value: provider keys, bearer
# tokens, Discord bot tokens, and passwords inside URLs.
_SECRET_PATTERNS = [
    re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_\-]{12,}"),
    re.compile(r"(?i)\b(bearer|bot)\s+[A-Za-z0-9._\-]{16,}"),
    re.compile(r"\b[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{20,}\b"),
    re.compile(r"(?<=://)([^/\s:@]*):([^@\s/]+)@"),
]

_LIBRARY_LOGGERS = ("hikari", "lightbulb", "saq", "aiohttp", "LiteLLM", "litellm", "httpx")


class SecretRedactor:
    """A structlog processor that masks known secret values and token-shaped strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            if secret and secret not in self._secrets:
                self._secrets.append(secret)
        self._secrets.sort(key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(_mask_match, text)
        return text

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._scrub(v) for v in value)
        if isinstance(value, BaseException):
            return self.redact(repr(value))
        return value

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        return {key: self._scrub(value) for key, value in event_dict.items()}


def _mask_match(match: re.Match[str]) -> str:
    if match.re.pattern.startswith("(?<=://)"):
        return f"{match.group(1)}:{REDACTED}@"
    return REDACTED


redactor = SecretRedactor()


def _render_exception_then_redact(
    logger: WrappedLogger, method: str, event_dict: EventDict
) -> EventDict:
    # Tracebacks are rendered to text before redaction so that secrets inside them are masked too.
    event_dict = structlog.processors.format_exc_info(logger, method, event_dict)
    return redactor(logger, method, event_dict)


def configure_logging(
    level: str = "INFO",
    fmt: str = "json",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Route structlog and the standard library through one pipeline to stdout."""
    redactor.add(secrets)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        finalize: list[Processor] = [redactor]
    else:
        renderer = structlog.processors.JSONRenderer()
        finalize = [_render_exception_then_redact]

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
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *finalize,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
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
