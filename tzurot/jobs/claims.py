"""The one duplicate guard: one job per request id, and one per (source message, personality).

Both claims are taken in one atomic step; when either is already held, its job id comes back
and the caller answers with that job instead of starting another.
"""

from __future__ import annotations

from redis.asyncio import Redis

from tzurot.ai.contracts import GenerationRequest
from tzurot.infra.keys import CLAIM
from tzurot.infra.redis_client import as_text
from tzurot.jobs.constants import CLAIM_SECONDS

# KEYS: the claims. ARGV: job id, seconds. Returns the first holder found, or nil after
# claiming every key.
_CLAIM = """
for _, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder then return holder end
end
for _, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1], 'EX', ARGV[2]) end
return false
"""


def claim_keys(request: GenerationRequest) -> list[str]:
    keys = [CLAIM.key(request=f"request:{request.request_id}")]
    if request.source_message_id is not None:
        message = f"message:{request.source_message_id}:{request.personality_slug}"
        keys.append(CLAIM.key(request=message))
    return keys


class DuplicateGuard:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(_CLAIM)

    async def claim(self, request: GenerationRequest, job_id: str) -> str | None:
        """Claim the request for `job_id`; returns the job id already holding it (which may be
        `job_id` itself: the same request sent again), or None when the claim is new."""
        holder = await self._claim(keys=claim_keys(request), args=[job_id, CLAIM_SECONDS])
        return as_text(holder) if holder is not None else None

    async def take_over(self, request: GenerationRequest, job_id: str) -> None:
        """The earlier holder's job vanished (its Redis data was lost): claim for ours."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in claim_keys(request):
                pipe.set(key, job_id, ex=CLAIM_SECONDS)
            await pipe.execute()
