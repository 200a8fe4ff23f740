"""Memories and their embeddings in Redis, searched by exact cosine similarity with NumPy.

Keys of a scope (families in tzurot.infra.keys; `{<scope>}` is a hash tag, `user:slug`):
  tzurot:memory:{<scope>}:vectors  string: float32 rows, slot i at byte i * dim * 4
  tzurot:memory:{<scope>}:slots    list: slot i -> `memory id|venue`, "" when free
  tzurot:memory:{<scope>}:records  hash: memory id -> the MemoryRecord as JSON, plus its slot
  tzurot:memory:{<scope>}:order    sorted set: memory id by time (browse, eviction)
  tzurot:memory:{<scope>}:info     hash: model, dim, epoch, version, log:0..log:31
  tzurot:memory:{<scope>}:free     list: freed slots, reused before the blob grows

Every write is one Lua script. A write that changes vectors or slots bumps `version` and notes
the slots it touched in `log:{version % 32}`, so a process holding the scope in its cache
catches up by reading only those rows (one round trip); one further behind, or after a model
change, reads the whole scope again. `epoch` is new whenever the scope is created again (after
a purge), so a version number is never mistaken for an older scope's. Locking does not touch
vectors, so it leaves the version alone.

The in-process cache is only a cache: every search first asks Redis for the version.
"""

from __future__ import annotations

import json
import math
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog
from pydantic import ValidationError
from redis.asyncio import Redis

from tzurot.infra.keys import (
    MEMORY_FREE,
    MEMORY_INFO,
    MEMORY_ORDER,
    MEMORY_RECORDS,
    MEMORY_SLOTS,
    MEMORY_VECTORS,
)
from tzurot.memory.models import MemoryRecord, MemoryScope, Recalled

log = structlog.get_logger(__name__)

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
MAX_DIM = 8192
MAX_MODEL_CHARS = 200
LOG_SLOTS = 32  # writes a cached scope can fall behind and still catch up row by row
_LOG_MAX_TOUCHED = 64  # a write touching more slots than this asks readers to reload

Vector = npt.NDArray[np.float32]


class ModelMismatch(Exception):
    """The scope's memories were embedded with another model (or dimension)."""

    def __init__(self, stored_model: str, stored_dim: int, model: str, dim: int) -> None:
        super().__init__(
            f"the scope's memories use {stored_model} ({stored_dim}-d), not {model} ({dim}-d)"
        )
        self.stored_model = stored_model
        self.stored_dim = stored_dim
        self.model = model
        self.dim = dim


class VectorStore(ABC):
    """Memories of one scope with their embeddings."""

    @abstractmethod
    async def add(
        self, scope: MemoryScope, record: MemoryRecord, vector: npt.ArrayLike, *, model: str,
        cap: int,
    ) -> list[str]:  # fmt: skip
        """Store a memory (an id already stored is left as it is); returns the ids dropped to
        keep the scope within `cap` (the oldest unlocked first, possibly `record` itself)."""

    @abstractmethod
    async def search(
        self, scope: MemoryScope, vector: npt.ArrayLike, *, model: str, limit: int,
        threshold: float, venues: Collection[str] | None, exclude_sources: Collection[str] = (),
    ) -> list[Recalled]:  # fmt: skip
        """Up to `limit` memories at least `threshold` similar, best first; `venues` None means
        every venue; memories sharing a source with `exclude_sources` are left out. A scope
        embedded with another model has nothing to recall."""

    @abstractmethod
    async def get(self, scope: MemoryScope, memory_id: str) -> MemoryRecord | None: ...

    @abstractmethod
    async def page(
        self, scope: MemoryScope, *, offset: int, limit: int,
        venues: Collection[str] | None = None,
    ) -> tuple[list[MemoryRecord], int]:  # fmt: skip
        """Newest first, and how many there are (of `venues`, when given)."""

    @abstractmethod
    async def delete(self, scope: MemoryScope, memory_id: str) -> bool: ...

    @abstractmethod
    async def purge(self, scope: MemoryScope) -> int:
        """Remove every memory and key of the scope; returns how many memories there were."""

    @abstractmethod
    async def count(self, scope: MemoryScope) -> int: ...

    @abstractmethod
    async def set_locked(self, scope: MemoryScope, memory_id: str, locked: bool) -> bool:
        """False when there is no such (readable) memory."""

    @abstractmethod
    async def model_of(self, scope: MemoryScope) -> str | None: ...


