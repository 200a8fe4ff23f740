"""Finished generations: recorded exactly once, announced once, fed to delivery by a stream.

`record()` writes `tzurot:result:{jobId}` with NX in one script with everything that follows
from it: the stream entry delivery reads (only for jobs that have a delivery), the counters, and
one message on `tzurot:done` that wakes whoever waits for the job. A job that runs again after a
crash finds its earlier result instead of producing a second one.

A result waiting for delivery has no expiry until `delivered()` gives it one, so it can never
expire before it is posted; every other result expires after its retention.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tzurot.ai.contracts import GenerationResult
from tzurot.infra.keys import DONE_CHANNEL, RESULT, RESULTS_STREAM, STATS
from tzurot.infra.redis_client import as_text
from tzurot.jobs.constants import (
    COMPLETED_RETENTION_SECONDS,
    FAILED_RETENTION_SECONDS,
    RESULTS_STREAM_MAX_AGE_SECONDS,
)
from tzurot.logs import get_logger

log = get_logger(__name__)

# KEYS: result, stream, stats. ARGV: result JSON, ttl (0: none until delivered), job id,
# status, lane ('' when nothing is to be delivered), stream MINID, done channel.
_RECORD_ONCE = """
local stored
if ARGV[2] == '0' then
  stored = redis.call('SET', KEYS[1], ARGV[1], 'NX')
else
  stored = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
end
if not stored then return 0 end
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[6], '*', 'job', ARGV[3], 'lane', ARGV[5])
end
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
redis.call('PUBLISH', ARGV[7], ARGV[3])
return 1
"""

# KEYS: stream. ARGV: job id, lane, stream MINID, done channel. For a job that ended without
# a result (its payload was refused): delivery still hears of it, so its lane moves on.
_ANNOUNCE = """
if ARGV[2] ~= '' then
  redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[3], '*', 'job', ARGV[1], 'lane', ARGV[2])
end
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class StreamEntry:
    """One finished job, as delivery reads it: which job, and the lane it is to be posted in."""

    entry_id: str
    job_id: str
    lane: str


@dataclass(frozen=True)
class PendingSummary:
    consumer: str
    count: int


def retention_seconds(result: GenerationResult) -> int:
    if result.status == "completed":
        return COMPLETED_RETENTION_SECONDS
    return FAILED_RETENTION_SECONDS


def _stream_floor() -> str:
    return f"{int((time.time() - RESULTS_STREAM_MAX_AGE_SECONDS) * 1000)}-0"


