"""Channel transcripts in Redis: every speaker's turns, capped, replay-safe and pruned by age.

Keys (families in tzurot.infra.keys; `{<channel>}` is a hash tag keeping a channel's keys in
one slot):
  tzurot:transcript:{<channel>}:turns   hash: entry id -> one `ChatTurn` as JSON
  tzurot:transcript:{<channel>}:order   sorted set: entry id, scored by the turn's time
  tzurot:transcript-active              sorted set: channel id, scored by its newest turn's time
  tzurot:transcript-undo:{<channel>}    hash: user id -> what their last clear removed (24 h)

An entry id is `m:{message_id}` when the turn has a Discord message id, so a gateway replay of
the same message is stored once; otherwise it is random. A user turn carries the personality the
user addressed in `personality`, which is what `clear(channel, personality)` goes by.

`exchange()` reads the history before a new turn and stores the turn in one step, so the worker
never reads back the turn it is answering. Only `prune` removes a channel from the active index,
and only once the channel is empty and its newest turn is older than the cutoff; so a concurrent
append can never leave turns that no prune will find (`undo` puts turns back the way `append`
does: into the order set and the turns hash together, the active index raised, the cap kept).

A user's own turns are the user turns with their `user_id` and the replies to them (a reply
carries the `user_id` of the user it answers). `clear_user` moves those (optionally only one
personality's) into the channel's undo hash in one script, replacing that user's previous undo
data; `undo` moves them back. Undo data expires 24 h after the channel's latest clear, and a
clear older than 24 h is never restored; clearing the whole channel drops it too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from redis.asyncio import Redis

from tzurot.conversations.models import ChatTurn
from tzurot.infra.keys import (
    TRANSCRIPT_ACTIVE,
    TRANSCRIPT_ORDER,
    TRANSCRIPT_TURNS,
    TRANSCRIPT_UNDO,
)
from tzurot.jobs.cron import CronTask

log = structlog.get_logger(__name__)

ACTIVE_KEY = TRANSCRIPT_ACTIVE.key()
MAX_TURNS = 500
MAX_CONTENT_CHARS = 8_000
TRUNCATION_MARKER = " [… truncated]"
RETENTION_SCHEDULE = "17 3 * * *"
_PRUNE_BATCH = 200

# Drops a channel's oldest turns beyond `cap`, for the scripts below. KEYS: order, turns.
_TRIM = """
local function trim(cap)
  local excess = redis.call('ZCARD', KEYS[1]) - tonumber(cap)
  if excess > 0 then
    local dropped = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
    redis.call('HDEL', KEYS[2], unpack(dropped))
  end
end
"""

# Appends one turn. KEYS: order, turns, active. ARGV: entry id, score, turn JSON, cap, channel.
# Returns 1 if stored, 0 if a replay.
_APPEND_BODY = (
    _TRIM
    + """
local function append()
  if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 0 then return 0 end
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('ZADD', KEYS[3], 'GT', ARGV[2], ARGV[5])
  trim(ARGV[4])
  return 1
end
"""
)
_APPEND = _APPEND_BODY + "return append()"

# The newest turns before a new one, then the new one stored. KEYS and ARGV[1..5] as _APPEND;
# ARGV[6]: how many turns of history. Returns {entry ids, their JSON} (the new turn excluded).
_EXCHANGE = (
    _APPEND_BODY
    + """
