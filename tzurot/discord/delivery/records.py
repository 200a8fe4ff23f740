"""The one delivered record per reply: what is already posted, and how delivery went.

`tzurot:delivery:{jobId}` is a hash: `posted:{i}` holds the message id of chunk i once it is
posted, `attempts` counts delivery attempts, `next_at` holds when a transient failure may be
tried again, `outcome` says how it ended (`delivered`, or `failed:{category}:{reference}`).
Replies Discord keeps refusing for now are also listed in `tzurot:delivery-failing` (/health).
A delivery attempt that is not the first may have posted a chunk without recording it (the
process died in between, or Discord failed after accepting it): such an attempt looks at the
channel before posting that chunk again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from tzurot.infra.keys import DELIVERY, DELIVERY_FAILING, DELIVERY_LAST
from tzurot.infra.redis_client import as_text

_TTL = DELIVERY.ttl_seconds or 7 * 24 * 3600


@dataclass
class DeliveryRecord:
    job_id: str
    attempts: int = 0
    posted: dict[int, str] = field(default_factory=dict)
    next_at: float = 0.0
    outcome: str | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def resumed(self) -> bool:
        """An attempt before this one may have posted more than it recorded."""
        return self.attempts > 1


class DeliveryRecords:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def begin(self, job_id: str) -> DeliveryRecord:
        """Count one more attempt; the record as it stands."""
        key = DELIVERY.key(job_id=job_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "attempts", 1)
            pipe.expire(key, _TTL)
            pipe.hgetall(key)
            _, _, raw = await pipe.execute()
        return _record(job_id, raw)

    async def get(self, job_id: str) -> DeliveryRecord:
        return _record(job_id, await self._redis.hgetall(DELIVERY.key(job_id=job_id)))

    async def posted(self, job_id: str, index: int, message_id: str) -> None:
        await self._redis.hset(DELIVERY.key(job_id=job_id), f"posted:{index}", message_id)

    async def retry_at(self, job_id: str, at: float) -> None:
        """Discord refused for now: try again at `at`; counted as failing since the first."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(DELIVERY.key(job_id=job_id), "next_at", repr(at))
            pipe.zadd(DELIVERY_FAILING.key(), {job_id: time.time()}, nx=True)
            await pipe.execute()

    async def finish(self, job_id: str, outcome: str, *, failed_before: bool) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(DELIVERY.key(job_id=job_id), "outcome", outcome)
            if outcome == "delivered":
                pipe.set(DELIVERY_LAST.key(), repr(time.time()))
            if failed_before:
                pipe.zrem(DELIVERY_FAILING.key(), job_id)
            await pipe.execute()

    async def failing_since(self) -> float | None:
        """When the longest-refused reply still waiting was first refused."""
        oldest: Any = await self._redis.zrange(DELIVERY_FAILING.key(), 0, 0, withscores=True)
        return float(oldest[0][1]) if oldest else None

    async def outcomes(self, job_ids: list[str]) -> dict[str, str | None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(DELIVERY.key(job_id=job_id), "outcome")
            found = await pipe.execute()
        return {
            j: as_text(o) if o is not None else None for j, o in zip(job_ids, found, strict=True)
        }

    async def last_delivered_at(self) -> float | None:
        raw = await self._redis.get(DELIVERY_LAST.key())
        return float(raw) if raw is not None else None


def _record(job_id: str, raw: Mapping[bytes | str, bytes | str]) -> DeliveryRecord:
    record = DeliveryRecord(job_id)
    for name, value in raw.items():
        key, text = as_text(name), as_text(value)
        if key == "attempts":
            record.attempts = int(text)
        elif key == "next_at":
            record.next_at = float(text)
        elif key == "outcome":
            record.outcome = text
        elif key.startswith("posted:"):
            record.posted[int(key.removeprefix("posted:"))] = text
    return record
