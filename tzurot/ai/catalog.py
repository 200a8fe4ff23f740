"""The chat models people can choose: litellm's model table, cut to the providers we can reach.

litellm's table (`model_cost`, ~3,500 chat models) is the source, but `import litellm` costs
seconds, so when litellm is not loaded yet the same table is read straight from the JSON file
litellm ships (~0.1 s, no import), in a thread at start (`warm_up`). Until then the catalog
knows only the configured models (DEFAULT_MODEL, GUEST_MODELS), so autocomplete always answers.

A provider is reachable when this deployment has a key for it the way litellm reads keys
(`OPENROUTER_API_KEY`, `ANTHROPIC_API_KEY`, ...), when LLM_API_BASE is set (provider `openai`,
DESIGN.md), or when the user has their own key for it (the caller passes those providers; the
BYOK vault knows them). Searching is a scan of a precomputed lowercase index: ~1 ms.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tzurot.ai._litellm import loaded_litellm
from tzurot.logs import get_logger

log = get_logger(__name__)

AUTOCOMPLETE_LIMIT = 25
_COST_MAP_FILE = "model_prices_and_context_window_backup.json"

# litellm's environment variable for each provider's key, where it is not `{PROVIDER}_API_KEY`.
_KEY_VARIABLES: Mapping[str, tuple[str, ...]] = {
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHER_API_KEY"),
    "perplexity": ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "fireworks_ai": ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "FIREWORKSAI_API_KEY"),
    "xai": ("XAI_API_KEY",),
    "azure": ("AZURE_API_KEY",),
    "huggingface": ("HUGGINGFACE_API_KEY", "HF_TOKEN"),
    "bedrock": ("AWS_ACCESS_KEY_ID",),
    "vertex_ai": ("VERTEXAI_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS"),
}


class KeyedProviders(Protocol):
    """What knows the providers a user has their own key for (the BYOK vault)."""

    async def providers(self, user_id: str) -> set[str]: ...


@dataclass(frozen=True)
class ModelInfo:
    name: str  # the full litellm model string, e.g. "openai/gpt-4o"
    provider: str
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None

    def describe(self) -> str:
        window = f" · {self.max_input_tokens:,} tokens in" if self.max_input_tokens else ""
        return f"`{self.name}`{window}"


def provider_of(model: str) -> str:
    """`openrouter/anthropic/claude` -> `openrouter`; a bare name is litellm's `openai`."""
    head, sep, _ = model.partition("/")
    return head.lower() if sep else "openai"


def operator_providers(
    environ: Mapping[str, str] | None = None,
    *,
    llm_api_base: str | None = None,
    llm_api_key_set: bool = False,
    default_model: str | None = None,
    known: Iterable[str] = (),
) -> frozenset[str]:
    """The providers this deployment has its own key (or endpoint) for."""
    env = os.environ if environ is None else environ
    found: set[str] = set()
    if llm_api_base:
        found.add("openai")
    if llm_api_key_set and default_model:
        found.add(provider_of(default_model))  # LLM_API_KEY goes with DEFAULT_MODEL's calls
    for provider in {*known, *_KEY_VARIABLES, "openai", "anthropic", "openrouter"}:
        names = (*_KEY_VARIABLES.get(provider, ()), f"{provider.upper()}_API_KEY")
        if any(env.get(name) for name in names):
            found.add(provider)
    return frozenset(found)