class ResultLog:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._record = redis.register_script(_RECORD_ONCE)
        self._announce = redis.register_script(_ANNOUNCE)

    async def record(self, result: GenerationResult) -> GenerationResult:
        """Store `result` unless this job already has one; returns the one that counts."""
        delivery = result.request.delivery
        ttl = 0 if delivery is not None else retention_seconds(result)
        created = await self._record(
            keys=[RESULT.key(job_id=result.job_id), RESULTS_STREAM.key(), STATS.key()],
            args=[
                result.model_dump_json(),
                ttl,
                result.job_id,
                result.status,
                delivery.lane if delivery is not None else "",
                _stream_floor(),
                DONE_CHANNEL.key(),
            ],
        )
        if created:
            return result
        return await self.get(result.job_id) or result

    async def announce_without_result(self, job_id: str, lane: str | None) -> None:
        """A job ended with no result to record (its payload was refused)."""
        await self._announce(
            keys=[RESULTS_STREAM.key()],
            args=[job_id, lane or "", _stream_floor(), DONE_CHANNEL.key()],
        )

    async def announce_streaming(self, job_id: str, lane: str) -> None:
        """A job began to stream its reply (tzurot/jobs/streams.py): delivery hears of it at
        once, to show the reply as it grows. Nobody waiting for the job is woken."""
        await self._redis.xadd(
            RESULTS_STREAM.key(), {"job": job_id, "lane": lane, "streaming": "1"},
            minid=_stream_floor(),
            approximate=True,
        )  # fmt: skip

    async def get(self, job_id: str) -> GenerationResult | None:
        raw = await self._redis.get(RESULT.key(job_id=job_id))
        if raw is None:
            return None
        try:
            return GenerationResult.model_validate_json(raw)
        except ValidationError:
            log.error("stored result is unreadable", job_id=job_id)
            return None

    async def delivered(self, result: GenerationResult) -> None:
        """Delivery is done with this result: from now on it expires with its retention."""
        await self._redis.expire(RESULT.key(job_id=result.job_id), retention_seconds(result))

    async def totals(self) -> dict[str, int]:
        raw = await self._redis.hgetall(STATS.key())
        return {as_text(k): int(v) for k, v in raw.items()}

    # -- the delivery side: a consumer group over the stream ---------------------------------

    async def ensure_group(self, group: str) -> None:
        try:
            await self._redis.xgroup_create(RESULTS_STREAM.key(), group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(
        self, group: str, consumer: str, *, count: int = 100, block_ms: int = 1000
    ) -> list[StreamEntry]:
        """New entries for this consumer (they stay pending until acknowledged)."""
        response: Any = await self._redis.xreadgroup(
            group, consumer, {RESULTS_STREAM.key(): ">"}, count=count, block=block_ms
        )
        return _entries(response[0][1] if response else [])

    async def read_own_pending(
        self, group: str, consumer: str, count: int = 1000
    ) -> list[StreamEntry]:
        """Entries this consumer read before (e.g. before a restart) and never acknowledged."""
        response: Any = await self._redis.xreadgroup(
            group, consumer, {RESULTS_STREAM.key(): "0"}, count=count
        )
        return _entries(response[0][1] if response else [])

    async def consumers(self, group: str) -> list[PendingSummary]:
        raw: Any = await self._redis.xinfo_consumers(RESULTS_STREAM.key(), group)
        return [PendingSummary(as_text(c["name"]), int(c["pending"])) for c in raw]

    async def take_over(
        self, group: str, dead: str, consumer: str, count: int = 1000
    ) -> list[StreamEntry]:
        """Move a dead consumer's unacknowledged entries to `consumer`, and forget the dead."""
        pending: Any = await self._redis.xpending_range(
            RESULTS_STREAM.key(), group, min="-", max="+", count=count, consumername=dead
        )
        ids = [item["message_id"] for item in pending]
        claimed: Any = (
            await self._redis.xclaim(RESULTS_STREAM.key(), group, consumer, 0, ids) if ids else []
        )
        if len(ids) < count:
            await self._redis.xgroup_delconsumer(RESULTS_STREAM.key(), group, dead)
        return _entries(claimed)

    async def ack(self, group: str, *entry_ids: str) -> None:
        if entry_ids:
            await self._redis.xack(RESULTS_STREAM.key(), group, *entry_ids)

    async def oldest_unread_ms(self, group: str) -> int | None:
        """When the oldest entry no consumer has read yet was added (None: all read)."""
        groups: Any = await self._redis.xinfo_groups(RESULTS_STREAM.key())
        for info in groups:
            if as_text(info["name"]) != group:
                continue
            last = as_text(info["last-delivered-id"])
            after: Any = await self._redis.xrange(RESULTS_STREAM.key(), min=f"({last}", count=1)
            return int(as_text(after[0][0]).split("-", 1)[0]) if after else None
        return None


def _entries(raw: list[tuple[bytes, dict[bytes, bytes]]]) -> list[StreamEntry]:
    entries = []
    for entry_id, fields in raw:
        if not fields or b"job" not in fields:
            # Trimmed away while still pending: returned with no job, so it gets acknowledged.
            entries.append(StreamEntry(as_text(entry_id), "", ""))
            continue
        entries.append(
            StreamEntry(
                as_text(entry_id), as_text(fields[b"job"]), as_text(fields.get(b"lane", b""))
            )
        )
    return entries
