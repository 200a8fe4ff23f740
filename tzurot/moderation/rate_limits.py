"""Rate limits per user and per channel: sliding one-minute windows in Redis.

Each user and each channel has a sorted set of the generations it started in the last window
(member: a request id, score: its time in ms), expiring with the window. One script checks both
windows and records the request only when both have room, so a refused request never uses up
anyone's allowance, and every process sees the same counts (the time is Redis's own clock).

When a request is refused, the same script sets a "told" key with NX for the rest of the window:
`Decision.tell` is True only the first time, so a user hammering away is told once per window,
not once per message. A limit of 0 turns that window off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from tzurot.infra.keys import RATE_CHANNEL, RATE_TOLD, RATE_USER

WINDOW_SECONDS = 60

# KEYS: user window, channel window, told key. ARGV: now ms ('' = Redis's clock), window ms,
# user limit, channel limit, request id, cost. Returns {allowed, retry ms, which, tell}.
_CHECK = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local window = tonumber(ARGV[2])
local limits = {tonumber(ARGV[3]), tonumber(ARGV[4])}
local cost = tonumber(ARGV[6])
local names = {'user', 'channel'}
local wait, which = 0, ''
for i = 1, 2 do
  local limit = limits[i]
  if limit > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
    local need = math.min(cost, limit)
    local count = redis.call('ZCARD', KEYS[i])
    if count + need > limit then
      -- the oldest entries must leave the window first; the one that frees enough room:
      local oldest = redis.call('ZRANGE', KEYS[i], count + need - limit - 1,
                                count + need - limit - 1, 'WITHSCORES')
      local free_at = tonumber(oldest[2]) + window
      if free_at - now > wait then wait, which = free_at - now, names[i] end
    end
  end
end
if wait > 0 then
  local tell = redis.call('SET', KEYS[3], which, 'NX', 'PX', math.max(math.floor(wait), 1))
  return {0, math.floor(wait), which, tell and 1 or 0}
end
for i = 1, 2 do
  local limit = limits[i]
  if limit > 0 then
    for n = 1, math.min(cost, limit) do
      redis.call('ZADD', KEYS[i], now, ARGV[5] .. '#' .. n)
    end
    redis.call('PEXPIRE', KEYS[i], window)
  end
end
return {1, 0, '', 0}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until the request would be allowed
    limit: Literal["user", "channel", ""] = ""  # which window refused it
    tell: bool = False  # the first refusal in this window: tell the user

    @property
    def retry_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after))


ALLOWED = Decision(True)


class RateLimiter:
    def __init__(
        self, redis: Redis, per_user: int, per_channel: int, *, window: float = WINDOW_SECONDS
    ) -> None:
        if per_user < 0 or per_channel < 0 or window <= 0:
            raise ValueError("rate limits must not be negative, the window must be positive")
        self.per_user = per_user
        self.per_channel = per_channel
        self._window_ms = int(window * 1000)
        self._check = redis.register_script(_CHECK)

    @property
    def enabled(self) -> bool:
        return self.per_user > 0 or self.per_channel > 0

    async def check(
        self,
        user_id: str,
        channel_id: str,
        request_id: str,
        *,
        cost: int = 1,
        now: float | None = None,
    ) -> Decision:
        """Allow (and record) `cost` generations for this user in this channel, or say when
        to try again. `now` (seconds) is for tests; by default Redis's clock counts."""
        if not self.enabled or cost <= 0:
            return ALLOWED
        keys = [
            RATE_USER.key(user_id=user_id),
            RATE_CHANNEL.key(channel_id=channel_id),
            RATE_TOLD.key(user_id=user_id),
        ]
        args: list[str | int] = [
            "" if now is None else str(int(now * 1000)),
            self._window_ms, self.per_user, self.per_channel, request_id, cost,
        ]  # fmt: skip
        allowed, wait_ms, which, tell = await self._check(keys=keys, args=args)
        if allowed:
            return ALLOWED
        limit = which.decode() if isinstance(which, bytes) else str(which)
        return Decision(
            False,
            retry_after=int(wait_ms) / 1000,
            limit="channel" if limit == "channel" else "user",
            tell=bool(tell),
        )
