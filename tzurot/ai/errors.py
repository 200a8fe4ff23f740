"""Provider failures sorted into the categories the bot acts on: retry or not, what to tell users.

Pure on purpose: the job queue imports `ProviderError` and the categories, and must not pay for
litellm (seconds to import). Turning a litellm/openai/httpx exception into a `ProviderError` is
`tzurot.ai.litellm_errors.classify`, imported only by the code that calls litellm.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

MAX_DETAIL_CHARS = 300


class ErrorCategory(StrEnum):
    AUTHENTICATION = "authentication"
    QUOTA_EXCEEDED = "quota_exceeded"
    CONTENT_POLICY = "content_policy"
    MODEL_NOT_FOUND = "model_not_found"
    BAD_REQUEST = "bad_request"
    CONTEXT_WINDOW = "context_window"
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    NETWORK = "network"
    EMPTY_RESPONSE = "empty_response"
    # Users' own keys (BYOK): the provider refused the key the user added; or nobody (user,
    # operator, guest models) has credentials for the model's provider.
    USER_KEY_REJECTED = "user_key_rejected"
    NO_API_KEY = "no_api_key"


RETRYABLE: frozenset[ErrorCategory] = frozenset(
    {
        ErrorCategory.RATE_LIMIT,
        ErrorCategory.SERVER_ERROR,
        ErrorCategory.TIMEOUT,
        ErrorCategory.NETWORK,
        ErrorCategory.EMPTY_RESPONSE,
    }
)

_SUMMARY = {
    ErrorCategory.AUTHENTICATION: "The model provider rejected the API key.",
    ErrorCategory.QUOTA_EXCEEDED: "The API key has run out of credits or quota.",
    ErrorCategory.CONTENT_POLICY: "The provider refused the request (content policy).",
    ErrorCategory.MODEL_NOT_FOUND: "The model was not found at the provider.",
    ErrorCategory.BAD_REQUEST: "The model provider rejected the request.",
    ErrorCategory.CONTEXT_WINDOW: "The conversation is too long for the model's context window.",
    ErrorCategory.RATE_LIMIT: "The model provider is rate limiting requests.",
    ErrorCategory.SERVER_ERROR: "The model provider had an internal error.",
    ErrorCategory.TIMEOUT: "The model provider did not answer in time.",
    ErrorCategory.NETWORK: "Could not reach the model provider.",
    ErrorCategory.EMPTY_RESPONSE: "The model returned an empty reply.",
    ErrorCategory.USER_KEY_REJECTED: "The provider rejected the user's own API key.",
    ErrorCategory.NO_API_KEY: "No API key is set up for the model's provider.",
}


def summary(category: ErrorCategory) -> str:
    """The short, user-safe sentence for a category."""
    return _SUMMARY[category]


class ProviderError(Exception):
    """A failed model call. `message` is short and safe to show a user (secrets redacted)."""

    def __init__(
        self,
        category: ErrorCategory,
        message: str | None = None,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.category = ErrorCategory(category)
        self.message = message or _SUMMARY[self.category]
        self.status_code = status_code
        self.retry_after = retry_after
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        return self.category in RETRYABLE

    def __str__(self) -> str:
        return f"{self.category}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"ProviderError(category={self.category.value!r}, message={self.message!r}, "
            f"status_code={self.status_code!r}, retry_after={self.retry_after!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments would be lost by the default exception pickling.
        return (_rebuild, (self.category.value, self.message, self.status_code, self.retry_after))


def _rebuild(
    category: str, message: str, status_code: int | None, retry_after: float | None
) -> ProviderError:
    return ProviderError(
        ErrorCategory(category), message, status_code=status_code, retry_after=retry_after
    )


# --- redaction ---------------------------------------------------------------------------------

_REDACTED = "[redacted]"
_SECRET_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-*.]{4,}"),  # OpenAI, OpenRouter, Anthropic keys, masked or not
    re.compile(r"\bBearer\s+[^\s\"',;]+", re.IGNORECASE),
    re.compile(
        r"\b(api[_-]?key|x-api-key|authorization|access[_-]?token|secret)(\s*[:=]\s*)[\"']?[^\s\"',;}]+",
        re.IGNORECASE,
    ),
    re.compile(r"\b(?:AIza|gsk_|xai-|r8_)[A-Za-z0-9_\-]{16,}"),  # Google, Groq, xAI, Replicate
    # Any long opaque token mixing letters and digits (keys of providers not listed above).
    re.compile(r"\b(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{32,}\b"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove API keys, bearer tokens and the given literal secrets from `text`."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_redact_match, text)
    return text


def _redact_match(match: re.Match[str]) -> str:
    # Keep "api_key=" and the like so the message still says what was wrong.
    if match.lastindex and match.lastindex >= 2:
        return f"{match.group(1)}{match.group(2)}{_REDACTED}"
    return _REDACTED


def shorten(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """Collapse whitespace and cut `text` to `limit` characters (with an ellipsis)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
