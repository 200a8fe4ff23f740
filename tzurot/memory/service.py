"""Long-term memory: what the worker recalls before a reply and remembers after one, and what
`/memory` shows and changes.

    reply delivered -> remember_later() -> `memory-` job -> remember(): embed, store, facts due?
                                                          -> `memory-` facts job -> distil_facts()
    generation      -> recall(): prefs + facts + the most similar memories of the scope

A write never blocks a reply: it is a background job, retried after a failure; when its last run
fails too it is parked (MEMORY_PENDING) and a cron task queues it again every 10 minutes, for a
week. A write is idempotent (the memory's id comes from the reply's job id), so running it twice
stores one memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from tzurot.ai.contracts import GenerationResult
from tzurot.infra.keys import (
    DAY,
    FACTS_DUE,
    HOUR,
    MEMORY_FORGOTTEN,
    MEMORY_PENDING,
    MEMORY_PREFS,
    MEMORY_SCOPES,
)
from tzurot.infra.redis_client import as_text
from tzurot.jobs.background import BackgroundJobs, TaskHandler, TaskRun, TaskSpec
from tzurot.jobs.constants import JobPrefix
from tzurot.jobs.cron import CronTask
from tzurot.logs import get_logger, log_context
from tzurot.memory.embedders import Embedder, EmbeddingError
from tzurot.memory.facts import FactDistiller, FactStore, clean_fact_text, fact_key
from tzurot.memory.models import (
    MAX_MEMORY_CHARS,
    Fact,
    MemoryPrefs,
    MemoryRecord,
    MemoryScope,
    Recalled,
    venue_of,
)
from tzurot.memory.store import ModelMismatch, VectorStore

log = get_logger(__name__)

REMEMBER = TaskSpec("remember", JobPrefix.MEMORY, timeout=120, runs=3, retry_delay=2.0,
                    keep_seconds=DAY)  # fmt: skip
DISTIL = TaskSpec("distil_facts", JobPrefix.MEMORY, timeout=180, runs=2, retry_delay=5.0,
                  keep_seconds=HOUR)  # fmt: skip
PENDING_CAP = 10_000
PENDING_KEEP_SECONDS = 7 * DAY
RETRY_PARKED_SCHEDULE = "*/10 * * * *"
USER_TEXT_CHARS = 1_500
EPISODES_FOR_FACTS = 8
REINDEX_PREFIX = "reindex:"


@dataclass(frozen=True)
class MemoryConfig:
    limit: int = 20  # memories recalled at most
    threshold: float = 0.5  # similarity below which a memory is not recalled
    cap_per_scope: int = 5_000  # memories kept per user and character
    fact_every: int = 4  # exchanges between two fact distillations
    fact_model: str | None = None  # FACT_MODEL; None: the character's model
    retry_seconds: float = 2.0  # between two runs of a failed memory write
    enabled: bool = True  # MEMORY_ENABLED: off, nothing is recalled or remembered (/memory works)


class Exchange(BaseModel):
    """One exchange to remember: the `memory-` job's payload."""

    model_config = ConfigDict(frozen=True)

    job_id: str = Field(min_length=1, max_length=200)
    user_id: str
    user_name: str = Field(max_length=200)
    personality: str
    personality_name: str = Field(max_length=200)
    venue: str
    user_text: str = Field(max_length=200_000)
    reply_text: str = Field(max_length=200_000)
    at: datetime
    sources: tuple[str, ...] = ()
    model: str | None = None  # the model that replied: the facts' model unless FACT_MODEL

    def text(self) -> str:
        """ "{user}: ... / {character}: ...", the user's side capped so the reply has room."""
        user = f"{_one_line(self.user_name)}: {_one_line(self.user_text)[:USER_TEXT_CHARS]}"
        reply = f"{_one_line(self.personality_name)}: {_one_line(self.reply_text)}"
        return f"{user}\n{reply}"[:MAX_MEMORY_CHARS]


class _FactJob(BaseModel):
    user_id: str
    user_name: str
    personality: str
    venue: str
    model: str | None = None


class _Parked(BaseModel):
    parked_at: float
    payload: str  # a memory write's Exchange, or (a re-embedding's) the scope's records
    kind: Literal["write", "reindex"] = "write"


@dataclass(frozen=True)
class Recollection:
    """What a generation gets: the user's choices, the facts and the memories that apply."""

    prefs: MemoryPrefs = field(default_factory=MemoryPrefs)
    facts: list[Fact] = field(default_factory=list)
    memories: list[Recalled] = field(default_factory=list)


