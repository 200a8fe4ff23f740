"""Is this API key good? One cheap, read-only provider call (a model list) per check.

401/403 (Gemini: 400 too, its answer to a malformed key) means the provider refused the key;
a network error, a timeout, a 429 or a 5xx means we could not tell (nothing is stored then).
The key travels only in the request's headers: it is registered with the log redactor for the
call, and no error, log line or result carries it, nor any text of the provider's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import aiohttp

from tzurot.logs import get_logger
from tzurot.redaction import register_secret

log = get_logger(__name__)

CHECK_TIMEOUT = 8.0


class KeyStatus(StrEnum):
    VALID = "valid"
    REJECTED = "rejected"
    UNCHECKED = "unchecked"  # could not tell: try again later


@dataclass(frozen=True)
class KeyCheck:
    status: KeyStatus
    message: str  # user-safe: never the key, never the provider's own words

    @property
    def valid(self) -> bool:
        return self.status is KeyStatus.VALID


@dataclass(frozen=True)
class _Endpoint:
    url: str
    auth: str = "bearer"  # "bearer" | "x-api-key" | "x-goog-api-key"
    headers: tuple[tuple[str, str], ...] = ()
    rejected: frozenset[int] = frozenset({401, 403})


# litellm provider name -> its cheapest authenticated read.
ENDPOINTS: dict[str, _Endpoint] = {
    "openai": _Endpoint("https://api.openai.com/v1/models"),
    "openrouter": _Endpoint("https://openrouter.ai/api/v1/key"),
    "anthropic": _Endpoint(
        "https://api.anthropic.com/v1/models",
        auth="x-api-key",
        headers=(("anthropic-version", "2023-06-01"),),
    ),
    "gemini": _Endpoint(
        "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1",
        auth="x-goog-api-key",
        rejected=frozenset({400, 401, 403}),
    ),
    "groq": _Endpoint("https://api.groq.com/openai/v1/models"),
    "mistral": _Endpoint("https://api.mistral.ai/v1/models"),
    "deepseek": _Endpoint("https://api.deepseek.com/models"),
    "xai": _Endpoint("https://api.x.ai/v1/models"),
    "together_ai": _Endpoint("https://api.together.xyz/v1/models"),
    "fireworks_ai": _Endpoint("https://api.fireworks.ai/inference/v1/models"),
    "cerebras": _Endpoint("https://api.cerebras.ai/v1/models"),
    "deepinfra": _Endpoint("https://api.deepinfra.com/v1/openai/models"),
}
SUPPORTED_PROVIDERS: tuple[str, ...] = tuple(ENDPOINTS)


class UnknownProvider(ValueError):
    def __init__(self, provider: str) -> None:
        shown = provider[:40]
        super().__init__(
            f"`{shown}` is not a provider whose keys I can check and use. Choose one of: "
            + ", ".join(f"`{p}`" for p in SUPPORTED_PROVIDERS)
            + "."
        )


class KeyChecker:
    """Checks keys against each provider. `api_base` (LLM_API_BASE) is where `openai` keys
    are checked when set; `overrides` replace endpoint URLs (tests)."""

    def __init__(
        self,
        *,
        api_base: str | None = None,
        overrides: Mapping[str, str] | None = None,
        timeout: float = CHECK_TIMEOUT,
    ) -> None:
        self._endpoints = dict(ENDPOINTS)
        if api_base:
            self._endpoints["openai"] = _Endpoint(api_base.rstrip("/") + "/models")
        for provider, url in (overrides or {}).items():
            base = self._endpoints.get(provider, _Endpoint(url))
            self._endpoints[provider] = _Endpoint(url, base.auth, base.headers, base.rejected)
        self._timeout = timeout

    def supports(self, provider: str) -> bool:
        return provider in self._endpoints

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self._endpoints)

    async def check(self, provider: str, key: str) -> KeyCheck:
        """Raises UnknownProvider for a provider we have no check for."""
        endpoint = self._endpoints.get(provider)
        if endpoint is None:
            raise UnknownProvider(provider)
        register_secret(key)  # whatever logs the call from here on masks it
        headers = dict(endpoint.headers)
        if endpoint.auth == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        else:
            headers[endpoint.auth] = key
        try:
            status = await self._get(endpoint.url, headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("api key check could not reach the provider", provider=provider,
                     error=type(exc).__name__)  # fmt: skip
            return _unchecked(provider)
        finally:
            headers.clear()
        if 200 <= status < 300:
            return KeyCheck(KeyStatus.VALID, f"{provider} accepted the key.")
        if status in endpoint.rejected:
            log.info("api key refused by the provider", provider=provider, status=status)
            return KeyCheck(
                KeyStatus.REJECTED,
                f"{provider} refused this key (HTTP {status}). Check that you copied the whole "
                "key and that it is still active.",
            )
        log.info("api key check inconclusive", provider=provider, status=status)
        return _unchecked(provider, status)

    async def _get(self, url: str, headers: dict[str, str]) -> int:
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with (
            asyncio.timeout(self._timeout + 1),
            aiohttp.ClientSession(timeout=timeout, trust_env=False) as session,
            session.get(url, headers=headers, allow_redirects=False) as response,
        ):
            return response.status


def _unchecked(provider: str, status: int | None = None) -> KeyCheck:
    detail = f" (HTTP {status})" if status is not None else ""
    return KeyCheck(
        KeyStatus.UNCHECKED,
        f"I could not check the key with {provider} right now{detail}; nothing was stored. "
        "Please try again in a moment.",
    )
