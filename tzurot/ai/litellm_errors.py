"""Turning a failed litellm call's exception into a ProviderError (category, message, retry-after).

Imports litellm, openai and httpx, so only the provider imports it (after litellm is loaded);
the categories and `ProviderError` themselves live in the pure `tzurot.ai.errors`.

litellm 1.110 facts this relies on (checked against a real OpenAI-compatible server):
- HTTP failures carry `status_code`, and the upstream headers are on `litellm_response_headers`
  and `response.headers` (never on `.headers`, which litellm leaves `None` for vendor errors).
- 402 and 403 arrive as a generic `litellm.APIError` with that `status_code`.
- Timeouts are `litellm.Timeout` (status 408, not an HTTP answer).
- A refused connection and a non-JSON 200 body both arrive as `InternalServerError` with status
  500; only the exception chain (`httpx.ConnectError` under it) tells a network failure apart.

Anything that is neither an HTTP answer nor a timeout/connection failure is `bad_request`: it is
a local, deterministic failure (bad parameters, a bug), and retrying the same call cannot help.
"""

from __future__ import annotations

import email.utils
import math
import re
import socket
import time
from collections.abc import Iterable, Iterator, Mapping

import aiohttp
import httpx
import openai
from litellm.exceptions import ContentPolicyViolationError, ContextWindowExceededError

from tzurot.ai.errors import ErrorCategory, ProviderError, redact, shorten, summary

__all__ = ["classify"]

# --- classification ----------------------------------------------------------------------------

_TIMEOUT_TYPES = (TimeoutError, openai.APITimeoutError, httpx.TimeoutException)
_CONNECTION_TYPES = (
    httpx.TransportError,
    aiohttp.ClientConnectionError,
    ConnectionError,
    socket.gaierror,
)
_QUOTA_WORDING = re.compile(
    r"insufficient[ _](credit|quota|balance|funds)|exceeded your current quota"
    r"|credit balance is too low|out of credits|requires more credits",
    re.IGNORECASE,
)
# "litellm.BadRequestError: ContentPolicyViolationError: OpenAIException - real message"
_LITELLM_PREFIX = re.compile(
    r"^(?:(?:litellm\.)?[A-Za-z]*(?:Error|Exception|Timeout)\s*(?::|-)\s*)+"
)


def classify(exc: BaseException, *, secrets: Iterable[str] = ()) -> ProviderError:
    """Map a failed call's exception (litellm, openai, httpx, asyncio) to a ProviderError."""
    if isinstance(exc, ProviderError):
        return exc
    secrets = tuple(secrets)
    chain = list(_chain(exc))
    status = _status_code(exc)
    detail = _detail(exc)

    if any(isinstance(e, _TIMEOUT_TYPES) for e in chain):
        category = ErrorCategory.TIMEOUT
        status = None
    elif any(_is_connection_error(e) for e in chain):
        category = ErrorCategory.NETWORK
        status = None
    elif status is not None:
        category = _category_for_status(exc, status, detail)
    else:
        category = ErrorCategory.BAD_REQUEST

    message = summary(category)
    if detail and category not in {ErrorCategory.TIMEOUT, ErrorCategory.NETWORK}:
        message = f"{message} ({shorten(redact(detail, secrets))})"
    return ProviderError(
        category, message, status_code=status, retry_after=_retry_after(chain, time.time())
    )


def _category_for_status(exc: BaseException, status: int, detail: str) -> ErrorCategory:
    if isinstance(exc, ContextWindowExceededError):
        return ErrorCategory.CONTEXT_WINDOW
    if isinstance(exc, ContentPolicyViolationError):
        return ErrorCategory.CONTENT_POLICY
    if status == 402 or _QUOTA_WORDING.search(detail):
        return ErrorCategory.QUOTA_EXCEEDED
    by_status = {
        401: ErrorCategory.AUTHENTICATION,
        403: ErrorCategory.CONTENT_POLICY,
        404: ErrorCategory.MODEL_NOT_FOUND,
        408: ErrorCategory.TIMEOUT,
        429: ErrorCategory.RATE_LIMIT,
    }
    if status in by_status:
        return by_status[status]
    if status >= 500:
        return ErrorCategory.SERVER_ERROR
    return ErrorCategory.BAD_REQUEST


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_connection_error(exc: BaseException) -> bool:
    # litellm's own APIConnectionError subclass also wraps unrelated failures, so only the
    # OpenAI SDK's exact class (raised when no HTTP answer came) counts as a network failure.
    return isinstance(exc, _CONNECTION_TYPES) or type(exc) is openai.APIConnectionError


def _status_code(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        response = getattr(exc, "response", None)
        status = response.status_code if isinstance(response, httpx.Response) else None
    return status if isinstance(status, int) and 100 <= status <= 599 else None


def _detail(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error")
        message = inner.get("message") if isinstance(inner, Mapping) else body.get("message")
        if isinstance(message, str) and message.strip():
            return message.strip()
    raw = getattr(exc, "message", None)
    text = raw if isinstance(raw, str) else str(exc)
    return _LITELLM_PREFIX.sub("", text.strip()).strip()


# --- retry-after -------------------------------------------------------------------------------

_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?"
    r"(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+(?:\.\d+)?)ms)?$"
)


def _headers(chain: Iterable[BaseException]) -> dict[str, str]:
    """The upstream response headers, lower-cased, from wherever litellm left them."""
    for exc in chain:
        for source in (
            getattr(exc, "litellm_response_headers", None),
            getattr(getattr(exc, "response", None), "headers", None),
            getattr(exc, "headers", None),
        ):
            if isinstance(source, (Mapping, httpx.Headers)) and source:
                return {str(k).lower(): str(v) for k, v in source.items()}
    return {}


def _retry_after(chain: Iterable[BaseException], now: float) -> float | None:
    headers = _headers(chain)
    if "retry-after-ms" in headers:
        value = _number(headers["retry-after-ms"])
        if value is not None:
            return max(0.0, value / 1000)
    if "retry-after" in headers:
        value = _number(headers["retry-after"])
        if value is None:
            value = _http_date(headers["retry-after"], now)
        if value is not None:
            return max(0.0, value)
    for name in ("x-ratelimit-reset", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        if name in headers:
            value = _reset_value(headers[name], now)
            if value is not None:
                return max(0.0, value)
    return None


def _reset_value(raw: str, now: float) -> float | None:
    """Seconds until a reset given as epoch ms/s, a delta in seconds, or a duration ("1m30s")."""
    number = _number(raw)
    if number is not None:
        if number > 1e12:
            return number / 1000 - now
        if number > 1e9:
            return number - now
        return number
    match = _DURATION.match(raw.strip())
    if match and any(match.groupdict().values()):
        parts = {k: float(v) for k, v in match.groupdict().items() if v}
        return (
            parts.get("h", 0) * 3600
            + parts.get("m", 0) * 60
            + parts.get("s", 0)
            + parts.get("ms", 0) / 1000
        )
    return _http_date(raw, now)


def _number(raw: str) -> float | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _http_date(raw: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp() - now
