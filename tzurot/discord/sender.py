"""Posting replies to Discord: webhooks per channel, DMs, interaction edits, fallbacks.

`allowed_mentions` allows nothing, ever: model output never pings anyone. A webhook deleted
by a moderator (10015) is recreated and the send retried once; without Manage Webhooks the bot
posts as itself with the name in front and tells the channel, once, what is missing. Discord
5xx and rate limits are retried; a reply that still cannot be posted is left for the next try.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import hikari

from tzurot.discord.render import dm_prefix, webhook_username
from tzurot.discord.splitting import split_message
from tzurot.discord.state import DiscordState
from tzurot.logs import get_logger

log = get_logger(__name__)

WEBHOOK_NAME = "Tzurot"
_SEND_ATTEMPTS = 5
_UNKNOWN_WEBHOOK = 10015
MISSING_WEBHOOKS_NOTICE = (
    "I need the **Manage Webhooks** permission in this channel to answer under each "
    "character's own name and avatar. Until then I'll answer as myself."
)


@dataclass(frozen=True)
class Speaker:
    display_name: str
    avatar_url: str | None


@dataclass(frozen=True)
class Target:
    kind: str  # "channel", "dm" or "interaction"
    channel_id: str
    thread_id: str | None = None
    interaction_token: str | None = None
    application_id: str | None = None


class SendFailed(Exception):
    """Discord kept refusing; the reply stays pending and is tried again later."""


T = TypeVar("T")


async def with_retries(send: Callable[[], Awaitable[T]]) -> T:
    delay = 1.0
    for attempt in range(1, _SEND_ATTEMPTS + 1):
        try:
            return await send()
        except hikari.RateLimitTooLongError as exc:
            wait = exc.retry_after
        except hikari.InternalServerError:
            wait = delay
        except (hikari.ComponentStateConflictError, OSError, TimeoutError):
            wait = delay
        if attempt == _SEND_ATTEMPTS:
            break
        log.warning("discord send failed; retrying", attempt=attempt, wait_s=wait)
        await asyncio.sleep(min(wait, 30.0))
        delay *= 2
    raise SendFailed("discord did not accept the message")


class ReplySender:
    def __init__(self, rest: hikari.api.RESTClient, state: DiscordState) -> None:
        self._rest = rest
        self._state = state

    async def send(
        self,
        target: Target,
        speaker: Speaker,
        text: str,
        skip: int = 0,
        on_sent: Callable[[int, str], Awaitable[None]] | None = None,
    ) -> list[str]:
        """Post `text` in as many messages as it takes; chunks before `skip` were already
        posted. `on_sent(index, message_id)` runs after each chunk. Returns the new ids."""
        prefix = dm_prefix(speaker.display_name) if target.kind == "dm" else ""
        chunks = split_message(text, limit=2000 - len(prefix))
        posted: list[str] = []
        for index, chunk in enumerate(chunks):
            if index < skip:
                continue
            message_id = await self._send_one(target, speaker, prefix + chunk, first=index == 0)
            posted.append(message_id)
            if on_sent is not None:
                await on_sent(index, message_id)
        return posted

    async def _send_one(
        self, target: Target, speaker: Speaker, content: str, *, first: bool
    ) -> str:
        if target.kind == "interaction" and target.interaction_token and target.application_id:
            return await self._send_interaction(target, content, first=first)
        if target.kind == "dm":
            return await self._create_message(target.channel_id, content)
        return await self._send_webhook(target, speaker, content)

    async def _send_interaction(self, target: Target, content: str, *, first: bool) -> str:
        assert target.interaction_token is not None and target.application_id is not None
        app, token = hikari.Snowflake(target.application_id), target.interaction_token
        if first:
            message = await with_retries(
                lambda: self._rest.edit_interaction_response(
                    app,
                    token,
                    content,
                    mentions_everyone=False,
                    user_mentions=False,
                    role_mentions=False,
                )
            )
        else:
            message = await with_retries(
                lambda: self._rest.execute_webhook(
                    app,
                    token,
                    content,
                    mentions_everyone=False,
                    user_mentions=False,
                    role_mentions=False,
                )
            )
        return str(message.id)

    async def _send_webhook(self, target: Target, speaker: Speaker, content: str) -> str:
        for recreated in (False, True):
            webhook = await self._webhook(target.channel_id, fresh=recreated)
            if webhook is None:
                return await self._send_as_bot(target, speaker, content)
            try:
                return await self._execute_webhook(webhook, target, speaker, content)
            except hikari.NotFoundError as exc:
                if exc.code != _UNKNOWN_WEBHOOK or recreated:
                    raise
                log.warning("webhook was deleted; recreating", channel_id=target.channel_id)
                await self._state.forget_webhook(target.channel_id)
        raise SendFailed("webhook could not be recreated")

    async def _execute_webhook(
        self, webhook: tuple[str, str], target: Target, speaker: Speaker, content: str
    ) -> str:
        webhook_id, token = webhook
        thread = hikari.Snowflake(target.thread_id) if target.thread_id else hikari.UNDEFINED
        message = await with_retries(
            lambda: self._rest.execute_webhook(
                hikari.Snowflake(webhook_id),
                token,
                content,
                username=webhook_username(speaker.display_name),
                avatar_url=speaker.avatar_url or hikari.UNDEFINED,
                thread=thread,
                mentions_everyone=False,
                user_mentions=False,
                role_mentions=False,
            )
        )
        return str(message.id)

    async def _create_message(self, channel_id: str, content: str) -> str:
        message = await with_retries(
            lambda: self._rest.create_message(
                hikari.Snowflake(channel_id),
                content,
                mentions_everyone=False,
                user_mentions=False,
                role_mentions=False,
            )
        )
        return str(message.id)

    async def _webhook(self, channel_id: str, *, fresh: bool) -> tuple[str, str] | None:
        if not fresh:
            cached = await self._state.cached_webhook(channel_id)
            if cached is not None:
                return cached
        try:
            created = await with_retries(
                lambda: self._rest.create_webhook(hikari.Snowflake(channel_id), WEBHOOK_NAME)
            )
        except hikari.ForbiddenError:
            return None
        if created.token is None:
            return None
        await self._state.cache_webhook(channel_id, str(created.id), created.token)
        return str(created.id), created.token

    async def _send_as_bot(self, target: Target, speaker: Speaker, content: str) -> str:
        channel = target.thread_id or target.channel_id
        if await self._state.first_notice(target.channel_id, "manage-webhooks"):
            log.warning("missing Manage Webhooks permission", channel_id=target.channel_id)
            await self._create_message(channel, MISSING_WEBHOOKS_NOTICE)
        text = dm_prefix(speaker.display_name) + content
        if len(text) > 2000:
            text = text[:1999] + "…"
        return await self._create_message(channel, text)

    async def post_plain(self, channel_id: str, content: str) -> str:
        return await self._create_message(channel_id, content)

    async def delete(self, channel_id: str, message_id: str) -> None:
        try:
            await self._rest.delete_message(
                hikari.Snowflake(channel_id), hikari.Snowflake(message_id)
            )
        except hikari.HTTPError:
            log.info("could not delete a notice", channel_id=channel_id)
