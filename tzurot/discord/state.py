"""The Discord front end's own Redis keys: who said what, where, and what is already posted."""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis

from tzurot.infra.redis_client import as_text
from tzurot.infra.secretbox import SecretBox

MESSAGE_MAP_SECONDS = 7 * 24 * 3600
DM_STICKY_SECONDS = 30 * 24 * 3600
DELIVERED_SECONDS = 7 * 24 * 3600
NOTICE_SECONDS = 24 * 3600


class DiscordState:
    def __init__(self, redis: Redis, secrets: SecretBox) -> None:
        self._redis = redis
        self._secrets = secrets

    # Which personality wrote a delivered message (replies continue with it).

    async def remember_message(self, message_id: str, personality_slug: str) -> None:
        await self._redis.set(f"webhook:{message_id}", personality_slug, ex=MESSAGE_MAP_SECONDS)

    async def personality_of_message(self, message_id: str) -> str | None:
        value = await self._redis.get(f"webhook:{message_id}")
        return as_text(value) if value is not None else None

    # The personality a user last talked to in DMs.

    async def set_dm_personality(self, user_id: str, slug: str) -> None:
        await self._redis.set(f"dm-last:{user_id}", slug, ex=DM_STICKY_SECONDS)

    async def dm_personality(self, user_id: str) -> str | None:
        value = await self._redis.get(f"dm-last:{user_id}")
        return as_text(value) if value is not None else None

    # One webhook per channel; its token is a secret, so it is stored sealed.

    async def cached_webhook(self, channel_id: str) -> tuple[str, str] | None:
        sealed = await self._redis.get(f"webhook-cache:{channel_id}")
        if sealed is None:
            return None
        opened = self._secrets.open(bytes(sealed) if isinstance(sealed, bytes) else sealed.encode())
        if opened is None:
            return None
        data = json.loads(opened)
        return str(data["id"]), str(data["token"])

    async def cache_webhook(self, channel_id: str, webhook_id: str, token: str) -> None:
        sealed = self._secrets.seal(json.dumps({"id": webhook_id, "token": token}))
        await self._redis.set(f"webhook-cache:{channel_id}", sealed)

    async def forget_webhook(self, channel_id: str) -> None:
        await self._redis.delete(f"webhook-cache:{channel_id}")

    # Reply ordering: jobs waiting for delivery in a channel, by the time of the message that
    # triggered them. A reply is posted only once every earlier one in its channel is.

    async def expect_reply(self, channel_id: str, job_id: str, order: float) -> None:
        await self._redis.zadd(f"reply-order:{channel_id}", {job_id: order}, nx=True)

    async def first_expected(self, channel_id: str, stale_before: float) -> str | None:
        key = f"reply-order:{channel_id}"
        await self._redis.zremrangebyscore(key, "-inf", stale_before)
        head: Any = await self._redis.zrange(key, 0, 0)
        return as_text(head[0]) if head else None

    async def reply_done(self, channel_id: str, job_id: str) -> None:
        await self._redis.zrem(f"reply-order:{channel_id}", job_id)

    # Delivery progress: how many chunks of a job's reply are already posted.

    async def delivered_chunks(self, job_id: str) -> int:
        value = await self._redis.get(f"delivered:{job_id}")
        return int(value) if value is not None else 0

    async def mark_chunks(self, job_id: str, count: int) -> None:
        await self._redis.set(f"delivered:{job_id}", count, ex=DELIVERED_SECONDS)

    async def is_delivered(self, job_id: str) -> bool:
        return bool(await self._redis.exists(f"delivered-all:{job_id}"))

    async def mark_delivered(self, job_id: str) -> None:
        await self._redis.set(f"delivered-all:{job_id}", int(time.time()), ex=DELIVERED_SECONDS)

    async def first_notice(self, channel_id: str, kind: str) -> bool:
        """True the first time (per day) a channel is told about `kind`."""
        key = f"notice:{kind}:{channel_id}"
        return bool(await self._redis.set(key, 1, nx=True, ex=NOTICE_SECONDS))
