"""The one place that decides what a secret looks like and masks it, for the whole program.

Everything that leaves the process as text (log lines, tracebacks, error messages shown to
users or stored in Redis) should pass through `redact()` / `redactor`. It masks:

- registered secret values (the settings' tokens and keys, plus values registered at runtime,
  such as a webhook token learned from Discord), also percent-, JSON- and repr-escaped;
- Discord webhook and interaction URL tokens in any form: full URLs, hikari route strings
  (``POST /webhooks/{id}/{token}``), bare paths, percent-encoded or JSON-escaped slashes, and
  hikari's rate-limit bucket keys (``{webhook_id}:{token}``);
- Discord bot tokens, interaction tokens by their shape, ``Authorization`` headers and
  ``Bearer``/``Bot`` credentials, provider API keys (``sk-...``, ``gsk_...``, ``AIza...``, ...),
  passwords inside URLs (``redis://:pw@host``), ``token=...``-style pairs and secret query
  parameters;
- the same inside nested dicts/lists/tuples, exception reprs and rendered tracebacks.

It is built for the hot path (every log line): patterns are precompiled, each one runs only if
a cheap substring test says it could match, and none can backtrack quadratically.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"

# Shorter values would mask ordinary words; the settings refuse such secrets anyway.
MIN_SECRET_CHARS = 4
# Values registered at runtime (webhook / interaction tokens) are kept up to this many, oldest
# forgotten first; secrets given through `add` (configuration) are always kept. Every string
# is checked against each value (a substring test, ~30 ns), so this bounds the cost too.
MAX_RUNTIME_SECRETS = 256
_MAX_DEPTH = 16

Replacement = Callable[[re.Match[str]], str]


@dataclass(frozen=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]
    replace: Replacement
    # Cheap tests that must pass before `pattern` runs: one of `triggers` (lower-case
    # substrings) is in the lower-cased text, and `prefilter` (a pattern starting with a
    # literal, which the regex engine scans for quickly) finds something. Texts shorter than
    # `min_chars` cannot hold a match.
    triggers: tuple[str, ...] = ()
    prefilter: re.Pattern[str] | None = None
    min_chars: int = 8


def _keep(*groups: int) -> Replacement:
    """Replacement keeping the given groups in front of the mask ("webhooks/123/" + mask)."""

    def replace(match: re.Match[str]) -> str:
        return "".join(match.group(g) or "" for g in groups) + REDACTED

    return replace


def _whole(_match: re.Match[str]) -> str:
    return REDACTED


def _authorization(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    return match.group("head") + (f"{scheme} " if scheme else "") + REDACTED


def _userinfo(match: re.Match[str]) -> str:
    return f"://{match.group('user')}:{REDACTED}@"


# A path separator: "/", JSON's "\/", or "/" percent-encoded once or twice.
_SEP = r"(?:\\?/|%2[Ff]|%252[Ff])"
# A URL path segment holding a token: anything up to the next separator, query, quote or space
# (an escape other than an encoded "/" belongs to the segment).
_SEGMENT = r"(?:[^/\\\s?#&'\"<>%{}|^`\[\](),;]|%(?!2[Ff]|252[Ff]))+"
_WORD = r"A-Za-z0-9_\-"
_NOT_AFTER_WORD = r"(?<![\w\-])"
# The names of secrets (not one).
_SECRET_WORDS = "|".join(
    (
        r"token", r"secret", r"password", r"passwd", r"pwd", r"api[_\-]?key", r"apikey",
        r"signing[_\-]?key", r"encryption[_\-]?key", r"private[_\-]?key", r"credentials?",
    )
)  # fmt: skip
# Lower-cased substrings one of which every key matching _SECRET_WORDS contains.
_SECRET_WORD_TRIGGERS = (
    "token", "secret", "passw", "pwd", "apikey", "api_key", "api-key", "signing",
    "encryption", "private", "credential",
)  # fmt: skip
_VALUE_STOP = r"\s'\"\\,;)}\]&"

# Substrings (lower-cased) at least one of which every provider key contains.
_PROVIDER_PREFIXES = (
    "sk-", "sk_", "rk-", "rk_", "pk-", "pk_", "xai-", "hf_", "r8_", "gh", "glpat-", "xox",
    "pplx-", "nvapi-", "fw_", "aiza", "akia", "asia",
)  # fmt: skip

_RULES: tuple[_Rule, ...] = (
    # https://discord.com/api/v10/webhooks/{id}/{token}[/messages/@original],
    # /interactions/{id}/{token}/callback, "POST /webhooks/{id}/{token}", percent-encoded too.
    _Rule(
        "discord-url-token",
        re.compile(rf"(?i)((?:webhooks|interactions){_SEP}\d{{1,22}}{_SEP})({_SEGMENT})"),
        _keep(1),
        triggers=("webhooks", "interactions"),
        min_chars=12,
    ),
    # hikari's bucket keys and CompiledRoute.major_param_hash: "{webhook_id}:{token}".
    _Rule(
        "discord-bucket-token",
        re.compile(rf"{_NOT_AFTER_WORD}(\d{{15,22}}:)[{_WORD}]{{16,}}"),
        _keep(1),
        prefilter=re.compile(rf":[{_WORD}]{{16}}"),
        min_chars=32,
    ),
    # Interaction tokens start with base64("interaction"), wherever they appear.
    _Rule(
        "discord-interaction-token",
        re.compile(rf"aW50ZXJhY3Rpb24[{_WORD}]*"),
        _whole,
        triggers=("aw50zxjhy3rpb24",),
        min_chars=24,
    ),
    # Authorization / Proxy-Authorization headers, in "k: v", "'k': 'v'" and "k=v" forms.
    _Rule(
        "authorization-header",
        re.compile(
            r"(?i)(?P<head>\b(?:proxy-)?authorization\\?['\"]?\s*[:=]\s*\\?['\"]?)"
            r"(?:(?P<scheme>bot|bearer|basic|digest|token)\s+)?+"
            rf"(?!\[redacted\])[^{_VALUE_STOP}]+"
        ),
        _authorization,
        triggers=("authorization",),
        min_chars=16,
    ),
    _Rule(
        "bearer",
        re.compile(r"(?i)\b(bearer\s+)(?!\[redacted\])[A-Za-z0-9._~+/=\-]{8,}"),
        _keep(1),
        triggers=("bearer",),
        min_chars=15,
    ),
    # Discord bot tokens (base64 user id . timestamp . hmac), JWTs, and old "mfa." tokens.
    _Rule(
        "dotted-token",
        re.compile(
            rf"{_NOT_AFTER_WORD}(?:[{_WORD}]{{18,}}\.[{_WORD}]{{5,}}\.[{_WORD}]{{20,}}"
            rf"|mfa\.[{_WORD}]{{20,}})"
        ),
        _whole,
        prefilter=re.compile(rf"\.[{_WORD}]{{5,}}\.[{_WORD}]{{20}}|mfa\.[{_WORD}]{{20}}"),
        min_chars=24,
    ),
    # Provider API keys: OpenAI / OpenRouter / Anthropic / DeepSeek (sk-), Stripe-like, Groq,
    # xAI, Hugging Face, Replicate, GitHub, GitLab, Slack, Perplexity, NVIDIA, Fireworks,
    # Cerebras, Google and AWS access keys.
    _Rule(
        "provider-key",
        re.compile(
            rf"(?<![A-Za-z0-9])(?:(?:sk|rk|pk)-[{_WORD}]{{12,}}"
            r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}"
            r"|(?:gsk_|xai-|hf_|r8_|gh[pousr]_|github_pat_|glpat-|xox[abprs]-|pplx-|nvapi-|fw_"
            rf"|csk-)[{_WORD}]{{16,}}"
            rf"|AIza[{_WORD}]{{30,}}"
            r"|(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z]))"
        ),
        _whole,
        triggers=_PROVIDER_PREFIXES,
        min_chars=15,
    ),
    # scheme://user:password@host (redis://:pw@host too).
    _Rule(
        "url-password",
        re.compile(r"(://)(?P<user>[^/\s:@]*):(?P<password>[^@\s/]+)@"),
        _userinfo,
        triggers=("@",),
        min_chars=10,
    ),
    # token=..., "api_key": "...", interaction_token='...', password: ... (dataclass and dict
    # reprs, kwargs, JSON, headers). Only a key ending in one of the words counts.
    _Rule(
        "secret-pair",
        re.compile(
            rf"(?=[TtSsPpAaEeCc])(?i:((?:{_SECRET_WORDS})\\?['\"]?\s*[:=]\s*)(\\?['\"]?)"
            rf"(?!\[redacted\]|None\b|null\b|true\b|false\b)[^{_VALUE_STOP}]{{4,}})"
        ),
        _keep(1, 2),
        triggers=_SECRET_WORD_TRIGGERS,
    ),
    # Secret query parameters: ?key=..., &sig=..., &signature=..., &auth=..., &code=...
    _Rule(
        "secret-query",
        re.compile(r"(?i)([?&](?:key|sig|signature|auth|code)=)(?!\[redacted\])[^&\s#'\"]+"),
        _keep(1),
        triggers=("key=", "sig=", "signature=", "auth=", "code="),
    ),
)

_SHORTEST_MATCH = min(rule.min_chars for rule in _RULES)
_SECRET_KEY = re.compile(rf"(?i)^[\w\-]*?(?:{_SECRET_WORDS}|authorization|cookie)$")


def _variants(secret: str) -> set[str]:
    """The forms a secret takes once escaped for a URL, JSON or a repr."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms.add(repr(secret)[1:-1])
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in list(forms)}
    return {f for f in forms if len(f) >= MIN_SECRET_CHARS}


