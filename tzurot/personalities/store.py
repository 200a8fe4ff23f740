"""Personalities in Redis, found by name, slug, display name or alias.

Keys (owned by this module; families in tzurot.infra.keys):
  tzurot:personality:{slug}       JSON of one `Personality`
  tzurot:personality-index        hash: every normalized ref -> slug
  tzurot:personality-meta:{slug}  hash: provenance (source, edited_by, edited_at, file_hash)
A character's uploaded avatar (tzurot:avatar:{slug}, tzurot.personalities.avatars) is removed
in the same transaction as the character.

Provenance: every write says where it came from: `file` (seeding from PERSONALITIES_DIR),
`discord` (a command) or `api` (the HTTP API). Seeding never overwrites a character whose last
write came from Discord or the API: it keeps that version and logs a warning naming the file and
the character. A file unchanged since it was last seeded is not written again.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import WatchError
from redis.typing import EncodableT, FieldT

from tzurot.infra.keys import AVATAR, PERSONALITY, PERSONALITY_INDEX, PERSONALITY_META
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


def _meta_key(slug: str) -> str:
    return PERSONALITY_META.key(slug=slug)


SOURCES = ("file", "discord", "api")


@dataclass(frozen=True)
class Provenance:
    """Where a character's current version came from."""

    source: str = "file"  # one of SOURCES
    edited_by: str | None = None  # a Discord user id, "api", or None for a file
    edited_at: float | None = None  # unix time of the last write
    file_hash: str | None = None  # the seeded file version's hash (source "file" only)

    @property
    def edited_outside_files(self) -> bool:
        return self.source in {"discord", "api"}


def content_hash(personality: Personality) -> str:
    """A stable hash of a personality's content (what seeding compares)."""
    return hashlib.sha256(personality.model_dump_json().encode()).hexdigest()


def _lookup_form(ref: str) -> str:
    # People type "@Lilith" because that is how they summon her in chat.
    return normalize_ref(ref.strip().removeprefix("@"))


class PersonalityConflict(Exception):
    """A name, slug or alias is already used by another personality."""

    def __init__(self, ref: str, owner_slug: str) -> None:
        super().__init__(f"{ref!r} is already used by the personality {owner_slug!r}")
        self.ref = ref
        self.owner_slug = owner_slug


class PersonalityChanged(Exception):
    """The personality changed (or vanished) between reading it and writing the edit."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"the personality {slug!r} was changed by someone else meanwhile")
        self.slug = slug


class PersonalityExists(PersonalityConflict):
    """A create whose slug is already taken."""


class PersonalityDirectory(Protocol):
    """What consumers need: read-only lookups."""

    async def get(self, ref: str) -> Personality | None: ...

    async def find_many(self, refs: Sequence[str]) -> dict[str, Personality]: ...

    async def list(self) -> builtins.list[Personality]: ...


class PersonalityStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._find_many = redis.register_script(_FIND_MANY)

    async def upsert(
        self,
        personality: Personality,
        *,
        source: str = "file",
        edited_by: str | None = None,
        file_hash: str | None = None,
        must_be_new: bool = False,
        expect: Personality | None = None,
    ) -> None:
        """Create or replace the personality with this slug, and re-point its refs to it.

        Records its provenance (`source`, `edited_by`, now). Raises `PersonalityConflict` when
        one of its refs belongs to another personality, `PersonalityExists` when `must_be_new`
        and the slug is taken, and `PersonalityChanged` when `expect` is given and the stored
        version is no longer that one (someone else edited it meanwhile).
        """
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        slug = personality.slug
        new_refs = personality.refs()
        meta: dict[FieldT, EncodableT] = {"source": source, "edited_at": f"{time.time():.3f}"}
        if edited_by is not None:
            meta["edited_by"] = edited_by
        if file_hash is not None:
            meta["file_hash"] = file_hash
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(INDEX_KEY, _key(slug))
                    current = await pipe.get(_key(slug))
                    if must_be_new and current is not None:
                        raise PersonalityExists(slug, slug)
                    if expect is not None and (
                        current is None or _parse(_key(slug), current) != expect
                    ):
                        raise PersonalityChanged(slug)
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
                    pipe.delete(_meta_key(slug))
                    pipe.hset(_meta_key(slug), mapping=meta)
                    await pipe.execute()
                    return
                except WatchError:
                    continue  # someone changed the index meanwhile; look again

    async def provenance(self, slug: str) -> Provenance:
        """Where the character with this slug came from (a file, unless recorded otherwise)."""
        raw = _decode_index(await self._redis.hgetall(_meta_key(slug)))
        edited_at = raw.get("edited_at")
        return Provenance(
            source=raw.get("source", "file"),
            edited_by=raw.get("edited_by"),
            edited_at=float(edited_at) if edited_at else None,
            file_hash=raw.get("file_hash"),
        )

    async def by_slug(self, slug: str) -> Personality | None:
        key = _key(slug)
        return _parse(key, await self._redis.get(key))

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
                    pipe.delete(_key(slug), _meta_key(slug), AVATAR.key(slug=slug))
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
    """Load the TOML files in `path` into the store; problems are logged, never fatal.

    A character last written from Discord or the API is kept as it is: the file's version is
    skipped with a warning naming both. A file unchanged since it was last seeded is a no-op.
    """
    if not await asyncio.to_thread(path.exists):
        log.warning("personalities directory not found", directory=str(path))
    result = await asyncio.to_thread(load_directory, path)
    written = 0
    for personality in list(result.personalities):
        slug = personality.slug
        file = result.sources[slug]
        digest = content_hash(personality)
        existing = await store.by_slug(slug)
        if existing is not None:
            origin = await store.provenance(slug)
            if origin.edited_outside_files:
                result.kept.append(slug)
                log.warning(
                    "personality file not applied: the character was edited in "
                    f"{'Discord' if origin.source == 'discord' else 'the HTTP API'}, and that "
                    "version is kept (delete the character there to seed it from the file again)",
                    file=str(file), personality=slug, name=existing.name,
                    edited_by=origin.edited_by, edited_at=origin.edited_at,
                )  # fmt: skip
                continue
            if origin.file_hash == digest and existing == personality:
                result.unchanged.append(slug)
                continue
        try:
            await store.upsert(personality, source="file", file_hash=digest)
            written += 1
        except PersonalityConflict as exc:
            result.sources.pop(slug)
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
        written=written,
        unchanged=len(result.unchanged),
        kept_edited=len(result.kept),
        skipped=len(result.problems),
    )
    return result
