"""What the Discord front end is handed by the composition root: the community's stores.

`tzurot/app.py` builds every store once and passes this bundle in; the message path and every
command group reach the data only through these typed services, never through Redis keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tzurot.ai.catalog import KeyedProviders, ModelCatalog
from tzurot.ai.key_check import KeyChecker
from tzurot.conversations import TranscriptStore
from tzurot.discord.activation import Activations
from tzurot.memory.service import MemoryService
from tzurot.moderation import Denylist, RateLimiter
from tzurot.moderation.stats import AdminStats
from tzurot.personalities.service import CharacterService
from tzurot.personalities.store import PersonalityStore
from tzurot.settings.apikeys import ApiKeyVault
from tzurot.settings.presets import PresetStore
from tzurot.settings.resolver import SettingsResolver
from tzurot.settings.store import SettingsStore


@dataclass(frozen=True)
class Community:
    personalities: PersonalityStore
    transcripts: TranscriptStore
    # Managing characters (ownership, validation, avatars, TOML): /character and the HTTP API.
    characters: CharacterService
    # The denylist, the rate limits, channel activations, /admin stats and the same checks
    # /health runs (Application.health), for /admin health.
    denylist: Denylist
    rate_limiter: RateLimiter
    activations: Activations
    admin_stats: AdminStats
    health: Callable[[], Awaitable[dict[str, bool]]]
    # Presets, the user and channel settings, their resolver, the model catalog (/models and
    # model autocomplete) and what knows the providers a user has their own key for (the BYOK
    # vault: `async providers(user_id) -> set[str]`).
    presets: PresetStore
    settings: SettingsStore
    resolver: SettingsResolver
    models: ModelCatalog
    key_providers: KeyedProviders
    # Users' own API keys (BYOK) and the provider check a key passes before it is stored.
    api_keys: ApiKeyVault
    key_checker: KeyChecker
    # Long-term memory: recall and writes (the worker, delivery) and /memory.
    memory: MemoryService
    # The Discord user id with admin rights over the bot (BOT_OWNER_ID), as a string.
    owner_id: str | None = None