def _repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


class Redactor:
    """Masks secrets in text, nested values and exceptions; also a structlog processor."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._pinned: dict[str, None] = {}
        self._runtime: OrderedDict[str, None] = OrderedDict()
        self._forms: dict[str, frozenset[str]] = {}
        # What `redact` reads: every variant of every secret, longest first (rebuilt on change,
        # so readers in other threads never see it half-updated).
        self._needles: tuple[str, ...] = ()
        self.add(secrets)

    # -- the secrets we were told ----------------------------------------------------------

    def add(self, secrets: Iterable[str]) -> None:
        """Secrets to mask for the life of the process (configuration)."""
        with self._lock:
            for secret in secrets:
                if secret and len(secret) >= MIN_SECRET_CHARS:
                    self._pinned[secret] = None
                    self._runtime.pop(secret, None)
            self._rebuild()

    def register(self, *secrets: str | None) -> None:
        """Secrets learned at runtime (a webhook or interaction token): the most recent
        `MAX_RUNTIME_SECRETS` are kept."""
        with self._lock:
            changed = False
            for secret in secrets:
                if not secret or len(secret) < MIN_SECRET_CHARS or secret in self._pinned:
                    continue
                changed = changed or secret not in self._runtime
                self._runtime[secret] = None
                self._runtime.move_to_end(secret)
            while len(self._runtime) > MAX_RUNTIME_SECRETS:
                self._runtime.popitem(last=False)
                changed = True
            if changed:  # re-registering a known one (every call with a user's key) is cheap
                self._rebuild()

    def forget(self, *secrets: str | None) -> None:
        """Stop masking runtime secrets that are no longer valid (configuration stays)."""
        with self._lock:
            for secret in secrets:
                if secret:
                    self._runtime.pop(secret, None)
            self._rebuild()

    def _rebuild(self) -> None:
        needles: set[str] = set()
        live = (*self._pinned, *self._runtime)
        for secret in live:
            forms = self._forms.get(secret)
            if forms is None:
                forms = self._forms[secret] = frozenset(_variants(secret))
            needles |= forms
        for gone in self._forms.keys() - set(live):
            del self._forms[gone]
        self._needles = tuple(sorted(needles, key=len, reverse=True))

    @property
    def secret_count(self) -> int:
        return len(self._pinned) + len(self._runtime)

    # -- masking ---------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """`text` with every secret it holds replaced by ``[redacted]``."""
        if not text:
            return text
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, REDACTED)
        if len(text) < _SHORTEST_MATCH:
            return text
        lowered = text.lower()
        size = len(text)
        for rule in _RULES:
            if size < rule.min_chars:
                continue
            if rule.triggers:
                for trigger in rule.triggers:
                    if trigger in lowered:
                        break
                else:
                    continue
            if rule.prefilter is not None and rule.prefilter.search(text) is None:
                continue
            text = rule.pattern.sub(rule.replace, text)
        return text

    def redact_known(self, text: str) -> str:
        """Only the registered values (cheap: for text already redacted piecewise)."""
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, REDACTED)
        return text

    def redact_value(self, value: Any, _depth: int = 0) -> Any:
        """A copy of `value` with secrets masked: strings, mappings, sequences, exceptions;
        other objects become their (masked) repr, as a log renderer would print them."""
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if _depth >= _MAX_DEPTH or isinstance(value, BaseException):
            return self.redact(_repr(value))
        if isinstance(value, Mapping):
            return {
                (self.redact(k) if isinstance(k, str) else k): self.redact_item(k, v, _depth)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            items = [self.redact_value(v, _depth + 1) for v in value]
            return tuple(items) if isinstance(value, tuple) else items
        return self.redact(_repr(value))

    def redact_item(self, key: object, value: Any, depth: int = 0) -> Any:
        """`value` masked; wholly masked if `key` names a secret ("token", "api_key", ...)."""
        if (
            isinstance(key, str)
            and isinstance(value, str | bytes)
            and value
            and _SECRET_KEY.match(key)
        ):
            return REDACTED
        return self.redact_value(value, depth + 1)

    def format_exception(self, exc: BaseException) -> str:
        """The rendered traceback of `exc` (with its chain), masked."""
        return self.redact("".join(traceback.format_exception(exc)))

    def describe(self, exc: BaseException) -> str:
        """``Type: message`` for `exc`, masked: safe to show a user or store."""
        try:
            text = str(exc)
        except Exception:
            text = "(unprintable)"
        return self.redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)

    def __call__(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        """structlog processor: mask every value of the event dict."""
        return {key: self.redact_item(key, value, 0) for key, value in event_dict.items()}


# The historical name.
SecretRedactor = Redactor

redactor = Redactor()
"""The process-wide instance: the log pipeline uses it; `configure_logging` fills it."""


def redact(text: str) -> str:
    """Mask secrets in `text` with the process-wide redactor."""
    return redactor.redact(text)


def redact_value(value: Any) -> Any:
    return redactor.redact_value(value)


def register_secret(*secrets: str | None) -> None:
    """Mask these values from now on (e.g. a webhook token just received from Discord)."""
    redactor.register(*secrets)


def forget_secret(*secrets: str | None) -> None:
    redactor.forget(*secrets)
