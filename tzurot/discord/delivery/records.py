"""The one delivered record per reply: what is already posted, and how delivery went.

`tzurot:delivery:{jobId}` is a hash: `posted:{i}` holds the message id of chunk i once it is
posted, `attempts` counts delivery attempts, `next_at` holds when a transient failure may be
tried again, `outcome` says how it ended (`delivered`, or `failed:{category}:{reference}`).
Replies Discord keeps refusing for now are also listed in `tzurot:delivery-failing` (/health).
A delivery attempt that is not the first may have posted a chunk without recording it (the
process died in between, or Discord failed after accepting it): such an attempt looks at the
channel before posting that chunk again.

A streamed reply (`streamed`, see delivery/live.py) is posted while it is being written: its
recorded messages hold provisional text until the final pass edits each to its final chunk.
Before such a message is posted, `intent:{i}` records the message it follows, so a process that
takes the reply over finds a message posted but never recorded (our webhook, the speaker's
name, after that message) and adopts it instead of posting another. `adopt()` seeds a reply
with messages that already exist (Regenerate edits the old reply in place).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from tzurot.infra.keys import DELIVERY, DELIVERY_FAILING, DELIVERY_LAST, LANE_LAST
from tzurot.infra.redis_client import as_text

_TTL = DELIVERY.ttl_seconds or 7 * 24 * 3600


@dataclass
class DeliveryRecord:
    job_id: str
    attempts: int = 0
    posted: dict[int, str] = field(default_factory=dict)
    next_at: float = 0.0
    outcome: str | None = None
    # The recorded messages may hold provisional text (streamed, or adopted from an old reply).
    streamed: bool = False
    # Message index -> the id of the message it follows (or "" for none): a streamed message
    # that may have been posted without being recorded.
    intents: dict[int, str] = field(default_factory=dict)
    # Message index -> a digest of the text last put in it (see `digest`), when known.
    shown: dict[int, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def resumed(self) -> bool:
        """An attempt before this one may have posted more than it recorded."""
        return self.attempts > 1


# KEYS: delivery record, lane-last. ARGV: intent field, the previous message id ('' if none).
# Records the newer of the two (snowflakes compared as decimal strings) as what the message
# follows.
_INTEND = """
local after = ARGV[2]
local last = redis.call('GET', KEYS[2])
if last and (#last > #after or (#last == #after and last > after)) then after = last end
redis.call('HSET', KEYS[1], ARGV[1], after)
return after
"""


class DeliveryRecords:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._intend = redis.register_script(_INTEND)

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

    async def posted(
        self,
        job_id: str,
        index: int,
        message_id: str,
        *,
        text: str | None = None,
        lane: str | None = None,
    ) -> None:
        """Message `index` is posted (holding `text`, when given; the newest in `lane`)."""
        fields = {f"posted:{index}": message_id}
        if text is not None:
            fields[f"shown:{index}"] = digest(text)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(DELIVERY.key(job_id=job_id), mapping=fields)  # type: ignore[arg-type]
            if lane is not None:
                pipe.set(LANE_LAST.key(lane=lane), message_id, ex=LANE_LAST.ttl_seconds)
            await pipe.execute()

    async def lane_last(self, lane: str) -> str | None:
        """The newest message posted in `lane` (by any reply), if known."""
        raw = await self._redis.get(LANE_LAST.key(lane=lane))
        return as_text(raw) if raw is not None else None

    async def shown(self, job_id: str, index: int, text: str) -> None:
        """Message `index` was edited to hold `text`."""
        await self._redis.hset(DELIVERY.key(job_id=job_id), f"shown:{index}", digest(text))

    async def adopt(self, job_id: str, message_ids: list[str]) -> None:
        """The reply `job_id` is to take over these existing messages (edited in place, extra
        ones deleted): call before the job's ticket is added."""
        key = DELIVERY.key(job_id=job_id)
        fields: dict[str, str] = {f"posted:{i}": str(m) for i, m in enumerate(message_ids)}
        fields["streamed"] = "1"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            pipe.expire(key, _TTL)
            await pipe.execute()

    async def streaming(self, job_id: str) -> DeliveryRecord:
        """The reply is about to be posted while it is written (its text is provisional); the
        record as it stands."""
        key = DELIVERY.key(job_id=job_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "streamed", "1")
            pipe.expire(key, _TTL)
            pipe.hgetall(key)
            *_, raw = await pipe.execute()
        return _record(job_id, raw)

    async def intend(
        self, job_id: str, index: int, after: str | None, *, lane: str | None = None
    ) -> str:
        """Message `index` is about to be posted after message `after` (or after the newest
        message `lane` posted, if that is newer); the message it is recorded to follow."""
        if lane is None:
            await self._redis.hset(DELIVERY.key(job_id=job_id), f"intent:{index}", after or "")
            return after or ""
        found = await self._intend(
            keys=[DELIVERY.key(job_id=job_id), LANE_LAST.key(lane=lane)],
            args=[f"intent:{index}", after or ""],
        )
        return as_text(found)

    async def unpost(self, job_id: str, index: int) -> None:
        """Message `index` is gone (deleted as surplus): forget it and its intent."""
        await self._redis.hdel(
            DELIVERY.key(job_id=job_id), f"posted:{index}", f"intent:{index}", f"shown:{index}"
        )

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


def digest(text: str) -> str:
    """Short and stable: whether a message already holds a text, without storing the text."""
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


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
        elif key == "streamed":
            record.streamed = text == "1"
        elif key.startswith("posted:"):
            record.posted[int(key.removeprefix("posted:"))] = text
        elif key.startswith("intent:"):
            record.intents[int(key.removeprefix("intent:"))] = text
        elif key.startswith("shown:"):
            record.shown[int(key.removeprefix("shown:"))] = text
    return record