# Shared by the writing scripts. KEYS: info, slots, vectors, records, order, free.
_COMMON = """
local function slot_of(id, raw)
  local prefix = id .. '|'
  local ok, rec = pcall(cjson.decode, raw or '')
  local slot = ok and type(rec) == 'table' and tonumber(rec['slot']) or nil
  if slot then
    local entry = redis.call('LINDEX', KEYS[2], slot)
    if entry and string.sub(entry, 1, #prefix) == prefix then return slot end
  end
  for i, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    if string.sub(entry, 1, #prefix) == prefix then return i - 1 end
  end
  return nil
end

-- Drops a memory: its slot is emptied (the row zeroed) and queued for reuse.
local function forget(id, raw, width, touched)
  local slot = slot_of(id, raw)
  if slot then
    redis.call('LSET', KEYS[2], slot, '')
    if (slot + 1) * width <= redis.call('STRLEN', KEYS[3]) then
      redis.call('SETRANGE', KEYS[3], slot * width, string.rep(string.char(0), width))
    end
    redis.call('RPUSH', KEYS[6], slot)
    touched[#touched + 1] = slot
  end
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
end

local function bump(touched, reset)
  local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
  local note = tostring(version)
  if reset or #touched > LOG_MAX_TOUCHED then
    note = note .. ' *'
  else
    for _, slot in ipairs(touched) do note = note .. ' ' .. slot end
  end
  redis.call('HSET', KEYS[1], 'log:' .. (version % LOG_SLOTS), note)
  return version
end
""".replace("LOG_MAX_TOUCHED", str(_LOG_MAX_TOUCHED)).replace("LOG_SLOTS", str(LOG_SLOTS))

