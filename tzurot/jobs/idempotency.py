"""Duplicate guards: one job per request id, one generation per (source message, personality)."""

from __future__ import annotations

from redis.asyncio import Redis

from tzurot.infra.redis_client import as_text
from tzurot.jobs.constants import MESSAGE_LOCK_SECONDS, REQUEST_DEDUP_SECONDS


class DuplicateGuard:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def claim_request(self, request_id: str, job_id: str) -> str | None:
        """Claim `dedup:{requestId}` for 5 s; returns the job id already holding it, if any."""
        return await self._claim(f"dedup:{request_id}", job_id, REQUEST_DEDUP_SECONDS)

    async def claim_message(self, message_id: str, personality_id: str, job_id: str) -> str | None:
        """Claim `processed:{messageId}:{personalityId}` for 1 h; returns an earlier holder."""
        key = f"processed:{message_id}:{personality_id}"
        return await self._claim(key, job_id, MESSAGE_LOCK_SECONDS)

    async def release_request(self, request_id: str, job_id: str) -> None:
        await self._release(f"dedup:{request_id}", job_id)

    async def release_message(self, message_id: str, personality_id: str, job_id: str) -> None:
        await self._release(f"processed:{message_id}:{personality_id}", job_id)

    async def _claim(self, key: str, job_id: str, seconds: int) -> str | None:
        if await self._redis.set(key, job_id, nx=True, ex=seconds):
            return None
        holder = await self._redis.get(key)
        # The key may have expired between SET and GET: then nobody holds it any more.
        if holder is None:
            return await self._claim(key, job_id, seconds)
        held = as_text(holder)
        return None if held == job_id else held

    async def _release(self, key: str, job_id: str) -> None:
        holder = await self._redis.get(key)
        if holder is not None and as_text(holder) == job_id:
            await self._redis.delete(key)
