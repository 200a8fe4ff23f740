"""The record of every delivered reply, kept 24 h: what Regenerate, Delete reply, View reasoning
and Inspect work from, and what replacing or deleting a reply does to history and memory.

    reply delivered (message_path.post_reply) -> Replies.delivered(): the record, the index of
        its messages and of its trigger; a reply that replaced another (Regenerate, an edited
        trigger) also retires the old one: its record goes, its memory is forgotten
    Delete reply -> Replies.forget(): the reply's turn leaves history, its memory is forgotten
        (also a write still queued or parked), the record and its index go

Keys (families in tzurot.infra.keys, all 24 h):
  tzurot:reply:{job_id}              the record (JSON: ReplyRecord)
  tzurot:reply-message:{message_id}  -> the job id of the reply the message belongs to
  tzurot:reply-trigger:{message_id}  set: the job ids of the replies a user's message triggered
  tzurot:reply-busy:{job_id}         a Regenerate or Delete of this reply is under way

Nothing secret is kept: no interaction token (they live sealed in tzurot:interaction), no key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from tzurot.ai.contracts import Delivery, GenerationRequest, GenerationResult
from tzurot.conversations.store import TranscriptStore, reply_message_id
from tzurot.infra.keys import REPLY, REPLY_BUSY, REPLY_MESSAGE, REPLY_TRIGGER
from tzurot.infra.redis_client import as_text
from tzurot.logs import get_logger
from tzurot.memory.service import MemoryService

log = get_logger(__name__)

KEEP_SECONDS = REPLY.ttl_seconds or 24 * 3600
BUSY_SECONDS = REPLY_BUSY.ttl_seconds or 15 * 60
MEMORY_SHOWN = 20  # memories kept for Inspect
MEMORY_CHARS = 200
THINKING_CHARS = 20_000

# Drops a message's index entry only while it still points at this reply (a reply that
# replaced it owns the message now). KEYS: the message index keys. ARGV: job id.
_UNINDEX = """
local dropped = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    dropped = dropped + 1
  end
end
return dropped
"""


class ReplyRecord(BaseModel):
    """One delivered reply, as Inspect shows it and Regenerate/Delete need it."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    personality: str  # slug
    personality_name: str
    owner_id: str | None = None  # the character's owner when the reply was made
    requester_id: str
    requester_name: str | None = None
    trigger_message_id: str | None = None
    channel_id: str | None = None  # where its history is (a thread's own id)
    guild_id: str | None = None
    delivery: Delivery
    message_ids: list[str] = Field(default_factory=list)
    # What a new reply to the same turn is made from (Regenerate).
    request: GenerationRequest
    status: Literal["completed", "failed"]
    failure_category: str | None = None
    reference_id: str | None = None
    model: str | None = None
    target_model: str | None = None
    provider: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None
    attempts: int = 1
    streamed: bool = False
    settings_used: dict[str, str] = Field(default_factory=dict)
    settings_sources: dict[str, str] = Field(default_factory=dict)
    memories_used: tuple[str, ...] = ()
    thinking: str | None = None
    remembered: bool = False
    finished_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    recorded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def of(
        cls, result: GenerationResult, delivery: Delivery, message_ids: Sequence[str]
    ) -> ReplyRecord:
        request = result.request
        failure = result.failure
        thinking = result.thinking[:THINKING_CHARS] if result.thinking else None
        return cls(
            job_id=result.job_id,
            personality=request.personality.slug,
            personality_name=request.personality.display_name,
            owner_id=request.personality.owner_id,
            requester_id=request.user_id,
            requester_name=request.user_name,
            trigger_message_id=request.source_message_id,
            channel_id=request.channel_id,
            guild_id=request.guild_id,
            delivery=delivery,
            message_ids=list(message_ids),
            request=request,
            status=result.status,
            failure_category=failure.category if failure is not None else None,
            reference_id=failure.reference_id if failure is not None else None,
            model=result.model,
            target_model=result.target_model,
            provider=result.provider,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_ms=result.latency_ms,
            attempts=result.attempts,
            streamed=result.streamed,
            settings_used=dict(result.settings_used),
            settings_sources=dict(result.settings_sources),
            memories_used=tuple(m[:MEMORY_CHARS] for m in result.memories_used[:MEMORY_SHOWN]),
            thinking=thinking,
            remembered=result.remember,
            finished_at=result.finished_at,
        )