class ModelCatalog:
    """Chat models by provider, and a fast search for autocomplete."""

    def __init__(
        self,
        *,
        operator: frozenset[str] | None = None,
        configured: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
        llm_api_base: str | None = None,
        llm_api_key_set: bool = False,
    ) -> None:
        """`operator` fixes the deployment's providers (else read from `environ` once the
        table is loaded); `configured` models (DEFAULT_MODEL, GUEST_MODELS) are always known."""
        self._fixed_operator = operator
        self._environ = environ
        self._api_base = llm_api_base
        self._api_key_set = llm_api_key_set
        self._configured = tuple(dict.fromkeys(m for m in configured if m))
        self._operator: frozenset[str] = operator or frozenset(
            provider_of(m) for m in self._configured[:1] if llm_api_key_set or llm_api_base
        )
        self._models: dict[str, ModelInfo] = {}
        self._index: list[tuple[str, str, ModelInfo]] = []  # (lower name, lower tail, info)
        self._loaded = False
        self._install(self._configured_models())

    @classmethod
    def from_settings(cls, settings: Any, environ: Mapping[str, str] | None = None) -> ModelCatalog:
        default = settings.default_model
        return cls(
            configured=(default, *settings.guest_models),
            environ=environ,
            llm_api_base=settings.llm_api_base,
            llm_api_key_set=settings.llm_api_key is not None,
        )

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def operator_providers(self) -> frozenset[str]:
        return self._operator

    async def warm_up(self) -> None:
        """Load litellm's table off the event loop (call once at start; cheap if repeated)."""
        if not self._loaded:
            await asyncio.to_thread(self.load)

    def load(self, table: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Build the catalog from `table` (litellm's model_cost shape), else litellm's own."""
        try:
            raw = table if table is not None else _litellm_table()
        except (OSError, ValueError) as exc:
            log.warning("litellm's model table could not be read", error=str(exc)[:200])
            raw = {}
        models = [*self._configured_models(), *_chat_models(raw)]
        if self._fixed_operator is None:
            self._operator = operator_providers(
                self._environ,
                llm_api_base=self._api_base,
                llm_api_key_set=self._api_key_set,
                default_model=self._configured[0] if self._configured else None,
                known={m.provider for m in models},
            )
        self._install(models)
        self._loaded = True

    def reachable(self, user_providers: Iterable[str] = ()) -> frozenset[str]:
        return self._operator | {p.lower() for p in user_providers}

    def providers(self, user_providers: Iterable[str] = ()) -> list[str]:
        """Reachable providers that have at least one model, sorted."""
        reach = self.reachable(user_providers)
        return sorted({m.provider for m in self._models.values() if m.provider in reach})

    def models(
        self, provider: str | None = None, user_providers: Iterable[str] = ()
    ) -> list[ModelInfo]:
        """The reachable models (of one provider, if given), sorted by name."""
        reach = self.reachable(user_providers)
        wanted = provider.strip().lower() if provider else None
        return [
            info
            for _, _, info in self._index
            if info.provider in reach and (wanted is None or info.provider == wanted)
        ]

    def search(
        self, text: str, user_providers: Iterable[str] = (), limit: int = AUTOCOMPLETE_LIMIT
    ) -> list[str]:
        """Reachable model names containing `text` (any case): names starting with it (with
        or without the provider) first, configured models first among equals."""
        needle = " ".join(text.lower().split())[:200]
        reach = self.reachable(user_providers)
        starts: list[str] = []
        contains: list[str] = []
        for lower, tail, info in self._index:
            if info.provider not in reach or needle not in lower:
                continue
            bucket = starts if lower.startswith(needle) or tail.startswith(needle) else contains
            bucket.append(info.name)
            if len(starts) >= limit:
                break
        configured = [
            m for m in self._configured if provider_of(m) in reach and needle in m.lower()
        ]
        ordered = list(dict.fromkeys([*configured, *starts, *contains]))
        return ordered[:limit]

    def knows(self, model: str) -> bool:
        return model in self._models

    def get(self, model: str) -> ModelInfo | None:
        return self._models.get(model)

    def _configured_models(self) -> list[ModelInfo]:
        return [ModelInfo(m, provider_of(m)) for m in self._configured]

    def _install(self, models: Iterable[ModelInfo]) -> None:
        found: dict[str, ModelInfo] = {}
        for info in models:
            found.setdefault(info.name, info)
        self._models = found
        self._index = sorted(
            ((name.lower(), name.lower().partition("/")[2], info) for name, info in found.items()),
            key=lambda row: row[0],
        )


def _litellm_table() -> Mapping[str, Mapping[str, Any]]:
    litellm = loaded_litellm()
    if litellm is not None:
        return litellm.model_cost  # type: ignore[no-any-return]
    spec = importlib.util.find_spec("litellm")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise OSError("litellm is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / _COST_MAP_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("litellm's model table is not an object")
    return data


def _chat_models(table: Mapping[str, Mapping[str, Any]]) -> list[ModelInfo]:
    """litellm's chat models as full `provider/model` strings (its bare OpenAI and Anthropic
    names get their provider in front; fine-tune templates and non-chat models are left out)."""
    found: list[ModelInfo] = []
    for key, entry in table.items():
        if not isinstance(entry, Mapping) or entry.get("mode") != "chat":
            continue
        provider = entry.get("litellm_provider")
        if not isinstance(provider, str) or not provider or key.startswith("ft:"):
            continue
        if any(ch.isspace() for ch in key) or len(key) > 200:
            continue
        name = key if key.startswith(provider + "/") else f"{provider}/{key}"
        found.append(
            ModelInfo(name, provider, _int(entry.get("max_input_tokens")),
                      _int(entry.get("max_output_tokens")))
        )  # fmt: skip
    return found


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
