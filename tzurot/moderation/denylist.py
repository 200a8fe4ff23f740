"""Who may not talk to the characters: the denylist.

An entry names a target (a Discord user id, or a server id), a scope and the place it applies:

  scope        applies to                                   target may be
  bot          everywhere                                   a user or a server
  server       one server (`place` = the server id)         a user
  channel      one channel and its threads (`place` = id)   a user
  personality  one character, everywhere (`place` = slug)   a user or a server

Every entry is one field of ONE hash (`tzurot:denylist`), keyed `scope:place:target`, so the
check on the hot path of every message is one HMGET of the handful of fields that could match
(`Denylist.verdict`): one round trip, no scan. Who may add or remove which entries is decided
by the commands (tzurot/discord/commands/deny.py), not here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis

from tzurot.infra.keys import DENYLIST
from tzurot.infra.redis_client import as_text
from tzurot.logs import get_logger

log = get_logger(__name__)

Scope = Literal["bot", "server", "channel", "personality"]
TargetKind = Literal["user", "server"]
SCOPES: tuple[Scope, ...] = ("bot", "server", "channel", "personality")
# The whole denylist is one hash; moderators' additions are capped so it stays small.
MAX_ENTRIES = 50_000
MAX_REASON_CHARS = 200


class DenyEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: str  # a user id or a server id
    kind: TargetKind = "user"
    scope: Scope
    place: str = ""  # server id, channel id or personality slug; "" for scope bot
    guild_id: str | None = None  # the server a channel entry belongs to (for browse)
    added_by: str
    added_at: float
    reason: str | None = None

    @property
    def field(self) -> str:
        return field_of(self.scope, self.place, self.target)


def field_of(scope: Scope, place: str, target: str) -> str:
    return f"{scope}:{place}:{target}" if scope != "bot" else f"bot::{target}"


@dataclass(frozen=True)
class Verdict:
    """What the denylist says about one message: denied outright, or for some characters."""

    everywhere: bool = False
    personalities: frozenset[str] = frozenset()

    def blocks(self, slug: str | None) -> bool:
        return self.everywhere or (slug is not None and slug in self.personalities)


class DenylistFull(Exception):
    pass


class Denylist:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._key = DENYLIST.key()

    async def add(self, entry: DenyEntry) -> bool:
        """Store the entry (replacing one for the same target, scope and place); True if it
        is new."""
        if entry.scope != "bot" and not entry.place:
            raise ValueError(f"a {entry.scope} entry needs the place it applies to")
        if entry.reason is not None and len(entry.reason) > MAX_REASON_CHARS:
            entry = entry.model_copy(update={"reason": entry.reason[:MAX_REASON_CHARS]})
        if await self._redis.hlen(self._key) >= MAX_ENTRIES:
            raise DenylistFull(f"the denylist holds {MAX_ENTRIES} entries already")
        return bool(await self._redis.hset(self._key, entry.field, entry.model_dump_json()))

    async def remove(self, scope: Scope, place: str, target: str) -> bool:
        return bool(await self._redis.hdel(self._key, field_of(scope, place, target)))

    async def get(self, scope: Scope, place: str, target: str) -> DenyEntry | None:
        raw = await self._redis.hget(self._key, field_of(scope, place, target))
        return _parse(raw) if raw is not None else None

    async def browse(self) -> list[DenyEntry]:
        """Every entry, newest first (for the commands, which filter what a user may see)."""
        entries: list[DenyEntry] = []
        async for _, raw in self._redis.hscan_iter(self._key, count=500):
            entry = _parse(raw)
            if entry is not None:
                entries.append(entry)
        return sorted(entries, key=lambda e: e.added_at, reverse=True)

    async def verdict(
        self,
        user_id: str,
        guild_id: str | None,
        channel_id: str | None,
        personality_slugs: Sequence[str] = (),
        *,
        parent_channel_id: str | None = None,
    ) -> Verdict:
        """Every entry that could match this message, in one HMGET."""
        everywhere = [field_of("bot", "", user_id)]
        if guild_id is not None:
            everywhere += [field_of("bot", "", guild_id), field_of("server", guild_id, user_id)]
        for channel in (channel_id, parent_channel_id):
            if channel is not None:
                everywhere.append(field_of("channel", channel, user_id))
        slugs = list(dict.fromkeys(personality_slugs))
        per_slug = [
            [field_of("personality", slug, user_id)]
            + ([field_of("personality", slug, guild_id)] if guild_id is not None else [])
            for slug in slugs
        ]
        fields = everywhere + [f for group in per_slug for f in group]
        found = await self._redis.hmget(self._key, fields)
        if any(value is not None for value in found[: len(everywhere)]):
            return Verdict(everywhere=True)
        denied: set[str] = set()
        at = len(everywhere)
        for slug, group in zip(slugs, per_slug, strict=True):
            if any(value is not None for value in found[at : at + len(group)]):
                denied.add(slug)
            at += len(group)
        return Verdict(personalities=frozenset(denied))

    async def is_denied(
        self,
        user_id: str,
        guild_id: str | None,
        channel_id: str | None,
        personality_slug: str | None,
        *,
        parent_channel_id: str | None = None,
    ) -> bool:
        slugs = [personality_slug] if personality_slug else []
        verdict = await self.verdict(
            user_id, guild_id, channel_id, slugs, parent_channel_id=parent_channel_id
        )
        return verdict.blocks(personality_slug)


def new_entry(
    *,
    target: str,
    kind: TargetKind,
    scope: Scope,
    place: str,
    added_by: str,
    guild_id: str | None = None,
    reason: str | None = None,
) -> DenyEntry:
    return DenyEntry(
        target=target, kind=kind, scope=scope, place=place if scope != "bot" else "",
        guild_id=guild_id, added_by=added_by, added_at=time.time(), reason=reason or None,
    )  # fmt: skip


def _parse(raw: bytes | str) -> DenyEntry | None:
    try:
        return DenyEntry.model_validate_json(raw)
    except ValidationError:
        log.warning("unreadable denylist entry skipped", entry=as_text(raw)[:80])
        return None
