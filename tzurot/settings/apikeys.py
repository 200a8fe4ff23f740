"""Users' own provider API keys (BYOK), sealed at rest.

One Redis hash per user (`API_KEYS`): a field per provider holding the key sealed with
AES-256-GCM under ENCRYPTION_KEY (`SecretBox`, key derived by HKDF), and a `{provider}#rejected`
flag set once when the provider refuses the key. Nothing else is kept in clear: the sealed
envelope holds the key, the user and provider it belongs to (checked on open, so a blob copied
to another user's hash or field opens to nothing), when it was added and its last four
characters (for `browse`). No raw Redis value ever contains the key or a piece of it.

Without ENCRYPTION_KEY the vault is `enabled == False`: `set` refuses (`VaultUnavailable`),
reads find nothing.
"""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from tzurot.infra.keys import API_KEYS
from tzurot.infra.secretbox import SecretBox
from tzurot.logs import get_logger

log = get_logger(__name__)

BOX_PURPOSE = "user api keys"
REJECTED_SUFFIX = "#rejected"
MAX_KEY_CHARS = 512
MIN_KEY_CHARS = 8

ENCRYPTION_KEY_MISSING = (
    "Storing your own API keys is turned off here: the bot's operator must set "
    "`ENCRYPTION_KEY` (any string of at least 32 characters) first. Nothing was stored."
)


class VaultUnavailable(Exception):
    """No ENCRYPTION_KEY: keys cannot be stored."""

    def __init__(self) -> None:
        super().__init__(ENCRYPTION_KEY_MISSING)


@dataclass(frozen=True)
class StoredKey:
    """What `browse` shows of a key: never the key."""

    provider: str
    last_four: str
    added_at: float  # unix seconds
    rejected: bool


def last_four(key: str) -> str:
    return key[-4:] if len(key) >= 12 else "…"


class ApiKeyVault:
    def __init__(self, redis: Redis, box: SecretBox | None) -> None:
        self._redis = redis
        self._box = box

    @property
    def enabled(self) -> bool:
        return self._box is not None

    # -- writing --------------------------------------------------------------------------

    async def set(self, user_id: str, provider: str, key: str) -> StoredKey:
        """Seal and store `key` (replacing any earlier one and clearing its rejected flag)."""
        if self._box is None:
            raise VaultUnavailable()
        added = time.time()
        envelope = json.dumps(
            {"u": user_id, "p": provider, "k": key, "a": added, "l": last_four(key)},
            separators=(",", ":"),
        )
        sealed = self._box.seal(envelope)
        name = API_KEYS.key(user_id=user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(name, provider, sealed)
            pipe.hdel(name, provider + REJECTED_SUFFIX)
            await pipe.execute()
        return StoredKey(provider, last_four(key), added, rejected=False)

    async def remove(self, user_id: str, provider: str) -> bool:
        """Forget the key; True if there was one. The hash vanishes with its last key."""
        name = API_KEYS.key(user_id=user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(name, provider, provider + REJECTED_SUFFIX)
            pipe.hkeys(name)
            removed, left = await pipe.execute()
        if left and not any(not _is_flag(f) for f in left):
            await self._redis.delete(name)  # only flags of removed keys left
        return bool(removed)

    async def mark_rejected(self, user_id: str, provider: str) -> bool:
        """The provider refused this user's key: True the first time (tell them), False after
        that, until the key is replaced or removed."""
        name = API_KEYS.key(user_id=user_id)
        if not await self._redis.hexists(name, provider):
            return False  # removed meanwhile: nothing to report, and no orphan flag
        return bool(await self._redis.hsetnx(name, provider + REJECTED_SUFFIX, "1"))

    async def clear_rejected(self, user_id: str, provider: str) -> None:
        """The key works again (a successful `/settings apikey test`)."""
        await self._redis.hdel(API_KEYS.key(user_id=user_id), provider + REJECTED_SUFFIX)

    # -- reading --------------------------------------------------------------------------

    async def get(self, user_id: str, provider: str) -> str | None:
        """The user's key for `provider`, or None (no key, or no ENCRYPTION_KEY)."""
        if self._box is None:
            return None
        sealed = await self._redis.hget(API_KEYS.key(user_id=user_id), provider)
        if sealed is None:
            return None
        envelope = self._open(sealed, user_id, provider)
        return None if envelope is None else str(envelope["k"])

    async def providers(self, user_id: str) -> builtins.set[str]:
        """The providers this user has a key for (whether or not it was rejected)."""
        if self._box is None:
            return set()
        fields = await self._redis.hkeys(API_KEYS.key(user_id=user_id))
        return {_text(f) for f in fields if not _is_flag(f)}

    async def browse(self, user_id: str) -> list[StoredKey]:
        if self._box is None:
            return []
        raw = await self._redis.hgetall(API_KEYS.key(user_id=user_id))
        fields = {_text(k): v for k, v in raw.items()}
        found: list[StoredKey] = []
        for provider in sorted(f for f in fields if not f.endswith(REJECTED_SUFFIX)):
            envelope = self._open(fields[provider], user_id, provider)
            if envelope is None:
                continue
            found.append(
                StoredKey(
                    provider=provider,
                    last_four=str(envelope["l"]),
                    added_at=float(envelope["a"]),
                    rejected=provider + REJECTED_SUFFIX in fields,
                )
            )
        return found

    def _open(self, sealed: bytes | str, user_id: str, provider: str) -> dict[str, Any] | None:
        assert self._box is not None
        data = sealed.encode() if isinstance(sealed, str) else sealed
        plain = self._box.open(data)
        if plain is None:
            # Sealed under another ENCRYPTION_KEY (it changed) or altered: unusable.
            log.warning("a stored API key cannot be opened (ENCRYPTION_KEY changed?)",
                        provider=provider)  # fmt: skip
            return None
        try:
            envelope = json.loads(plain)
        except ValueError:
            return None
        if not isinstance(envelope, dict) or envelope.get("u") != user_id:
            return None
        if envelope.get("p") != provider or not isinstance(envelope.get("k"), str):
            return None
        return envelope


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _is_flag(field: bytes | str) -> bool:
    return _text(field).endswith(REJECTED_SUFFIX)