class Replies:
    """The 24 h records of delivered replies, and retiring a reply (replaced or deleted) from
    history and memory. `transcripts` and `memory` may be None (nothing to retire there)."""

    def __init__(
        self,
        redis: Redis,
        *,
        transcripts: TranscriptStore | None = None,
        memory: MemoryService | None = None,
    ) -> None:
        self._redis = redis
        self._transcripts = transcripts
        self._memory = memory
        self._unindex = redis.register_script(_UNINDEX)

    # -- the record ------------------------------------------------------------------------

    async def save(self, record: ReplyRecord) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(REPLY.key(job_id=record.job_id), record.model_dump_json(), ex=KEEP_SECONDS)
            for message_id in record.message_ids:
                pipe.set(REPLY_MESSAGE.key(message_id=message_id), record.job_id,
                         ex=KEEP_SECONDS)  # fmt: skip
            if record.trigger_message_id:
                key = REPLY_TRIGGER.key(message_id=record.trigger_message_id)
                pipe.sadd(key, record.job_id)
                pipe.expire(key, KEEP_SECONDS)
            await pipe.execute()

    async def get(self, job_id: str) -> ReplyRecord | None:
        raw = await self._redis.get(REPLY.key(job_id=job_id))
        if raw is None:
            return None
        try:
            return ReplyRecord.model_validate_json(raw)
        except ValidationError:
            log.warning("an unreadable reply record was skipped", job_id=job_id)
            return None

    async def of_message(self, message_id: str) -> ReplyRecord | None:
        """The reply this Discord message is part of (None: not ours, or over 24 h old)."""
        job_id = await self._redis.get(REPLY_MESSAGE.key(message_id=message_id))
        return await self.get(as_text(job_id)) if job_id is not None else None

    async def of_trigger(self, message_id: str) -> list[ReplyRecord]:
        """The replies (still recorded) that this user's message triggered."""
        members = await self._redis.smembers(REPLY_TRIGGER.key(message_id=message_id))
        found = [await self.get(as_text(m)) for m in sorted(members)]
        return [record for record in found if record is not None]

    async def remove(self, record: ReplyRecord) -> None:
        """The record and its index entries (those still pointing at it) go."""
        keys = [REPLY_MESSAGE.key(message_id=m) for m in record.message_ids]
        if keys:
            await self._unindex(keys=keys, args=[record.job_id])
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(REPLY.key(job_id=record.job_id))
            if record.trigger_message_id:
                pipe.srem(REPLY_TRIGGER.key(message_id=record.trigger_message_id), record.job_id)
            await pipe.execute()

    async def forget_trigger(self, message_id: str) -> None:
        await self._redis.delete(REPLY_TRIGGER.key(message_id=message_id))

    # -- one change at a time per reply ----------------------------------------------------

    async def begin(self, job_id: str, doing: str) -> bool:
        """Mark the reply as being regenerated or deleted; False if something already is."""
        key = REPLY_BUSY.key(job_id=job_id)
        return bool(await self._redis.set(key, doing, nx=True, ex=BUSY_SECONDS))

    async def end(self, job_id: str) -> None:
        await self._redis.delete(REPLY_BUSY.key(job_id=job_id))

    # -- after delivery, and retiring a reply ----------------------------------------------

    async def delivered(
        self, result: GenerationResult, delivery: Delivery, message_ids: Sequence[str]
    ) -> None:
        """The reply is out: record it. A reply replacing another retires the old one (its
        record, its memory; its history turn too when the new one failed: the generator
        replaced it otherwise). Never raises: the reply is already posted."""
        try:
            await self.save(ReplyRecord.of(result, delivery, message_ids))
            old_job = result.request.regenerates
            if old_job is None:
                return
            old = await self.get(old_job)
            if old is not None:
                await self.remove(old)
            await self._forget_memory(result.request, old_job)
            if result.status != "completed":
                await self._drop_turn(result.request.channel_id, old_job)
            await self.end(old_job)
        except Exception:
            log.exception("could not record a delivered reply", job_id=result.job_id)

    async def forget(self, record: ReplyRecord) -> None:
        """A deleted reply: its turn leaves history, its memory is forgotten, its record goes."""
        await self._drop_turn(record.channel_id, record.job_id)
        await self._forget_memory(record.request, record.job_id)
        await self.remove(record)

    async def _drop_turn(self, channel_id: str | None, job_id: str) -> None:
        if self._transcripts is not None and channel_id is not None:
            await self._transcripts.drop(channel_id, reply_message_id(job_id))

    async def _forget_memory(self, request: GenerationRequest, job_id: str) -> None:
        if self._memory is not None:
            await self._memory.forget_reply(request.user_id, request.personality.slug, job_id)


__all__ = ["Replies", "ReplyRecord"]
