"""Channel activation: one character answers every message in a channel.

Activations live in Redis (so every process sees them), one hash per server
(`tzurot:activations:{guild}`): field = channel id, value = who answers there, who set it and
when. The hash is also the per-server index that `/channel browse` lists. A thread inherits its
parent's activation unless it has its own entry, which may be a "deactivated here" marker
(`slug` None). Looking up a message's channel and its parent is one HMGET.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis

from tzurot.infra.keys import ACTIVATIONS
from tzurot.infra.redis_client import as_text
from tzurot.logs import get_logger

log = get_logger(__name__)

MAX_PER_GUILD = 1000


class Activation(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel_id: str
    slug: str | None  # None: "deactivated here" (a thread that does not inherit)
    by: str
    at: float


class TooManyActivations(Exception):
    pass


class Activations:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def activate(self, guild_id: str, channel_id: str, slug: str, by: str) -> None:
        key = ACTIVATIONS.key(guild_id=guild_id)
        if not await self._redis.hexists(key, channel_id) and (
            await self._redis.hlen(key) >= MAX_PER_GUILD
        ):
            raise TooManyActivations(f"a server may activate at most {MAX_PER_GUILD} channels")
        entry = Activation(channel_id=channel_id, slug=slug, by=by, at=time.time())
        await self._redis.hset(key, channel_id, entry.model_dump_json())

    async def deactivate(
        self, guild_id: str, channel_id: str, by: str, *, parent_id: str | None = None
    ) -> bool:
        """Stop answering every message here; True if something was active here.

        In a thread whose parent is activated, a "deactivated here" marker is stored, so the
        thread stops inheriting."""
        key = ACTIVATIONS.key(guild_id=guild_id)
        if parent_id is not None:
            own, parent = await self._lookup(guild_id, channel_id, parent_id)
            if parent is not None and parent.slug is not None:
                marker = Activation(channel_id=channel_id, slug=None, by=by, at=time.time())
                await self._redis.hset(key, channel_id, marker.model_dump_json())
                return own is None or own.slug is not None
        return bool(await self._redis.hdel(key, channel_id))

    async def get(self, guild_id: str, channel_id: str) -> Activation | None:
        own, _ = await self._lookup(guild_id, channel_id, None)
        return own

    async def effective(
        self, guild_id: str, channel_id: str, parent_id: str | None = None
    ) -> Activation | None:
        """The activation that applies to a message here (a thread's own, else its
        parent's), or None; a "deactivated here" marker counts as None."""
        own, parent = await self._lookup(guild_id, channel_id, parent_id)
        found = own if own is not None else parent
        return found if found is not None and found.slug is not None else None

    async def active_slug(
        self, guild_id: str | None, channel_id: str, parent_id: str | None = None
    ) -> str | None:
        if guild_id is None:
            return None
        found = await self.effective(guild_id, channel_id, parent_id)
        return found.slug if found is not None else None

    async def browse(self, guild_id: str) -> list[Activation]:
        raw = await self._redis.hgetall(ACTIVATIONS.key(guild_id=guild_id))
        entries = [entry for value in raw.values() if (entry := _parse(value)) is not None]
        return sorted(entries, key=lambda e: e.at)

    async def _lookup(
        self, guild_id: str, channel_id: str, parent_id: str | None
    ) -> tuple[Activation | None, Activation | None]:
        fields = [channel_id] + ([parent_id] if parent_id else [])
        values = await self._redis.hmget(ACTIVATIONS.key(guild_id=guild_id), fields)
        own = _parse(values[0]) if values[0] is not None else None
        parent = _parse(values[1]) if len(values) > 1 and values[1] is not None else None
        return own, parent


def _parse(raw: bytes | str) -> Activation | None:
    try:
        return Activation.model_validate_json(raw)
    except ValidationError:
        log.warning("unreadable activation skipped", entry=as_text(raw)[:80])
        return None


def thread_parent_of(channel: object) -> str | None:
    """The parent channel id of an interaction's channel when it is a thread, else None (a
    text channel's own `parent_id` is its category, which is not what is meant here)."""
    if getattr(channel, "thread_metadata", None) is None:
        return None
    parent = getattr(channel, "parent_id", None)
    return str(parent) if parent is not None else None