# ARGV: id, venue, score, record JSON (an object), vector bytes, model, dim, cap, new epoch,
# locked (1/0). Returns {1, dropped ids...}, {2} (already stored) or {0, stored model, dim}.
_ADD = (
    _COMMON
    + """
local id, venue, score, model = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[6]
local dim, cap, locked = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[10] == '1'
local width = dim * 4
local reset = false
local stored = redis.call('HMGET', KEYS[1], 'model', 'dim')
if not stored[1] then  -- a new scope (or one whose info was lost: start it afresh)
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
  redis.call('HSET', KEYS[1], 'model', model, 'dim', dim, 'epoch', ARGV[9], 'version', 0)
elseif stored[1] ~= model or tonumber(stored[2]) ~= dim then
  if redis.call('HLEN', KEYS[4]) > 0 then return {0, stored[1], stored[2]} end
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[5], KEYS[6])  -- an empty scope takes the new model
  redis.call('HSET', KEYS[1], 'model', model, 'dim', dim, 'epoch', ARGV[9])
  reset = true
end
if redis.call('HEXISTS', KEYS[4], id) == 1 then return {2} end

-- Make room first (so the blob never holds more than `cap` rows): the oldest unlocked go,
-- and the new memory itself when it is older than every unlocked one left.
local touched, dropped = {}, {1}
local excess = redis.call('HLEN', KEYS[4]) + 1 - cap
local skipped = 0
while excess > 0 do
  local batch = redis.call('ZRANGE', KEYS[5], skipped, skipped + 63, 'WITHSCORES')
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    if excess <= 0 then break end
    local victim = batch[i]
    if not locked and score < tonumber(batch[i + 1]) then
      if #touched > 0 then bump(touched, reset) end
      dropped[#dropped + 1] = id
      return dropped
    end
    local raw = redis.call('HGET', KEYS[4], victim)
    local ok, rec = pcall(cjson.decode, raw or '')
    if ok and type(rec) == 'table' and rec['locked'] == true then
      skipped = skipped + 1
    else
      forget(victim, raw, width, touched)
      dropped[#dropped + 1] = victim
      excess = excess - 1
    end
  end
end
if excess > 0 and not locked then  -- every other memory is locked
  if #touched > 0 or reset then bump(touched, reset) end
  dropped[#dropped + 1] = id
  return dropped
end

local count = redis.call('LLEN', KEYS[2])
local slot = nil
while not slot do
  local free = redis.call('RPOP', KEYS[6])
  if not free then break end
  free = tonumber(free)
  if free and free >= 0 and free < count and redis.call('LINDEX', KEYS[2], free) == '' then
    slot = free
  end
end
local entry = id .. '|' .. venue
if slot then
  redis.call('SETRANGE', KEYS[3], slot * width, ARGV[5])
  redis.call('LSET', KEYS[2], slot, entry)
else
  if redis.call('STRLEN', KEYS[3]) ~= count * width then
    return redis.error_reply('memory vectors of ' .. KEYS[3] .. ' do not match its slots')
  end
  slot = count
  redis.call('APPEND', KEYS[3], ARGV[5])
  redis.call('RPUSH', KEYS[2], entry)
end
redis.call('HSET', KEYS[4], id, '{"slot":' .. slot .. ',' .. string.sub(ARGV[4], 2))
redis.call('ZADD', KEYS[5], score, id)
touched[#touched + 1] = slot
bump(touched, reset)
return dropped
"""
)

# ARGV: id. Returns 1 when removed, 0 when there was no such memory.
_DELETE = (
    _COMMON
    + """
local raw = redis.call('HGET', KEYS[4], ARGV[1])
if not raw then return 0 end
local touched = {}
forget(ARGV[1], raw, (tonumber(redis.call('HGET', KEYS[1], 'dim')) or 0) * 4, touched)
bump(touched, false)
return 1
"""
)

# Returns how many memories there were.
_PURGE = """
local n = redis.call('HLEN', KEYS[4])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return n
"""

# KEYS: records. ARGV: id, the JSON read, the JSON to write. 1 written, 0 gone, -1 changed.
_SWAP = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
if current ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""

# Read-only. KEYS: info, slots, vectors. ARGV: the cached epoch and version.
# Returns {0} (no scope), {1, model, dim, epoch, version} (read it all again),
# {2, model, dim, epoch, version} (unchanged) or
# {3, model, dim, epoch, version, slot count, {slot, entry, row}...} (the rows that changed).
_SYNC = """
local info = redis.call('HMGET', KEYS[1], 'model', 'dim', 'epoch', 'version')
if not info[1] or not info[2] or not info[3] or not info[4] then return {0} end
local head = {info[1], info[2], info[3], info[4]}
local have, version = tonumber(ARGV[2]), tonumber(info[4])
local function reload() return {1, head[1], head[2], head[3], head[4]} end
if info[3] ~= ARGV[1] or not have or have > version or version - have > LOG_SLOTS then
  return reload()
end
if have == version then return {2, head[1], head[2], head[3], head[4]} end
local slots, seen = {}, {}
for v = have + 1, version do
  local note = redis.call('HGET', KEYS[1], 'log:' .. (v % LOG_SLOTS))
  if not note then return reload() end
  local first = true
  for token in string.gmatch(note, '%S+') do
    if first then
      if tonumber(token) ~= v then return reload() end
      first = false
    elseif token == '*' then
      return reload()
    elseif not seen[token] then
      seen[token] = true
      slots[#slots + 1] = tonumber(token)
    end
  end
end
local width = tonumber(info[2]) * 4
local reply = {3, head[1], head[2], head[3], head[4], redis.call('LLEN', KEYS[2])}
for _, slot in ipairs(slots) do
  reply[#reply + 1] = slot
  reply[#reply + 1] = redis.call('LINDEX', KEYS[2], slot) or ''
  reply[#reply + 1] = redis.call('GETRANGE', KEYS[3], slot * width, (slot + 1) * width - 1)
end
return reply
""".replace("LOG_SLOTS", str(LOG_SLOTS))

