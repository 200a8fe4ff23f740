"""Personalities in Redis, found by name, slug, display name or alias.

Keys (owned by this module; families in tzurot.infra.keys):
  tzurot:personality:{slug}    JSON of one `Personality`
  tzurot:personality-index     hash: every normalized ref -> slug
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import structlog
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import WatchError

from tzurot.infra.keys import PERSONALITY, PERSONALITY_INDEX
from tzurot.personalities.loader import LoadProblem, LoadResult, load_directory
from tzurot.personalities.models import Personality, normalize_ref, validation_messages

log = structlog.get_logger(__name__)

INDEX_KEY = PERSONALITY_INDEX.key()

# KEYS: index. ARGV: refs in lookup form, the data key prefix. Returns, per ref, the
# personality's JSON or false: any number of candidate names in one round trip.
_FIND_MANY = """
local found = {}
for i, ref in ipairs(ARGV) do
  if i > 1 then
    local slug = redis.call('HGET', KEYS[1], ref)
    found[i - 1] = slug and redis.call('GET', ARGV[1] .. slug) or false
  end
end
return found
"""


def _key(slug: str) -> str:
    return PERSONALITY.key(slug=slug)


def _lookup_form(ref: str) -> str:
    # People type "@Lilith" because that is how they summon her in chat.
    return normalize_ref(ref.strip().removeprefix("@"))


class PersonalityConflict(Exception):
    """A name, slug or alias is already used by another personality."""

    def __init__(self, ref: str, owner_slug: str) -> None:
        super().__init__(f"{ref!r} is already used by the personality {owner_slug!r}")
        self.ref = ref
        self.owner_slug = owner_slug


class PersonalityDirectory(Protocol):
    """What consumers need: read-only lookups."""

    async def get(self, ref: str) -> Personality | None: ...

    async def find_many(self, refs: Sequence[str]) -> dict[str, Personality]: ...

    async def list(self) -> builtins.list[Personality]: ...


class PersonalityStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._find_many = redis.register_script(_FIND_MANY)

    async def upsert(self, personality: Personality) -> None:
        """Create or replace the personality with this slug, and re-point its refs to it.

        Raises `PersonalityConflict` when one of its refs belongs to another personality.
        """
        slug = personality.slug
        new_refs = personality.refs()
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(INDEX_KEY, _key(slug))
                    index = _decode_index(await pipe.hgetall(INDEX_KEY))
                    for ref in sorted(new_refs):
                        owner = index.get(ref)
                        if owner is not None and owner != slug:
                            raise PersonalityConflict(ref, owner)
                    stale = [ref for ref, owner in index.items() if owner == slug]
                    stale = [ref for ref in stale if ref not in new_refs]
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(_key(slug), personality.model_dump_json())
                    if stale:
                        pipe.hdel(INDEX_KEY, *stale)
                    pipe.hset(INDEX_KEY, mapping=dict.fromkeys(new_refs, slug))
                    await pipe.execute()
                    return
                except WatchError:
                    continue  # someone changed the index meanwhile; look again

    async def get(self, ref: str) -> Personality | None:
        """By name, slug, display name or alias; case-insensitive; a leading '@' is fine."""
        slug = await self._redis.hget(INDEX_KEY, _lookup_form(ref))
        if slug is None:
            return None
        key = _key(_text(slug))
        return _parse(key, await self._redis.get(key))

    async def find_many(self, refs: Sequence[str]) -> dict[str, Personality]:
        """The personalities `refs` name (each as `get` would find it), in one round trip;
        refs that name nobody are left out."""
        unique = list(dict.fromkeys(refs))
        if not unique:
            return {}
        prefix = _key("")
        raws = await self._find_many(
            keys=[INDEX_KEY], args=[prefix, *(_lookup_form(ref) for ref in unique)]
        )
        found = {}
        for ref, raw in zip(unique, raws, strict=True):
            personality = _parse(f"{prefix}({ref})", raw or None)
            if personality is not None:
                found[ref] = personality
        return found

    async def list(self) -> builtins.list[Personality]:
        """Every readable personality, sorted by name."""
        slugs = sorted({_text(slug) for slug in await self._redis.hvals(INDEX_KEY)})
        if not slugs:
            return []
        keys = [_key(slug) for slug in slugs]
        values = await self._redis.mget(keys)
        found = [_parse(key, raw) for key, raw in zip(keys, values, strict=True)]
        return sorted(
            (p for p in found if p is not None), key=lambda p: (normalize_ref(p.name), p.slug)
        )

    async def delete(self, ref: str) -> bool:
        """Remove the personality `ref` names and all its refs; False when there was none."""
        raw_slug = await self._redis.hget(INDEX_KEY, _lookup_form(ref))
        if raw_slug is None:
            return False
        slug = _text(raw_slug)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(INDEX_KEY)
                    index = _decode_index(await pipe.hgetall(INDEX_KEY))
                    refs = [ref for ref, owner in index.items() if owner == slug]
                    if not refs:
                        return False  # deleted by someone else meanwhile
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.delete(_key(slug))
                    pipe.hdel(INDEX_KEY, *refs)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode_index(raw: dict[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(ref): _text(slug) for ref, slug in raw.items()}


def _parse(key: str, raw: bytes | str | None) -> Personality | None:
    if raw is None:
        return None
    try:
        return Personality.model_validate_json(raw)
    except ValidationError as exc:
        reason = "; ".join(validation_messages(exc))[:300]
        log.warning("corrupt personality in redis", key=key, reason=reason)
        return None


async def seed_from_directory(store: PersonalityStore, path: Path) -> LoadResult:
    """Load the TOML files in `path` into the store; problems are logged, never fatal."""
    if not await asyncio.to_thread(path.exists):
        log.warning("personalities directory not found", directory=str(path))
    result = await asyncio.to_thread(load_directory, path)
    for personality in list(result.personalities):
        try:
            await store.upsert(personality)
        except PersonalityConflict as exc:
            file = result.sources.pop(personality.slug)
            result.personalities.remove(personality)
            result.problems.append(LoadProblem(file, None, f"{exc}; skipped"))
    for problem in result.problems:
        log.warning(
            "personality file skipped",
            file=str(problem.path),
            line=problem.line,
            reason=problem.message,
        )
    log.info(
        "personalities seeded",
        directory=str(path),
        loaded=len(result.personalities),
        skipped=len(result.problems),
    )
    return result