local limit = tonumber(ARGV[6])
local ids = {}
if limit > 0 then
  local newest = redis.call('ZRANGE', KEYS[1], -(limit + 1), -1)
  for _, id in ipairs(newest) do
    if id ~= ARGV[1] then ids[#ids + 1] = id end
  end
  while #ids > limit do table.remove(ids, 1) end
end
local values = {}
if #ids > 0 then values = redis.call('HMGET', KEYS[2], unpack(ids)) end
append()
return {ids, values}
"""
)

# KEYS: order, turns. ARGV: limit. Returns {entry ids, their JSON (false when missing)}.
_RECENT = """
local ids = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
if #ids == 0 then return {{}, {}} end
return {ids, redis.call('HMGET', KEYS[2], unpack(ids))}
"""

# KEYS: order, turns. ARGV: cutoff (exclusive). Returns {turns removed, turns left}.
_PRUNE = """
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
for i = 1, #old, 500 do
  redis.call('HDEL', KEYS[2], unpack(old, i, math.min(i + 499, #old)))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local left = redis.call('ZCARD', KEYS[1])
if left == 0 then redis.call('DEL', KEYS[2]) end
return {#old, left}
"""

# KEYS: active index. ARGV: channel, cutoff. Forgets the channel unless it was active since.
_FORGET = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) < tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


# Moves a user's own turns (optionally of one personality) to the undo hash. KEYS: order,
# turns, undo. ARGV: user id, personality ('' = all), undo ttl, now. Returns turns moved.
_CLEAR_USER = """
local all = redis.call('HGETALL', KEYS[2])
local moved = {}
for i = 1, #all, 2 do
  local ok, turn = pcall(cjson.decode, all[i + 1])
  if ok and type(turn) == 'table' and turn['user_id'] == ARGV[1]
      and (ARGV[2] == '' or turn['personality'] == ARGV[2]) then
    local score = redis.call('ZSCORE', KEYS[1], all[i])
    local personality = turn['personality']
    if type(personality) ~= 'string' then personality = '' end
    moved[#moved + 1] = {all[i], score or '0', all[i + 1], personality}
  end
end
if #moved == 0 then return 0 end
for _, m in ipairs(moved) do
  redis.call('HDEL', KEYS[2], m[1])
  redis.call('ZREM', KEYS[1], m[1])
end
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode({at = tonumber(ARGV[4]), turns = moved}))
redis.call('EXPIRE', KEYS[3], ARGV[3])
return #moved
"""

# Puts back what a user's last clear removed (optionally only one personality's turns).
# KEYS: order, turns, undo, active. ARGV: user id, personality ('' = all), cap, channel,
# oldest clear time still undoable. Returns turns restored, or -1 when there is nothing to undo.
_UNDO = (
    _TRIM
    + """
local raw = redis.call('HGET', KEYS[3], ARGV[1])
if not raw then return -1 end
local ok, data = pcall(cjson.decode, raw)
if not ok or type(data) ~= 'table' or tonumber(data['at']) < tonumber(ARGV[5]) then
  redis.call('HDEL', KEYS[3], ARGV[1])
  return -1
end
local keep, restored, newest, any = {}, 0, nil, false
for _, m in ipairs(data['turns']) do
  if ARGV[2] == '' or m[4] == ARGV[2] then
    any = true
    if redis.call('HSETNX', KEYS[2], m[1], m[3]) == 1 then
      redis.call('ZADD', KEYS[1], m[2], m[1])
      restored = restored + 1
      local score = tonumber(m[2])
      if newest == nil or score > newest then newest = score end
    end
  else
    keep[#keep + 1] = m
  end
end
if not any then return -1 end
if #keep == 0 then
  redis.call('HDEL', KEYS[3], ARGV[1])
else
  redis.call('HSET', KEYS[3], ARGV[1], cjson.encode({at = data['at'], turns = keep}))
end
if newest ~= nil then
  redis.call('ZADD', KEYS[4], 'GT', newest, ARGV[4])
  trim(ARGV[3])
end
return restored
"""
)

# A turn in the place of another (a regenerated reply): the old one's time kept, or appended
# when it is gone (left as it is when it is already there: a re-run). KEYS: order, turns,
# active. ARGV: old entry, new entry, new score, turn JSON, cap, channel. Returns 1 if it
# replaced a turn.
_REPLACE = (
    _TRIM
    + """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local replaced = 0
if score then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  replaced = 1
elseif redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  return 0
else
  score = ARGV[3]
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[1], score, ARGV[2])
redis.call('ZADD', KEYS[3], 'GT', score, ARGV[6])
trim(ARGV[5])
return replaced
"""
)

# Rewrites a stored turn, only if it is still there. KEYS: turns. ARGV: entry, turn JSON.
_REWRITE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: order, turns. ARGV: entry. Returns 1 if it was there.
_DROP = """
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('HDEL', KEYS[2], ARGV[1])
"""

UNDO_SECONDS = TRANSCRIPT_UNDO.ttl_seconds or 24 * 3600


def _order_key(channel_id: str) -> str:
    return TRANSCRIPT_ORDER.key(channel=channel_id)


def _turns_key(channel_id: str) -> str:
    return TRANSCRIPT_TURNS.key(channel=channel_id)


def _undo_key(channel_id: str) -> str:
    return TRANSCRIPT_UNDO.key(channel=channel_id)


class TranscriptStore:
    """Per-channel transcripts; implements `HistorySource`."""

    def __init__(
        self,
        redis: Redis,
        *,
        max_turns: int = MAX_TURNS,
        max_content_chars: int = MAX_CONTENT_CHARS,
    ) -> None:
        if max_turns < 1 or max_content_chars <= len(TRUNCATION_MARKER):
            raise ValueError("max_turns and max_content_chars are too small")
        self._redis = redis
        self._max_turns = max_turns
        self._max_chars = max_content_chars
        self._append = redis.register_script(_APPEND)
        self._exchange = redis.register_script(_EXCHANGE)
        self._recent = redis.register_script(_RECENT)
        self._prune = redis.register_script(_PRUNE)
        self._forget = redis.register_script(_FORGET)
        self._clear_user = redis.register_script(_CLEAR_USER)
        self._undo = redis.register_script(_UNDO)
        self._replace = redis.register_script(_REPLACE)
        self._rewrite = redis.register_script(_REWRITE)
        self._drop = redis.register_script(_DROP)

    async def append(self, channel_id: str, turn: ChatTurn) -> None:
        """Store a turn; a message id already stored in this channel is not stored again."""
        keys, args = self._append_call(channel_id, turn)
        if not await self._append(keys=keys, args=args):
            log.debug("transcript turn already stored", channel_id=channel_id)

    async def exchange(self, channel_id: str, turn: ChatTurn, limit: int) -> list[ChatTurn]:
        """Up to `limit` of the newest turns before `turn` (oldest first), then `turn` stored:
        one round trip, and the new turn is never read back."""
        keys, args = self._append_call(channel_id, turn)
        limit = max(min(limit, self._max_turns), 0)
        ids, values = await self._exchange(keys=keys, args=[*args, limit])
        turns = (_parse(channel_id, entry, raw) for entry, raw in zip(ids, values, strict=True))
        return [t for t in turns if t is not None]

    def _append_call(
        self, channel_id: str, turn: ChatTurn
    ) -> tuple[list[str], list[str | float | int]]:
        turn = _storable(turn, self._max_chars)
        entry = f"m:{turn.message_id}" if turn.message_id else f"u:{uuid.uuid4().hex}"
        keys = [_order_key(channel_id), _turns_key(channel_id), ACTIVE_KEY]
        args: list[str | float | int] = [
            entry, turn.at.timestamp(), turn.model_dump_json(), self._max_turns, channel_id,
        ]  # fmt: skip
        return keys, args

    # -- replies that replace others, edits and deletions ------------------------------------

    async def exchange_again(
        self, channel_id: str, replaced: str, turn: ChatTurn, limit: int
    ) -> list[ChatTurn]:
        """The history a new reply to an earlier turn reads (Regenerate, an edited trigger):
        up to `limit` of the newest turns before the user's turn `turn` (before the reply
        `reply:{replaced}` when the user's turn has no message id or is gone), without that
        turn and that reply, oldest first. Nothing is stored: the user's turn is already there.
        """
        limit = max(min(limit, self._max_turns), 0)
        if limit == 0:
            return []
        order, turns = _order_key(channel_id), _turns_key(channel_id)
        old_entry = reply_entry(replaced)
        user_entry = f"m:{turn.message_id}" if turn.message_id else None
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zscore(order, user_entry or old_entry)
            pipe.zscore(order, old_entry)
            user_score, reply_score = await pipe.execute()
        cutoff = user_score if user_score is not None else reply_score
        top: str | float = "+inf" if cutoff is None else float(cutoff)
        # A few more than asked: the two left out, and a user turn without an id (see below).
        newest: Any = await self._redis.zrevrangebyscore(order, top, "-inf", start=0,
                                                         num=limit + 3)  # fmt: skip
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in newest]
        ids = [i for i in ids if i not in (old_entry, user_entry)]
        values = await self._redis.hmget(turns, ids) if ids else []
        found = [
            t for entry, raw in zip(ids, values, strict=True)
            if (t := _parse(channel_id, entry, raw)) is not None
        ]  # fmt: skip
        if user_entry is None:
            # /chat: the user's turn has no id; it is the newest of theirs saying the same.
            same = next(
                (t for t in found if t.role == "user" and t.user_id == turn.user_id
                 and t.content == _storable(turn, self._max_chars).content),
                None,
            )  # fmt: skip
            if same is not None:
                found.remove(same)
        return list(reversed(found[:limit]))

    async def replace(self, channel_id: str, replaced_message_id: str, turn: ChatTurn) -> bool:
        """Store `turn` in the place (and at the time) of the turn whose message id is
        `replaced_message_id`; when that one is gone, `turn` is appended. True if replaced."""
        turn = _storable(turn, self._max_chars)
        entry = f"m:{turn.message_id}" if turn.message_id else f"u:{uuid.uuid4().hex}"
        keys = [_order_key(channel_id), _turns_key(channel_id), ACTIVE_KEY]
        args: list[str | float | int] = [
            f"m:{replaced_message_id}", entry, turn.at.timestamp(), turn.model_dump_json(),
            self._max_turns, channel_id,
        ]  # fmt: skip
        return bool(await self._replace(keys=keys, args=args))

    async def turn(self, channel_id: str, message_id: str) -> ChatTurn | None:
        """The stored turn with this message id, if any."""
        entry = f"m:{message_id}"
        raw = await self._redis.hget(_turns_key(channel_id), entry)
        return _parse(channel_id, entry, raw)

    async def edit(self, channel_id: str, message_id: str, content: str) -> bool:
        """The turn with this message id now says `content` (its author edited it); False
        when no such turn is stored."""
        current = await self.turn(channel_id, message_id)
        if current is None:
            return False
        edited = _storable(current.model_copy(update={"content": content}), self._max_chars)
        keys = [_turns_key(channel_id)]
        return bool(await self._rewrite(keys=keys, args=[f"m:{message_id}",
                                                          edited.model_dump_json()]))  # fmt: skip

    async def drop(self, channel_id: str, message_id: str) -> bool:
        """Remove the turn with this message id (a deleted trigger; `reply:{job id}` for a
        deleted reply); False when it was not there."""
        keys = [_order_key(channel_id), _turns_key(channel_id)]
        return bool(await self._drop(keys=keys, args=[f"m:{message_id}"]))

    async def recent(self, channel_id: str, limit: int) -> list[ChatTurn]:
        """Up to `limit` of the channel's newest turns, oldest first; unreadable ones skipped."""
        limit = min(limit, self._max_turns)
        if limit <= 0:
            return []
        keys = [_order_key(channel_id), _turns_key(channel_id)]
        ids, values = await self._recent(keys=keys, args=[limit])
        turns = (_parse(channel_id, entry, raw) for entry, raw in zip(ids, values, strict=True))
        return [turn for turn in turns if turn is not None]

    async def clear(self, channel_id: str, personality: str | None = None) -> int:
        """Remove the channel's turns, or only those of `personality` (its replies and the
        user turns addressed to it); returns how many were removed."""
        order, turns = _order_key(channel_id), _turns_key(channel_id)
        if personality is None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hlen(turns)
                pipe.delete(order, turns, _undo_key(channel_id))
                removed, _ = await pipe.execute()
            return int(removed)
        entries = await self._redis.hgetall(turns)
        doomed = [
            entry
            for entry, raw in entries.items()
            if (turn := _parse(channel_id, entry, raw)) is not None
            and turn.personality == personality
        ]
        if not doomed:
            return 0
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(order, *doomed)
            pipe.hdel(turns, *doomed)
            _, removed = await pipe.execute()
        return int(removed)

    async def clear_user(
        self, channel_id: str, user_id: str, personality: str | None = None
    ) -> int:
        """Remove the user's own turns in the channel (their messages and the replies to
        them; only `personality`'s when given), keeping them for `undo`; returns how many.
        Removing nothing keeps the previous undo data."""
        keys = [_order_key(channel_id), _turns_key(channel_id), _undo_key(channel_id)]
        args: list[str | int | float] = [user_id, personality or "", UNDO_SECONDS, time.time()]
        return int(await self._clear_user(keys=keys, args=args))

    async def undo(
        self, channel_id: str, user_id: str, personality: str | None = None
    ) -> int | None:
        """Put back what the user's last `clear_user` here removed (only `personality`'s
        turns when given); returns how many, or None when there is nothing to undo."""
        keys = [_order_key(channel_id), _turns_key(channel_id), _undo_key(channel_id), ACTIVE_KEY]
        oldest = time.time() - UNDO_SECONDS
        args: list[str | int | float] = [
            user_id, personality or "", self._max_turns, channel_id, oldest,
        ]  # fmt: skip
        restored = int(await self._undo(keys=keys, args=args))
        return None if restored < 0 else restored

    async def user_turns(
        self, channel_id: str, user_id: str, personality: str | None = None
    ) -> list[ChatTurn]:
        """The user's own turns in the channel (theirs and the replies to them), oldest
        first; only `personality`'s when given."""
        return [
            turn
            for turn in await self.recent(channel_id, self._max_turns)
            if turn.user_id == user_id and (personality is None or turn.personality == personality)
        ]

    async def prune(self, older_than: datetime) -> int:
        """Drop every turn older than `older_than`, forget channels left empty; returns the
        number of turns dropped. Visits the channels in the activity index, nothing else."""
        cutoff = _aware(older_than).timestamp()
        removed = forgotten = 0
        batch: list[str] = []
        async for member, _ in self._redis.zscan_iter(ACTIVE_KEY, count=_PRUNE_BATCH):
            batch.append(member.decode() if isinstance(member, bytes) else str(member))
            if len(batch) >= _PRUNE_BATCH:
                dropped, gone = await self._prune_batch(batch, cutoff)
                removed, forgotten, batch = removed + dropped, forgotten + gone, []
        if batch:
            dropped, gone = await self._prune_batch(batch, cutoff)
            removed, forgotten = removed + dropped, forgotten + gone
        log.info("transcripts pruned", turns_removed=removed, channels_forgotten=forgotten)
        return removed

    async def _prune_batch(self, channels: Sequence[str], cutoff: float) -> tuple[int, int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel in channels:
                keys = [_order_key(channel), _turns_key(channel)]
                await self._prune(keys=keys, args=[repr(cutoff)], client=pipe)
            results: list[list[int]] = await pipe.execute()
        empty = [channel for channel, (_, left) in zip(channels, results, strict=True) if not left]
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel in empty:
                await self._forget(keys=[ACTIVE_KEY], args=[channel, repr(cutoff)], client=pipe)
            forgotten: list[int] = await pipe.execute()
        return sum(dropped for dropped, _ in results), sum(forgotten)


def reply_entry(job_id: str) -> str:
    """The entry id of a reply's turn (the generator stores it as message id `reply:{job}`)."""
    return f"m:{reply_message_id(job_id)}"


def reply_message_id(job_id: str) -> str:
    return f"reply:{job_id}"


def retention_task(store: TranscriptStore, days: int) -> CronTask:
    """A daily cron task dropping transcript turns older than `days`, counted from the tick."""

    if days < 1:
        raise ValueError("transcript retention must be at least one day")

    async def run(tick: int) -> int:
        now = datetime.fromtimestamp(tick, UTC) if tick > 0 else datetime.now(UTC)
        return await store.prune(now - timedelta(days=days))

    return CronTask(name="transcript-retention", schedule=RETENTION_SCHEDULE, run=run)


def _parse(channel_id: str, entry: Any, raw: bytes | str | None) -> ChatTurn | None:
    if raw is None:  # removed between reading the order and the turns; not an error
        return None
    try:
        return ChatTurn.model_validate_json(raw)
    except ValidationError as error:
        log.warning(
            "unreadable transcript entry skipped",
            channel_id=channel_id,
            entry=entry.decode(errors="replace") if isinstance(entry, bytes) else str(entry),
            error=error.errors(include_url=False, include_input=False)[:1],
        )
        return None


def _storable(turn: ChatTurn, max_chars: int) -> ChatTurn:
    """The turn as it can be stored: UTF-8-safe text, content cut to size, time zone-aware."""
    content = _utf8_safe(turn.content)
    if len(content) > max_chars:
        content = content[: max_chars - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER
    return turn.model_copy(
        update={
            "speaker": _utf8_safe(turn.speaker),
            "content": content,
            "at": _aware(turn.at),
            "personality": _maybe_utf8_safe(turn.personality),
            "user_id": _maybe_utf8_safe(turn.user_id),
            "message_id": _maybe_utf8_safe(turn.message_id),
        }
    )


def _utf8_safe(text: str) -> str:
    """Lone surrogates (from broken clients) become U+FFFD; valid pairs are joined."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _maybe_utf8_safe(text: str | None) -> str | None:
    return None if text is None else _utf8_safe(text)


def _aware(moment: datetime) -> datetime:
    """Naive times are taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