class MemoryService:
    def __init__(
        self,
        redis: Redis,
        store: VectorStore,
        facts: FactStore,
        embedder: Embedder,
        jobs: BackgroundJobs,
        config: MemoryConfig,
        distiller: FactDistiller | None = None,
    ) -> None:
        self._redis = redis
        self._store = store
        self._facts = facts
        self._embedder = embedder
        self._jobs = jobs
        self.config = config
        self._distiller = distiller
        self._remember_spec = dataclasses.replace(REMEMBER, retry_delay=config.retry_seconds)

    def use_distiller(self, distiller: FactDistiller) -> None:
        """The facts' model client (the worker's): set where the background worker runs."""
        self._distiller = distiller

    # -- the user's choices ---------------------------------------------------------------------

    async def prefs(self, user_id: str) -> MemoryPrefs:
        raw = await self._redis.hgetall(MEMORY_PREFS.key(user_id=user_id))
        values = {as_text(k): as_text(v) == "1" for k, v in raw.items()}
        return MemoryPrefs(**{k: v for k, v in values.items() if k in MemoryPrefs.model_fields})

    async def set_prefs(
        self, user_id: str, *, share: bool | None = None, incognito: bool | None = None
    ) -> MemoryPrefs:
        changes: dict[Any, Any] = {name: "1" if value else "0"
                   for name, value in (("share", share), ("incognito", incognito))
                   if value is not None}  # fmt: skip
        if changes:
            await self._redis.hset(MEMORY_PREFS.key(user_id=user_id), mapping=changes)
        return await self.prefs(user_id)

    # -- writing -------------------------------------------------------------------------------

    def exchange_of(self, result: GenerationResult, posted: Sequence[str] = ()) -> Exchange | None:
        """The exchange a completed reply makes, or None if it is not to be remembered."""
        request = result.request
        if not result.remember or result.status != "completed" or not result.content:
            return None
        sources = [s for s in (request.source_message_id, f"reply:{result.job_id}") if s]
        return Exchange(
            job_id=result.job_id,
            user_id=request.user_id,
            user_name=request.user_name or f"user {request.user_id}",
            personality=request.personality.slug,
            personality_name=request.personality.display_name,
            venue=venue_of(
                request.guild_id, request.channel_id, discord=request.delivery is not None
            ),
            user_text=result.user_turn or request.message,
            reply_text=result.content,
            at=request.created_at,
            sources=(*sources, *posted),
            model=result.target_model,
        )

    async def remember_later(self, exchange: Exchange) -> None:
        """Queue the write (a `memory-` job); never raises (the reply is already out)."""
        try:
            await self._jobs.submit(
                self._remember_spec, exchange.job_id, exchange.model_dump_json()
            )
        except Exception as error:
            log.warning("could not queue a memory write; parked", error=type(error).__name__)
            await self._park(exchange.job_id, exchange.model_dump_json())

    async def remember(self, exchange: Exchange) -> MemoryRecord | None:
        """Store the exchange (once). None when the user went incognito meanwhile, or when
        its reply was deleted or replaced (`forget_reply`) before or while it was written."""
        if (await self.prefs(exchange.user_id)).incognito:
            return None
        if await self.forgotten(exchange.job_id):
            return None
        scope = MemoryScope(exchange.user_id, exchange.personality)
        memory_id = memory_id_of(exchange.job_id)
        existing = await self._store.get(scope, memory_id)
        if existing is not None:
            return existing
        record = MemoryRecord(id=memory_id, text=exchange.text(), at=exchange.at,
                              venue=exchange.venue, sources=exchange.sources[:20])  # fmt: skip
        vector = (await self._embedder.embed([record.text]))[0]
        try:
            await self._store.add(scope, record, vector, model=self._embedder.name,
                                  cap=self.config.cap_per_scope)  # fmt: skip
        except ModelMismatch:
            await self._reindex(scope)
            await self._store.add(scope, record, vector, model=self._embedder.name,
                                  cap=self.config.cap_per_scope)  # fmt: skip
        if await self.forgotten(exchange.job_id):
            # Forgotten while it was being written: forget_reply may have looked too early.
            await self._store.delete(scope, memory_id)
            return None
        await self._redis.sadd(MEMORY_SCOPES.key(user_id=exchange.user_id), exchange.personality)
        await self._facts_due(scope, exchange)
        return record

    async def forget_reply(self, user_id: str, personality: str, job_id: str) -> bool:
        """A reply was deleted or replaced: the memory of its exchange is removed, and never
        written later (its write may still be queued, running or parked). True if a stored
        memory was removed."""
        await self._redis.set(MEMORY_FORGOTTEN.key(job_id=job_id), "1",
                              ex=MEMORY_FORGOTTEN.ttl_seconds)  # fmt: skip
        await self._redis.hdel(MEMORY_PENDING.key(), job_id)
        return await self._store.delete(MemoryScope(user_id, personality), memory_id_of(job_id))

    async def forgotten(self, job_id: str) -> bool:
        return bool(await self._redis.exists(MEMORY_FORGOTTEN.key(job_id=job_id)))

    async def _reindex(self, scope: MemoryScope) -> None:
        """EMBEDDING_MODEL changed: the scope's memories are embedded again with the new one.
        They are parked first (MEMORY_PENDING, `reindex:{scope}`) and unparked once all are
        back, so a process killed between the purge and the last write leaves them to the
        cron task, which puts them back (`_restore` skips what is already there)."""
        records, total = await self._store.page(scope, offset=0, limit=self.config.cap_per_scope)
        log.info("embedding model changed; re-embedding a scope", memories=total)
        if not records:
            return
        vectors = await self._embedder.embed([r.text for r in records])
        field = f"{REINDEX_PREFIX}{scope.key}"
        backup = json.dumps([r.model_dump(mode="json") for r in records])
        parked = _Parked(parked_at=time.time(), payload=backup, kind="reindex")
        await self._redis.hset(MEMORY_PENDING.key(), field, parked.model_dump_json())
        await self._store.purge(scope)
        await self._restore(scope, records, vectors)
        await self._redis.hdel(MEMORY_PENDING.key(), field)

    async def _restore(
        self, scope: MemoryScope, records: Sequence[MemoryRecord], vectors: Any = None
    ) -> None:
        """Write `records` (newest first, as `page` gives them) back, oldest first."""
        if vectors is None:
            vectors = await self._embedder.embed([r.text for r in records])
        rows = list(zip(records, vectors, strict=True))
        for attempt in range(2):
            try:
                for record, row in reversed(rows):
                    await self._store.add(scope, record, row, model=self._embedder.name,
                                          cap=self.config.cap_per_scope)  # fmt: skip
                return
            except ModelMismatch:
                # Killed before its purge: the old vectors are still there (and parked too).
                if attempt:
                    raise
                await self._store.purge(scope)

    async def _facts_due(self, scope: MemoryScope, exchange: Exchange) -> None:
        if self._distiller is None or self.config.fact_every <= 0:
            return
        key = FACTS_DUE.key(scope=scope.key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, FACTS_DUE.ttl_seconds or DAY)
            count, _ = await pipe.execute()
        # Every INCR answers a different number, so exactly one write in `fact_every` (on
        # whichever process) starts the facts job.
        if int(count) % self.config.fact_every:
            return
        job = _FactJob(user_id=exchange.user_id, user_name=exchange.user_name,
                       personality=exchange.personality, venue=exchange.venue,
                       model=self.config.fact_model or exchange.model)  # fmt: skip
        await self._jobs.submit(DISTIL, f"facts-{scope.key}-{time.time_ns()}",
                                job.model_dump_json())  # fmt: skip

    async def distil_facts(self, payload: str) -> int:
        """The facts job: ask the fact model about the latest episodes; returns facts written."""
        job = _FactJob.model_validate_json(payload)
        if self._distiller is None or not job.model:
            return 0
        scope = MemoryScope(job.user_id, job.personality)
        episodes, _ = await self._store.page(scope, offset=0, limit=EPISODES_FOR_FACTS,
                                             venues=[job.venue])  # fmt: skip
        if not episodes:
            return 0
        known = [f for f in await self._facts.all(scope) if f.venue == job.venue]
        changes = await self._distiller.distil(
            user_id=job.user_id, user_name=job.user_name, model=job.model, known=known,
            episodes=episodes, venue=job.venue,
        )  # fmt: skip
        written = 0
        for fact in changes.put:
            written += await self._facts.put(scope, fact)
        for key in changes.forget:
            current = await self._facts.get(scope, key)
            if current is not None and not current.locked and current.venue == job.venue:
                await self._facts.delete(scope, key)
        if written:
            await self._redis.sadd(MEMORY_SCOPES.key(user_id=job.user_id), job.personality)
        log.info("facts distilled", written=written, forgotten=len(changes.forget))
        return written

    # -- the jobs' bodies, parking and the cron task ----------------------------------------------

    def handlers(self) -> dict[str, TaskHandler]:
        return {REMEMBER.function: self._remember_job, DISTIL.function: self._distil_job}

    async def _remember_job(self, payload: str, run: TaskRun) -> str | None:
        try:
            exchange = Exchange.model_validate_json(payload)
        except ValidationError:
            log.error("a memory write's payload does not parse; dropped")
            return None
        with log_context(user_id=exchange.user_id, personality=exchange.personality):
            try:
                record = await self.remember(exchange)
            except Exception:
                if run.last:
                    await self._park(exchange.job_id, payload)
                raise
        return record.id if record else None

    async def _distil_job(self, payload: str, run: TaskRun) -> str | None:
        try:
            return str(await self.distil_facts(payload))
        except ValidationError:
            log.error("a facts job's payload does not parse; dropped")
            return None

    async def _park(self, job_id: str, payload: str) -> None:
        parked = _Parked(parked_at=time.time(), payload=payload).model_dump_json()
        key = MEMORY_PENDING.key()
        try:
            await self._redis.hset(key, job_id, parked)
            if await self._redis.hlen(key) > PENDING_CAP:
                # Beyond the cap the oldest parked write gives way (HSCAN order is arbitrary,
                # so the parked times decide).
                entries = await self._redis.hgetall(key)
                oldest = min(entries.items(), key=lambda kv: _parked_at(kv[1]))[0]
                await self._redis.hdel(key, oldest)
            log.warning("memory write parked; it is tried again within 10 minutes")
        except Exception:
            log.error("a memory write could not be parked and is lost")

    async def retry_parked(self, _tick: int = 0) -> int:
        """Queue every parked write again (the cron task); drops those older than 7 days."""
        key = MEMORY_PENDING.key()
        entries = await self._redis.hgetall(key)
        queued = 0
        for raw_id, raw in entries.items():
            job_id = as_text(raw_id)
            await self._redis.hdel(key, job_id)
            try:
                parked = _Parked.model_validate_json(raw)
            except ValidationError:
                continue
            if time.time() - parked.parked_at > PENDING_KEEP_SECONDS:
                log.warning("a parked memory write is a week old; dropped")
                continue
            try:
                if parked.kind == "reindex":
                    await self._unpark_reindex(job_id.removeprefix(REINDEX_PREFIX), parked)
                else:
                    await self._jobs.submit(self._remember_spec, job_id, parked.payload)
                queued += 1
            except Exception:
                await self._redis.hset(key, job_id, raw)
                raise
        if queued:
            log.info("parked memory writes queued again", writes=queued)
        return queued

    async def _unpark_reindex(self, scope_key: str, parked: _Parked) -> None:
        user_id, _, personality = scope_key.partition(":")
        records = [MemoryRecord.model_validate(item) for item in json.loads(parked.payload)]
        await self._restore(MemoryScope(user_id, personality), records)
        log.info("a re-embedding cut short was finished", memories=len(records))

    def retry_task(self) -> CronTask:
        return CronTask("memory-retry", RETRY_PARKED_SCHEDULE, self.retry_parked)

    # -- recall ----------------------------------------------------------------------------------

    async def recall(
        self,
        *,
        user_id: str,
        personality: str,
        venue: str,
        query: str,
        exclude_sources: Sequence[str] = (),
        limit: int | None = None,
        threshold: float | None = None,
    ) -> Recollection:
        """The user's choices, the facts and the memories for a generation. An embedding that
        fails costs the memories, never the reply."""
        prefs = await self.prefs(user_id)
        scope = MemoryScope(user_id, personality)
        venues = None if prefs.share else [venue]
        facts = [f for f in await self._facts.all(scope) if venues is None or f.venue in venues]
        memories: list[Recalled] = []
        try:
            vector = (await self._embedder.embed([query[: USER_TEXT_CHARS * 2]]))[0]
            memories = await self._store.search(
                scope, vector, model=self._embedder.name,
                limit=self.config.limit if limit is None else limit,
                threshold=self.config.threshold if threshold is None else threshold,
                venues=venues, exclude_sources=exclude_sources,
            )  # fmt: skip
        except EmbeddingError as error:
            log.warning("memories not recalled: embedding failed", reason=str(error))
        return Recollection(prefs, facts, memories)

    # -- /memory -------------------------------------------------------------------------------

    async def characters_of(self, user_id: str) -> list[str]:
        members = await self._redis.smembers(MEMORY_SCOPES.key(user_id=user_id))
        return sorted(as_text(m) for m in members)

    async def browse(
        self, user_id: str, personality: str, *, offset: int, limit: int
    ) -> tuple[list[MemoryRecord], int]:
        return await self._store.page(MemoryScope(user_id, personality), offset=offset,
                                      limit=limit)  # fmt: skip

    async def search(
        self, user_id: str, personality: str, query: str, *, limit: int = 10
    ) -> list[Recalled]:
        """The user's own memories most like `query`, from every venue (it is their own list,
        shown only to them), with a low bar: a search should find something."""
        vector = (await self._embedder.embed([query]))[0]
        return await self._store.search(
            MemoryScope(user_id, personality), vector, model=self._embedder.name, limit=limit,
            threshold=0.0, venues=None,
        )  # fmt: skip

    async def get(self, user_id: str, personality: str, memory_id: str) -> MemoryRecord | None:
        return await self._store.get(MemoryScope(user_id, personality), memory_id)

    async def delete(self, user_id: str, personality: str, memory_id: str) -> bool:
        return await self._store.delete(MemoryScope(user_id, personality), memory_id)

    async def set_memory_locked(
        self, user_id: str, personality: str, memory_id: str, locked: bool
    ) -> bool:
        return await self._store.set_locked(MemoryScope(user_id, personality), memory_id, locked)

    async def count(self, user_id: str, personality: str) -> int:
        return await self._store.count(MemoryScope(user_id, personality))

    async def purge(self, user_id: str, personality: str | None = None) -> tuple[int, int]:
        """Forget the user's memories and facts with one character (or every character):
        (memories, facts) removed. Channel history is not touched."""
        slugs = [personality] if personality else await self.characters_of(user_id)
        memories = facts = 0
        for slug in slugs:
            scope = MemoryScope(user_id, slug)
            memories += await self._store.purge(scope)
            facts += await self._facts.purge(scope)
            await self._redis.delete(FACTS_DUE.key(scope=scope.key))
            await self._redis.srem(MEMORY_SCOPES.key(user_id=user_id), slug)
        return memories, facts

    async def facts(self, user_id: str, personality: str) -> list[Fact]:
        return await self._facts.all(MemoryScope(user_id, personality))

    async def put_fact(
        self, user_id: str, personality: str, *, key: str, text: str, venue: str,
        locked: bool | None = None,
    ) -> Fact:  # fmt: skip
        """A fact the user wrote or edited (/memory facts): theirs, so no lock stops it."""
        scope = MemoryScope(user_id, personality)
        clean_key, clean_text = fact_key(key), clean_fact_text(text)
        if not clean_key or not clean_text:
            raise ValueError("A fact needs a topic and some text.")
        current = await self._facts.get(scope, clean_key)
        keep_locked = current.locked if current is not None and locked is None else bool(locked)
        fact = Fact(key=clean_key, text=clean_text, at=datetime.now(UTC),
                    venue=current.venue if current else venue, locked=keep_locked)  # fmt: skip
        await self._facts.put(scope, fact, respect_lock=False)
        await self._redis.sadd(MEMORY_SCOPES.key(user_id=user_id), personality)
        return fact

    async def delete_fact(self, user_id: str, personality: str, key: str) -> bool:
        return await self._facts.delete(MemoryScope(user_id, personality), key)

    async def lock_fact(self, user_id: str, personality: str, key: str, locked: bool) -> bool:
        scope = MemoryScope(user_id, personality)
        current = await self._facts.get(scope, key)
        if current is None:
            return False
        await self._facts.put(scope, current.model_copy(update={"locked": locked}),
                              respect_lock=False)  # fmt: skip
        return True


def memory_id_of(job_id: str) -> str:
    """A reply's memory id: derived from its job id, so a write run twice stores one."""
    return "m-" + hashlib.sha256(job_id.encode()).hexdigest()[:24]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _parked_at(raw: Any) -> float:
    try:
        return _Parked.model_validate_json(raw).parked_at
    except ValidationError:
        return 0.0
