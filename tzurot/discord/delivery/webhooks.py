"""One webhook per channel, found or made on first need, its token sealed at rest in Redis.

On a cache miss the channel's existing webhooks are looked at first (one this application made
is reused), so a lost cache or a second process never piles up webhooks (Discord allows 15 per
channel). Without Manage Webhooks there is no webhook: `get()` answers None and the caller posts
as the bot itself. A webhook found is also kept in memory for `_MEMORY_SECONDS` (a streamed
reply edits its messages every second); one that turns out deleted is forgotten at once.
"""

from __future__ import annotations

import json
import time

import hikari
from redis.asyncio import Redis

from tzurot.infra.keys import WEBHOOK
from tzurot.infra.secretbox import SecretBox
from tzurot.logs import get_logger

log = get_logger(__name__)

WEBHOOK_NAME = "Tzurot"
_MEMORY_SECONDS = 30.0


class WebhookDirectory:
    def __init__(
        self, rest: hikari.api.RESTClient, redis: Redis, secrets: SecretBox, application_id: str
    ) -> None:
        self._rest = rest
        self._redis = redis
        self._secrets = secrets
        self.application_id = application_id
        self._memory: dict[str, tuple[float, tuple[str, str]]] = {}

    async def get(self, channel_id: str, *, fresh: bool = False) -> tuple[str, str] | None:
        """(webhook id, token) for the channel; None when the bot may not manage webhooks.
        `fresh` skips the cache (the cached webhook was deleted)."""
        if fresh:
            await self.forget(channel_id)
        else:
            remembered = self._memory.get(channel_id)
            if remembered is not None and remembered[0] > time.monotonic():
                return remembered[1]
            cached = await self._cached(channel_id)
            if cached is not None:
                self._remember(channel_id, cached)
                return cached
        try:
            found = await self._find_or_create(hikari.Snowflake(channel_id))
        except hikari.ForbiddenError:
            return None
        if found is None:
            return None
        webhook_id, token = found
        sealed = self._secrets.seal(json.dumps({"id": webhook_id, "token": token}))
        await self._redis.set(WEBHOOK.key(channel_id=channel_id), sealed, ex=WEBHOOK.ttl_seconds)
        self._remember(channel_id, found)
        return found

    async def forget(self, channel_id: str) -> None:
        """The channel's webhook is gone: the next `get()` finds or makes another."""
        self._memory.pop(channel_id, None)
        await self._redis.delete(WEBHOOK.key(channel_id=channel_id))

    def _remember(self, channel_id: str, webhook: tuple[str, str]) -> None:
        if len(self._memory) > 10_000:  # a bound, never reached in practice: start over
            self._memory.clear()
        self._memory[channel_id] = (time.monotonic() + _MEMORY_SECONDS, webhook)

    async def _find_or_create(self, channel: hikari.Snowflake) -> tuple[str, str] | None:
        existing = await self._rest.fetch_channel_webhooks(channel)
        for webhook in existing:
            token = getattr(webhook, "token", None)
            app = getattr(webhook, "application_id", None)
            if token and app is not None and str(app) == self.application_id:
                return str(webhook.id), token
        created = await self._rest.create_webhook(channel, WEBHOOK_NAME)
        if created.token is None:
            return None
        log.info("webhook created", channel_id=str(channel))
        return str(created.id), created.token

    async def _cached(self, channel_id: str) -> tuple[str, str] | None:
        sealed = await self._redis.get(WEBHOOK.key(channel_id=channel_id))
        if sealed is None:
            return None
        opened = self._secrets.open(sealed if isinstance(sealed, bytes) else sealed.encode())
        if opened is None:
            return None  # sealed with another key (ENCRYPTION_KEY changed): find it again
        try:
            data = json.loads(opened)
            webhook_id, token = str(data["id"]), str(data["token"])
        except (ValueError, KeyError, TypeError):
            return None
        return webhook_id, token
