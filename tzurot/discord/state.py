"""Who said what, for routing the next message: replies continue with the personality that
wrote the replied-to message, and a bare DM goes to the one the user last talked to."""

from __future__ import annotations

from redis.asyncio import Redis

from tzurot.infra.keys import DM_LAST, SAID_BY
from tzurot.infra.redis_client import as_text


class ConversationState:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def remember_author(self, message_ids: list[str], personality_slug: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for message_id in message_ids:
                pipe.set(SAID_BY.key(message_id=message_id), personality_slug,
                         ex=SAID_BY.ttl_seconds)  # fmt: skip
            await pipe.execute()

    async def author_of(self, message_id: str) -> str | None:
        value = await self._redis.get(SAID_BY.key(message_id=message_id))
        return as_text(value) if value is not None else None

    async def set_dm_personality(self, user_id: str, slug: str) -> None:
        await self._redis.set(DM_LAST.key(user_id=user_id), slug, ex=DM_LAST.ttl_seconds)

    async def dm_personality(self, user_id: str) -> str | None:
        value = await self._redis.get(DM_LAST.key(user_id=user_id))
        return as_text(value) if value is not None else None
