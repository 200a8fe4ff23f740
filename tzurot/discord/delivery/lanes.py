"""Lanes: each channel's replies, in the order their messages were written, in Redis.

A lane is a sorted set of tickets scored by the triggering message's time (then mention order).
Only the head of a lane is ever posted, and only by the process holding the lane's lease, so
replies in one channel come in order and never twice at once; lanes never wait for each other.
An interaction has a lane of its own (see `Delivery.lane`).

`tzurot:lanes` lists the non-empty lanes, scored by when they next need a look (a backstop for
heads whose job was lost without a word).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from tzurot.ai.contracts import Delivery
from tzurot.infra.keys import LANE, LANE_LEASE, LANES
from tzurot.infra.redis_client import as_text

LEASE_MS = (LANE_LEASE.ttl_seconds or 15) * 1000

# KEYS: lane, lanes. ARGV: score, ticket, lane name, look-at (ms).
_ADD = """
redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[3])
return 1
"""
# KEYS: lease, lane. ARGV: owner, ttl ms. The head ticket if the lease is ours, else nothing.
_LEASE_AND_HEAD = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {0, false} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local head = redis.call('ZRANGE', KEYS[2], 0, 0)
return {1, head[1] or false}
"""
# KEYS: lane, lanes, lease. ARGV: ticket, lane name, owner, ttl ms, next look-at (ms).
# Removes the posted ticket and returns the next head (releasing the lease when none is left).
_POP = """
redis.call('ZREM', KEYS[1], ARGV[1])
local head = redis.call('ZRANGE', KEYS[1], 0, 0)
if head[1] then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
  if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end
  return head[1]
end
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
return false
"""
# KEYS: lease, lanes, lane. ARGV: owner, lane name, next look-at (ms).
_RELEASE = """
if redis.call('ZCARD', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[2])
else
  redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: lease. ARGV: owner, ttl ms.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class Speaker(BaseModel):
    model_config = ConfigDict(frozen=True)

    display_name: str
    avatar_url: str | None = None


class Ticket(BaseModel):
    """A reply a lane is waiting for: enough to post it, or to say it failed, without its job."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    delivery: Delivery
    speaker: Speaker
    personality_slug: str
    error_message: str | None  # the personality's own words for a failure, if it has them
    order: float  # the triggering message's time in ms, times 10, plus the mention's index
    created_at: float  # epoch seconds

    @property
    def lane(self) -> str:
        return self.delivery.lane


@dataclass(frozen=True)
class Head:
    ticket: Ticket | None  # None: the head could not be read (it is dropped)
    raw: bytes  # the member exactly as stored, to remove it by


def _head(raw: bytes | None) -> Head | None:
    if not raw:  # nil (or Lua's false) for an empty lane
        return None
    try:
        return Head(Ticket.model_validate_json(raw), raw)
    except ValueError:
        return Head(None, raw)


def _ms(seconds_from_now: float = 0.0) -> int:
    return int((time.time() + seconds_from_now) * 1000)


class Lanes:
    def __init__(self, redis: Redis, owner: str, *, look_again_after: float = 30.0) -> None:
        self._redis = redis
        self.owner = owner
        self._look_again_after = look_again_after
        self._add = redis.register_script(_ADD)
        self._lease_and_head = redis.register_script(_LEASE_AND_HEAD)
        self._pop = redis.register_script(_POP)
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)

    async def add(self, ticket: Ticket) -> None:
        await self._add(
            keys=[LANE.key(lane=ticket.lane), LANES.key()],
            args=[ticket.order, ticket.model_dump_json(), ticket.lane,
                  _ms(self._look_again_after)],
        )  # fmt: skip

    async def lease_head(self, lane: str) -> tuple[bool, Head | None]:
        """Take (or keep) the lane's lease; with it, the lane's head."""
        got, raw = await self._lease_and_head(
            keys=[LANE_LEASE.key(lane=lane), LANE.key(lane=lane)], args=[self.owner, LEASE_MS]
        )
        return bool(got), _head(raw) if got else None

    async def pop(self, lane: str, head: Head) -> Head | None:
        """Remove the head (posted, or given up); the next head, with the lease kept."""
        raw = await self._pop(
            keys=[LANE.key(lane=lane), LANES.key(), LANE_LEASE.key(lane=lane)],
            args=[head.raw, lane, self.owner, LEASE_MS, _ms(self._look_again_after)],
        )
        return _head(raw)

    async def renew(self, lane: str) -> bool:
        return bool(
            await self._renew(keys=[LANE_LEASE.key(lane=lane)], args=[self.owner, LEASE_MS])
        )

    async def release(self, lane: str, look_again_in: float | None = None) -> None:
        """Give the lease back; the lane is looked at again after `look_again_in` seconds."""
        look = _ms(look_again_in if look_again_in is not None else self._look_again_after)
        await self._release(keys=[LANE_LEASE.key(lane=lane), LANES.key(), LANE.key(lane=lane)],
                            args=[self.owner, lane, look])  # fmt: skip

    async def due(self, limit: int = 100) -> list[str]:
        """Lanes whose next look is due (their head may have been lost without a word)."""
        raw: Any = await self._redis.zrangebyscore(LANES.key(), "-inf", _ms(), start=0, num=limit)
        return [as_text(lane) for lane in raw]

    async def count(self) -> int:
        return int(await self._redis.zcard(LANES.key()))
