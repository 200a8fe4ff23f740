"""Facts about a user, for one character: kept in Redis, distilled from episodes by a model.

A fact has a `key` naming what it is about (`cat_name`, `preferred_name`). A newer fact with the
same key replaces the older one, which is how "newest wins" and corrections ("actually my cat is
called Mochi") work: the distiller is shown the facts it knows, with their keys, and reuses a
key when a fact changes. A locked fact is the user's word: the distiller never replaces nor
forgets it; only the user (/memory facts) changes it. At most MAX_FACTS per scope; the oldest
unlocked fact gives way to a new one.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis

from tzurot.ai.models import ChatMessage, ModelTarget
from tzurot.ai.provider import ChatModel
from tzurot.infra.keys import FACTS
from tzurot.infra.redis_client import as_text
from tzurot.logs import get_logger
from tzurot.memory.models import MAX_FACT_CHARS, Fact, MemoryRecord, MemoryScope

log = get_logger(__name__)

MAX_FACTS = 50
MAX_FACTS_PER_RUN = 10

# KEYS: the scope's facts hash. ARGV: key, fact JSON, max facts, "1" to respect a lock.
# Returns 1 if written, 0 if a locked fact kept its place.
_UPSERT = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and ARGV[4] == '1' then
  local ok, old = pcall(cjson.decode, current)
  if ok and old['locked'] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local count = redis.call('HLEN', KEYS[1])
while count > tonumber(ARGV[3]) do
  local oldest, oldest_at = nil, nil
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local ok, fact = pcall(cjson.decode, all[i + 1])
    if not ok then oldest = all[i]; break end
    local older = oldest_at == nil or fact['at'] < oldest_at
    if not fact['locked'] and all[i] ~= ARGV[1] and older then
      oldest, oldest_at = all[i], fact['at']
    end
  end
  if oldest == nil then break end
  redis.call('HDEL', KEYS[1], oldest)
  count = count - 1
end
return 1
"""


def fact_key(text: str) -> str:
    """What a typed or generated key becomes: lowercase ascii words joined by underscores."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", folded).strip("_")[:60]


def clean_fact_text(text: str) -> str:
    """One line, no control characters, no mention markup, at most MAX_FACT_CHARS."""
    cleaned = "".join(ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cf"})
    cleaned = re.sub(r"<[@#][!&]?\d+>|@(everyone|here)", "", cleaned)
    return " ".join(cleaned.split())[:MAX_FACT_CHARS]


class FactStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._upsert = redis.register_script(_UPSERT)

    async def all(self, scope: MemoryScope) -> list[Fact]:
        """Newest first; a field that does not parse is skipped (and logged)."""
        raw = await self._redis.hgetall(FACTS.key(scope=scope.key))
        facts = []
        for key, value in raw.items():
            try:
                facts.append(Fact.model_validate_json(value))
            except ValidationError:
                log.warning("a stored fact does not parse; skipped", key=as_text(key))
        return sorted(facts, key=lambda fact: fact.at, reverse=True)

    async def get(self, scope: MemoryScope, key: str) -> Fact | None:
        raw = await self._redis.hget(FACTS.key(scope=scope.key), key)
        if raw is None:
            return None
        try:
            return Fact.model_validate_json(raw)
        except ValidationError:
            return None

    async def put(self, scope: MemoryScope, fact: Fact, *, respect_lock: bool = True) -> bool:
        """Write the fact (replacing its key's). False if a locked fact was kept."""
        written = await self._upsert(
            keys=[FACTS.key(scope=scope.key)],
            args=[fact.key, fact.model_dump_json(), MAX_FACTS, "1" if respect_lock else "0"],
        )
        return bool(written)

    async def delete(self, scope: MemoryScope, key: str) -> bool:
        return bool(await self._redis.hdel(FACTS.key(scope=scope.key), key))

    async def purge(self, scope: MemoryScope) -> int:
        key = FACTS.key(scope=scope.key)
        count = int(await self._redis.hlen(key))
        await self._redis.delete(key)
        return count


@dataclass(frozen=True)
class FactChanges:
    put: list[Fact]
    forget: list[str]


TargetFor = Callable[[str, str], Awaitable[ModelTarget]]  # (user id, model) -> where to call

_INSTRUCTIONS = """You keep a character's notes about one user. From the conversation below, \
write down durable facts the user said about themselves: the name they like to be called, \
people and pets in their life, where they live, their work, likes and dislikes, plans and \
events that will still matter weeks from now. Not passing moods, not what the character said.

Answer with JSON only, in this shape:
{"facts": [{"key": "cat_name", "text": "Has a cat named Miso"}], "forget": ["old_key"]}

- "key" is a short snake_case topic. When a fact updates or corrects a known one (the user \
says "actually ..."), use the known fact's key: the newest statement wins.
- "forget" lists keys of known facts the user said are no longer true.
- Only facts that are new or changed; at most 10. No facts: {"facts": [], "forget": []}."""


class FactDistiller:
    """Asks a model for the facts in recent episodes and parses what it says, defensively."""

    def __init__(self, model: ChatModel, target_for: TargetFor, *, timeout: float = 60.0) -> None:
        self._model = model
        self._target_for = target_for
        self._timeout = timeout

    async def distil(
        self,
        *,
        user_id: str,
        user_name: str,
        model: str,
        known: Sequence[Fact],
        episodes: Sequence[MemoryRecord],
        venue: str,
    ) -> FactChanges:
        known_lines = "\n".join(f"- {f.key}: {f.text}" for f in known) or "(none yet)"
        episode_lines = "\n\n".join(
            f"[{e.at.strftime('%Y-%m-%d')}] {e.text}" for e in sorted(episodes, key=lambda e: e.at)
        )
        messages = [
            ChatMessage(role="system", content=_INSTRUCTIONS),
            ChatMessage(
                role="user",
                content=f"The user is {user_name}.\n\nKnown facts:\n{known_lines}\n\n"
                f"Conversation (oldest first):\n{episode_lines}",
            ),
        ]
        target = await self._target_for(user_id, model)
        completion = await self._model.complete(
            messages, target, temperature=0.1, max_tokens=800, timeout=self._timeout
        )
        return parse_fact_changes(completion.content, venue=venue, now=datetime.now(UTC))


def parse_fact_changes(text: str, *, venue: str, now: datetime) -> FactChanges:
    """The model's answer as changes; anything that is not the JSON asked for yields none."""
    data = _first_json_object(text)
    if not isinstance(data, dict):
        log.warning("the fact model answered something other than JSON; nothing changed")
        return FactChanges([], [])
    put: list[Fact] = []
    for item in data.get("facts") or []:
        if not isinstance(item, dict):
            continue
        key, body = fact_key(str(item.get("key", ""))), clean_fact_text(str(item.get("text", "")))
        if key and body and all(f.key != key for f in put):
            put.append(Fact(key=key, text=body, at=now, venue=venue))
        if len(put) >= MAX_FACTS_PER_RUN:
            break
    forget = [fact_key(str(k)) for k in (data.get("forget") or []) if isinstance(k, str)]
    return FactChanges(put, [k for k in forget if k][:MAX_FACTS_PER_RUN])


def _first_json_object(text: str) -> Any:
    """The JSON object in a reply that may wrap it in prose or a code fence."""
    text = text[:20_000]  # a runaway reply is not parsed at length
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
            return value
        except ValueError:
            start = text.find("{", start + 1)
    return None
