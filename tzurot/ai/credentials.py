"""Whose credentials a generation's model call uses.

In order: the user's own key for the model's provider (BYOK); else the operator's (LLM_API_BASE
with LLM_API_KEY, or a provider key in the environment as litellm reads it); else guest mode on
GUEST_MODELS (the wanted model if it is one, else the first); else `ProviderError(NO_API_KEY)`,
whose message tells the user how to add a key.

Operator credentials, precisely:
- with LLM_API_BASE set, that endpoint is provider `openai`: `openai/...` models go there, with
  LLM_API_KEY (or none: a local server may want none);
- LLM_API_KEY without LLM_API_BASE is a key for DEFAULT_MODEL's provider;
- any other provider is the operator's when litellm finds its key in the environment
  (`OPENROUTER_API_KEY`, `ANTHROPIC_API_KEY`, ...), or needs none (a local runtime).

The hot path costs one Redis read at most (the user's key), and only for a provider users can
add keys for; provider names come from the model string (litellm's `provider/model`), else from
litellm's own lookup.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from tzurot.ai._litellm import loaded_litellm
from tzurot.ai.errors import ErrorCategory, ProviderError
from tzurot.ai.key_check import SUPPORTED_PROVIDERS
from tzurot.ai.models import ModelTarget
from tzurot.logs import get_logger
from tzurot.redaction import register_secret
from tzurot.settings.apikeys import ApiKeyVault

log = get_logger(__name__)

Source = Literal["user", "operator", "guest"]

# Provider names known without importing litellm (its list is used once it is loaded).
_STATIC_PROVIDERS = frozenset(
    {
        *SUPPORTED_PROVIDERS, "azure", "azure_ai", "bedrock", "vertex_ai", "cohere",
        "cohere_chat", "huggingface", "replicate", "perplexity", "ollama", "ollama_chat",
        "vllm", "hosted_vllm", "lm_studio", "llamafile", "nvidia_nim", "sambanova",
        "openai_like", "custom_openai", "text-completion-openai", "moonshot", "novita",
        "nebius", "hyperbolic", "featherless_ai", "ai21", "codestral", "dashscope",
    }
)  # fmt: skip
# Local runtimes: litellm calls them without a key.
KEYLESS_PROVIDERS = frozenset(
    {
        "ollama", "ollama_chat", "vllm", "hosted_vllm", "lm_studio", "llamafile",
        "xinference", "docker_model_runner", "lemonade", "oobabooga", "triton", "petals",
    }
)  # fmt: skip
# Where litellm looks for a provider's key (besides `{PROVIDER}_API_KEY`).
_ENV_KEYS: Mapping[str, tuple[str, ...]] = {
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHER_API_KEY"),
    "fireworks_ai": ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "FIREWORKSAI_API_KEY"),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "huggingface": ("HF_TOKEN", "HUGGINGFACE_API_KEY"),
    "replicate": ("REPLICATE_API_KEY", "REPLICATE_API_TOKEN"),
    "cohere_chat": ("COHERE_API_KEY", "CO_API_KEY"),
    "cohere": ("COHERE_API_KEY", "CO_API_KEY"),
    "nvidia_nim": ("NVIDIA_NIM_API_KEY",),
    "codestral": ("CODESTRAL_API_KEY",),
}


@dataclass(frozen=True)
class Credentials:
    target: ModelTarget
    source: Source
    provider: str  # of target.model
    wanted_model: str  # before guest mode swapped it

    @property
    def uses_user_key(self) -> bool:
        return self.source == "user"


_all_providers: frozenset[str] | None = None  # litellm's names, once it is loaded


def _known_providers() -> Collection[str]:
    global _all_providers  # noqa: PLW0603 - computed once, the first time litellm is there
    if _all_providers is not None:
        return _all_providers
    litellm = loaded_litellm()
    if litellm is None:
        return _STATIC_PROVIDERS
    names = frozenset(str(getattr(p, "value", p)) for p in litellm.provider_list)
    _all_providers = names | _STATIC_PROVIDERS
    return _all_providers


def provider_of(model: str) -> str:
    """litellm's provider name for a model string (`openrouter/x/y` -> `openrouter`)."""
    head, slash, _ = model.partition("/")
    if slash and head in _known_providers():
        return head
    litellm = loaded_litellm()
    if litellm is not None:
        with contextlib.suppress(Exception):  # litellm cannot tell: the names below decide
            return str(litellm.get_llm_provider(model)[1])
    lowered = model.lower()
    if lowered.startswith("claude"):
        return "anthropic"
    if lowered.startswith("gemini"):
        return "gemini"
    return "openai"


class CredentialResolver:
    def __init__(
        self,
        vault: ApiKeyVault | None,
        *,
        default_model: str,
        api_base: str | None = None,
        api_key: SecretStr | None = None,
        guest_models: tuple[str, ...] = (),
        user_providers: Collection[str] = SUPPORTED_PROVIDERS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._vault = vault if vault is not None and vault.enabled else None
        self._default_model = default_model
        self._api_base = api_base
        self._api_key = api_key
        self._guest_models = guest_models
        self._user_providers = frozenset(user_providers)
        self._environ = environ if environ is not None else os.environ
        self._key_provider = (
            "openai" if api_base else provider_of(default_model) if api_key else None
        )

    @property
    def default_model(self) -> str:
        return self._default_model

    def provider_of(self, model: str) -> str:
        return provider_of(model)

    async def resolve(self, user_id: str, model: str | None) -> Credentials:
        wanted = model or self._default_model
        provider = provider_of(wanted)
        if self._vault is not None and provider in self._user_providers:
            key = await self._vault.get(user_id, provider)
            if key is not None:
                register_secret(key)
                return Credentials(
                    ModelTarget(
                        model=wanted, api_base=self._base_for(provider), api_key=SecretStr(key)
                    ),
                    "user",
                    provider,
                    wanted,
                )
        operator = self.operator_target(wanted, provider)
        if operator is not None:
            return Credentials(operator, "operator", provider, wanted)
        if self._guest_models:
            guest = wanted if wanted in self._guest_models else self._guest_models[0]
            guest_provider = provider_of(guest)
            target = self.operator_target(guest, guest_provider) or ModelTarget(model=guest)
            if guest != wanted:
                log.debug("guest mode: using a guest model", wanted=wanted, model=guest)
            return Credentials(target, "guest", guest_provider, wanted)
        raise ProviderError(
            ErrorCategory.NO_API_KEY,
            f"No API key for provider {provider}: add one with /settings apikey set.",
        )

    def operator_target(self, model: str, provider: str | None = None) -> ModelTarget | None:
        """The call as the operator's credentials make it, or None if they cover nothing."""
        provider = provider or provider_of(model)
        if provider == self._key_provider:
            return ModelTarget(model=model, api_base=self._api_base, api_key=self._api_key)
        if provider in KEYLESS_PROVIDERS or self._env_has_key(provider):
            return ModelTarget(model=model)  # litellm reads the environment itself
        return None

    def _base_for(self, provider: str) -> str | None:
        return self._api_base if provider == "openai" else None

    def _env_has_key(self, provider: str) -> bool:
        names = (*_ENV_KEYS.get(provider, ()), f"{provider.upper()}_API_KEY")
        return any(self._environ.get(name) for name in names)
