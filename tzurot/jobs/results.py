"""Finished generations, recorded exactly once and fed to delivery through a Redis stream.

The record `tzurot:result:{jobId}` is written with NX in the same transaction as the stream
entry, so a job that runs again after a crash finds its earlier result instead of producing a
second one, and delivery sees each job once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tzurot.ai.contracts import GenerationResult
from tzurot.infra.redis_client import as_text
from tzurot.jobs.constants import FAILED_RETENTION_SECONDS, RESULTS_STREAM_MAX_AGE_SECONDS
from tzurot.logs import get_logger

log = get_logger(__name__)

RESULTS_STREAM = "tzurot:results"
_RESULT_KEY = "tzurot:result:{job_id}"
_STATS_KEY = "tzurot:stats"

# Record once: SET NX, then XADD and count, all or nothing.
_RECORD_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
    redis.call('XADD', KEYS[2], '*', 'job_id', ARGV[3], 'result', ARGV[1])
    redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
    return 1
end
return 0
"""


@dataclass(frozen=True)
class StreamEntry:
    entry_id: str
    result: GenerationResult


class ResultLog:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._record = redis.register_script(_RECORD_ONCE)

    async def record(self, result: GenerationResult) -> GenerationResult:
        """Store `result` unless this job already has one; returns the one that counts."""
        payload = result.model_dump_json()
        created = await self._record(
            keys=[_RESULT_KEY.format(job_id=result.job_id), RESULTS_STREAM, _STATS_KEY],
            args=[payload, FAILED_RETENTION_SECONDS, result.job_id, result.status],
        )
        if created:
            return result
        earlier = await self.get(result.job_id)
        return earlier or result

    async def get(self, job_id: str) -> GenerationResult | None:
        raw = await self._redis.get(_RESULT_KEY.format(job_id=job_id))
        if raw is None:
            return None
        try:
            return GenerationResult.model_validate_json(raw)
        except ValidationError:
            log.error("stored result is unreadable", job_id=job_id)
            return None

    async def forget(self, job_ids: list[str]) -> None:
        if job_ids:
            await self._redis.delete(*(_RESULT_KEY.format(job_id=j) for j in job_ids))

    async def totals(self) -> dict[str, int]:
        raw = await self._redis.hgetall(_STATS_KEY)
        return {as_text(k): int(v) for k, v in raw.items()}

    # The delivery side: a consumer group reads, acks after delivering, and reclaims entries
    # whose consumer died (XAUTOCLAIM), so a restart between generation and delivery loses
    # nothing.

    async def ensure_group(self, group: str) -> None:
        try:
            await self._redis.xgroup_create(RESULTS_STREAM, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(
        self, group: str, consumer: str, *, count: int = 50, block_ms: int = 5000
    ) -> list[StreamEntry]:
        response: Any = await self._redis.xreadgroup(
            group, consumer, {RESULTS_STREAM: ">"}, count=count, block=block_ms
        )
        return self._entries(response[0][1] if response else [])

    async def read_pending(self, group: str, consumer: str, count: int = 500) -> list[StreamEntry]:
        """Entries this consumer read earlier (before a restart) and never acknowledged."""
        response: Any = await self._redis.xreadgroup(
            group, consumer, {RESULTS_STREAM: "0"}, count=count
        )
        return self._entries(response[0][1] if response else [])

    async def reclaim(
        self, group: str, consumer: str, *, idle_ms: int, count: int = 100
    ) -> list[StreamEntry]:
        """Entries another consumer read but never acknowledged (it died)."""
        _next, claimed, *_ = await self._redis.xautoclaim(
            RESULTS_STREAM, group, consumer, min_idle_time=idle_ms, start_id="0-0", count=count
        )
        return self._entries(claimed)

    async def ack(self, group: str, entry_id: str) -> None:
        await self._redis.xack(RESULTS_STREAM, group, entry_id)

    def _entries(self, raw: list[tuple[bytes, dict[bytes, bytes]]]) -> list[StreamEntry]:
        entries = []
        for entry_id, fields in raw:
            if not fields:
                continue
            try:
                result = GenerationResult.model_validate_json(fields[b"result"])
            except (KeyError, ValidationError):
                log.error("unreadable results stream entry", entry_id=entry_id.decode())
                continue
            entries.append(StreamEntry(entry_id.decode(), result))
        return entries

    async def trim(self, max_age_seconds: int = RESULTS_STREAM_MAX_AGE_SECONDS) -> None:
        cutoff_ms = int((time.time() - max_age_seconds) * 1000)
        await self._redis.xtrim(RESULTS_STREAM, minid=f"{cutoff_ms}-0", approximate=False)