# KEYS: order, records, slots. ARGV: offset, limit, venue count (-1: every venue), venues...
# Returns {total, ids, their JSON}.
_PAGE = """
local offset, limit, wanted_n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ids, total = {}, 0
if wanted_n < 0 then
  total = redis.call('ZCARD', KEYS[1])
  if limit > 0 then ids = redis.call('ZREVRANGE', KEYS[1], offset, offset + limit - 1) end
else
  local wanted, member = {}, {}
  for i = 1, wanted_n do wanted[ARGV[3 + i]] = true end
  for _, entry in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
    local bar = string.find(entry, '|', 1, true)
    if bar and wanted[string.sub(entry, bar + 1)] then
      member[string.sub(entry, 1, bar - 1)] = true
    end
  end
  for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
    if member[id] then
      total = total + 1
      if total > offset and #ids < limit then ids[#ids + 1] = id end
    end
  end
end
local values = {}
for i = 1, #ids, 1000 do  -- unpack() takes a few thousand values at most
  local chunk = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
  for j = 1, #chunk do values[#values + 1] = chunk[j] end
end
return {total, ids, values}
"""


@dataclass
class _Snapshot:
    """A scope's vectors as of one version: rows[:n] by slot, codes[i] its venue (-1: free)."""

    model: str
    dim: int
    epoch: bytes
    version: int
    rows: Vector
    codes: npt.NDArray[np.int32]
    ids: list[str]
    venue_codes: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return int(self.rows.nbytes + self.codes.nbytes) + 96 * len(self.ids)

    def set_slot(self, slot: int, entry: bytes, row: bytes) -> bool:
        """Apply one changed slot; False when the reply does not fit (reload instead)."""
        if slot < 0 or slot > self.n or len(row) != self.dim * 4:
            return False
        if slot == self.n:
            if slot >= self.rows.shape[0]:
                self._grow(slot + 1)
            self.ids.append("")
        memory_id, venue = _split_entry(entry)
        self.ids[slot] = memory_id
        self.codes[slot] = self.code_of(venue) if memory_id else -1
        self.rows[slot] = np.frombuffer(row, dtype="<f4")
        return True

    def _grow(self, needed: int) -> None:
        capacity = max(needed, self.rows.shape[0] + self.rows.shape[0] // 4 + 16)
        rows = np.zeros((capacity, self.dim), dtype=np.float32)
        rows[: self.n] = self.rows[: self.n]
        codes = np.full(capacity, -1, dtype=np.int32)
        codes[: self.n] = self.codes[: self.n]
        self.rows, self.codes = rows, codes

    def code_of(self, venue: str) -> int:
        return self.venue_codes.setdefault(venue, len(self.venue_codes))


class RedisVectorStore(VectorStore):
    """The Redis adapter; `cache_bytes` bounds the in-process cache of scopes' vectors."""

    def __init__(self, redis: Redis, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._redis = redis
        self._cache_bytes = max(cache_bytes, 0)
        self._cache: OrderedDict[str, _Snapshot] = OrderedDict()
        self._cached_bytes = 0
        self._add = redis.register_script(_ADD)
        self._delete = redis.register_script(_DELETE)
        self._purge = redis.register_script(_PURGE)
        self._swap = redis.register_script(_SWAP)
        self._sync = redis.register_script(_SYNC)
        self._page = redis.register_script(_PAGE)

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    async def add(
        self, scope: MemoryScope, record: MemoryRecord, vector: npt.ArrayLike, *, model: str,
        cap: int,
    ) -> list[str]:  # fmt: skip
        query = _as_vector(vector)
        _check_model(model)
        if cap < 1:
            raise ValueError("a memory cap is at least 1")
        at = record.at if record.at.tzinfo is not None else record.at.replace(tzinfo=UTC)
        args: list[str | int | bytes] = [
            record.id, record.venue, repr(at.timestamp()), record.model_dump_json(),
            query.tobytes(), model, query.shape[0], cap, uuid.uuid4().hex,
            1 if record.locked else 0,
        ]  # fmt: skip
        reply = await self._add(keys=_keys(scope), args=args)
        status = int(reply[0])
        if status == 0:
            raise ModelMismatch(_text(reply[1]), int(reply[2]), model, query.shape[0])
        return [_text(memory_id) for memory_id in reply[1:]]

    async def search(
        self, scope: MemoryScope, vector: npt.ArrayLike, *, model: str, limit: int,
        threshold: float, venues: Collection[str] | None, exclude_sources: Collection[str] = (),
    ) -> list[Recalled]:  # fmt: skip
        query = _as_vector(vector)
        if limit <= 0 or (venues is not None and not venues):
            return []
        snapshot = await self._snapshot(scope)
        if snapshot is None or snapshot.model != model or snapshot.n == 0:
            return []
        if query.shape[0] != snapshot.dim:
            raise ValueError(f"a {snapshot.dim}-d query is needed, not {query.shape[0]}-d")
        n = snapshot.n
        codes = snapshot.codes[:n]
        if venues is None:
            mask = codes >= 0
        else:
            wanted = [snapshot.venue_codes[v] for v in venues if v in snapshot.venue_codes]
            if not wanted:
                return []
            mask = np.isin(codes, np.asarray(wanted, dtype=np.int32))
        similarities = snapshot.rows[:n] @ query
        mask &= similarities >= np.float32(threshold)
        candidates = np.flatnonzero(mask)
        ids = [snapshot.ids[i] for i in candidates]  # taken now: the cache may change later
        return await self._pick(
            scope, candidates, ids, similarities[candidates], limit, set(exclude_sources)
        )

    async def _pick(
        self,
        scope: MemoryScope,
        candidates: npt.NDArray[np.intp],
        ids: list[str],
        similarities: Vector,
        limit: int,
        exclude: set[str],
    ) -> list[Recalled]:
        """The best `limit` candidates whose records are readable and not excluded; reads
        the records of a batch of the best at a time (one HMGET when few are left out)."""
        found: list[Recalled] = []
        batch = limit + min(len(exclude), 4 * limit) + 2
        if len(candidates) > batch:
            order = np.argpartition(-similarities, batch - 1)[:batch]
            order = order[np.argsort(-similarities[order], kind="stable")]
        else:
            order = np.argsort(-similarities, kind="stable")
        tried: set[int] = set()
        while len(tried) < len(candidates) and len(found) < limit:
            if len(tried) >= len(order):  # the best batch was not enough: rank them all
                order = np.argsort(-similarities, kind="stable")
            chosen = [int(i) for i in order if int(i) not in tried][:batch]
            tried.update(chosen)
            batch *= 2
            raws = await self._redis.hmget(_records_key(scope), [ids[i] for i in chosen])
            for i, raw in zip(chosen, raws, strict=True):
                record = _parse(scope, ids[i], raw)
                if record is None or record.id != ids[i] or exclude.intersection(record.sources):
                    continue
                similarity = min(max(float(similarities[i]), -1.0), 1.0)
                found.append(Recalled(record=record, similarity=similarity))
                if len(found) >= limit:
                    break
        return found

    async def _snapshot(self, scope: MemoryScope) -> _Snapshot | None:
        """The scope's vectors as of now: from the cache when unchanged, caught up from the
        write log when a little behind, else read whole."""
        cached = self._cache.get(scope.key)
        if cached is None:
            return await self._load(scope)
        have = cached.version
        reply = await self._sync(keys=_keys(scope)[:3], args=[cached.epoch, have])
        status = int(reply[0])
        if status == 0:
            self._forget(scope.key)
            return None
        if status == 1:
            return await self._load(scope)
        version = int(reply[4])
        current = self._cache.get(scope.key)
        if current is None or current.epoch != _bytes(reply[3]):
            return await self._load(scope)
        if current.version >= version:  # another search caught up meanwhile
            self._cache.move_to_end(scope.key)
            return current
        if current.version != have or status != 3:
            return await self._load(scope)
        before = current.nbytes
        changed = sorted(
            (int(reply[i]), _bytes(reply[i + 1]), _bytes(reply[i + 2]))
            for i in range(6, len(reply), 3)
        )
        fits = all(current.set_slot(*change) for change in changed)
        if not fits or current.n != int(reply[5]):
            self._forget(scope.key)
            return await self._load(scope)
        current.version = version
        self._cached_bytes += current.nbytes - before
        self._cache.move_to_end(scope.key)
        self._trim()
        return current

    async def _load(self, scope: MemoryScope) -> _Snapshot | None:
        info, slots, vectors = _keys(scope)[:3]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(info, ["model", "dim", "epoch", "version"])
            pipe.get(vectors)
            pipe.lrange(slots, 0, -1)
            (model, dim, epoch, version), blob, entries = await pipe.execute()
        if model is None or dim is None or epoch is None or version is None:
            self._forget(scope.key)
            return None
        snapshot = _build(
            scope, _text(model), int(dim), _bytes(epoch), int(version), blob or b"", entries
        )
        self._put(scope.key, snapshot)
        return snapshot

    def _put(self, key: str, snapshot: _Snapshot) -> None:
        self._forget(key)
        if snapshot.nbytes > self._cache_bytes:
            return
        self._cache[key] = snapshot
        self._cached_bytes += snapshot.nbytes
        self._trim()

    def _trim(self) -> None:
        while self._cached_bytes > self._cache_bytes and self._cache:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= dropped.nbytes

    def _forget(self, key: str) -> None:
        dropped = self._cache.pop(key, None)
        if dropped is not None:
            self._cached_bytes -= dropped.nbytes

    async def get(self, scope: MemoryScope, memory_id: str) -> MemoryRecord | None:
        raw = await self._redis.hget(_records_key(scope), memory_id)
        return _parse(scope, memory_id, raw)

    async def page(
        self, scope: MemoryScope, *, offset: int, limit: int,
        venues: Collection[str] | None = None,
    ) -> tuple[list[MemoryRecord], int]:  # fmt: skip
        wanted = [] if venues is None else sorted(set(venues))
        args: list[str | int] = [
            max(offset, 0), max(limit, 0),
            -1 if venues is None else len(wanted), *wanted,
        ]  # fmt: skip
        keys = [MEMORY_ORDER.key(scope=scope.key), _records_key(scope), _keys(scope)[1]]
        total, ids, raws = await self._page(keys=keys, args=args)
        records = (_parse(scope, _text(i), raw) for i, raw in zip(ids, raws, strict=True))
        return [record for record in records if record is not None], int(total)

    async def delete(self, scope: MemoryScope, memory_id: str) -> bool:
        return bool(await self._delete(keys=_keys(scope), args=[memory_id]))

    async def purge(self, scope: MemoryScope) -> int:
        self._forget(scope.key)
        return int(await self._purge(keys=_keys(scope)))

    async def count(self, scope: MemoryScope) -> int:
        return int(await self._redis.hlen(_records_key(scope)))

    async def set_locked(self, scope: MemoryScope, memory_id: str, locked: bool) -> bool:
        key = _records_key(scope)
        for _ in range(5):  # compare-and-swap: a concurrent write to the record retries
            raw = await self._redis.hget(key, memory_id)
            if raw is None or _parse(scope, memory_id, raw) is None:
                return False
            data = json.loads(raw)
            if data.get("locked") is locked:
                return True
            data["locked"] = locked
            new = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            swapped = int(await self._swap(keys=[key], args=[memory_id, raw, new]))
            if swapped >= 0:
                return swapped == 1
        raise RuntimeError("the memory kept changing while its lock was being set")

    async def model_of(self, scope: MemoryScope) -> str | None:
        model = await self._redis.hget(MEMORY_INFO.key(scope=scope.key), "model")
        return None if model is None else _text(model)


def _keys(scope: MemoryScope) -> list[str]:
    """In the order the scripts take them: info, slots, vectors, records, order, free."""
    parts = {"scope": scope.key}
    return [
        MEMORY_INFO.key(**parts), MEMORY_SLOTS.key(**parts), MEMORY_VECTORS.key(**parts),
        MEMORY_RECORDS.key(**parts), MEMORY_ORDER.key(**parts), MEMORY_FREE.key(**parts),
    ]  # fmt: skip


def _records_key(scope: MemoryScope) -> str:
    return MEMORY_RECORDS.key(scope=scope.key)


def _build(
    scope: MemoryScope,
    model: str,
    dim: int,
    epoch: bytes,
    version: int,
    blob: bytes,
    entries: Sequence[bytes],
) -> _Snapshot:
    width = dim * 4
    n = len(entries)
    if dim < 1 or len(blob) != n * width:
        log.warning(
            "memory vectors do not match their slots",
            scope=scope.key, dim=dim, slots=n, vector_bytes=len(blob),
        )  # fmt: skip
        n = min(n, len(blob) // width) if dim >= 1 else 0
    rows = np.frombuffer(blob, dtype="<f4", count=n * dim).reshape(n, dim).astype(np.float32)
    snapshot = _Snapshot(
        model=model, dim=dim, epoch=epoch, version=version, rows=rows,
        codes=np.full(n, -1, dtype=np.int32), ids=[""] * n,
    )  # fmt: skip
    for slot, entry in enumerate(entries[:n]):
        memory_id, venue = _split_entry(entry)
        if memory_id:
            snapshot.ids[slot] = memory_id
            snapshot.codes[slot] = snapshot.code_of(venue)
    return snapshot


def _as_vector(vector: npt.ArrayLike) -> Vector:
    """A finite 1-d vector, L2-normalised, as little-endian float32; else ValueError."""
    array = np.asarray(vector, dtype=np.float64)
    if array.ndim != 1 or not 1 <= array.shape[0] <= MAX_DIM:
        raise ValueError(f"a vector is one row of 1 to {MAX_DIM} numbers, not {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("a vector must not hold NaN or infinity")
    norm = float(np.linalg.norm(array))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError("a vector must not be all zeros")
    return (array / norm).astype("<f4")


def _check_model(model: str) -> None:
    if not model or len(model) > MAX_MODEL_CHARS:
        raise ValueError(f"an embedding model is named in 1 to {MAX_MODEL_CHARS} characters")


def _split_entry(entry: bytes) -> tuple[str, str]:
    memory_id, _, venue = entry.decode("utf-8", "replace").partition("|")
    return memory_id, venue


def _parse(scope: MemoryScope, memory_id: str, raw: Any) -> MemoryRecord | None:
    if raw is None:  # removed between reading the slots and the records; not an error
        return None
    try:
        return MemoryRecord.model_validate_json(raw)
    except ValidationError as error:
        log.warning(
            "unreadable memory skipped",
            scope=scope.key,
            memory_id=memory_id,
            error=error.errors(include_url=False, include_input=False)[:1],
        )
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
