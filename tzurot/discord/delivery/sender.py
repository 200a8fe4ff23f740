"""Posting one chunk of a reply to Discord: through the channel's webhook, as the bot, or as an
interaction's answer; and finding out whether a chunk is already there.

`allowed_mentions` allows nothing, ever: model output never pings anyone. A webhook deleted by a
moderator (10015) is replaced and the post tried once more; without Manage Webhooks the bot
posts as itself with the name in front and tells the channel, once a day, what is missing.
Every failure leaves as a `DeliveryError` (permanent or transient), never as hikari's own
exception, whose text carries the request URL and so a webhook's token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal, TypeVar

import hikari
from redis.asyncio import Redis

from tzurot.discord.delivery.errors import DeliveryError, classify
from tzurot.discord.delivery.lanes import Speaker
from tzurot.discord.delivery.render import bot_prefix, webhook_username
from tzurot.discord.delivery.webhooks import WebhookDirectory
from tzurot.infra.keys import NOTICE
from tzurot.logs import get_logger

log = get_logger(__name__)

MISSING_WEBHOOKS_NOTICE = (
    "I need the **Manage Webhooks** permission in this channel to answer under each "
    "character's own name and avatar. Until then I'll answer as myself."
)
# How far back the channel is read to find a chunk that may already be posted.
_LOOK_BACK = 50

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    kind: Literal["channel", "dm", "interaction"]
    channel_id: str  # for a thread, its parent (whose webhook posts into the thread)
    thread_id: str | None = None
    interaction_token: str | None = None
    application_id: str | None = None

    @property
    def post_channel_id(self) -> str:
        return self.thread_id or self.channel_id


# What Discord answers about a message that is no longer there to edit or delete.
_GONE = frozenset({"unknown_message", "unknown_webhook", "not_author", "message_gone"})


async def _gone_if_unknown(call: Awaitable[None]) -> None:
    try:
        await call
    except DeliveryError as error:
        if error.category in _GONE:
            raise DeliveryError(True, "message_gone", error.status, error.code) from None
        raise


async def discord_call(call: Callable[[], Awaitable[T]]) -> T:
    """Run one REST call; any failure comes out classified, hikari's exception dropped."""
    try:
        return await call()
    except Exception as exc:
        error = classify(exc)
    raise error


class ReplySender:
    def __init__(
        self,
        rest: hikari.api.RESTClient,
        webhooks: WebhookDirectory,
        redis: Redis,
        bot_user_id: Callable[[], str | None],
    ) -> None:
        self._rest = rest
        self._webhooks = webhooks
        self._redis = redis
        self._bot_user_id = bot_user_id

    async def post(self, target: Target, speaker: Speaker, chunk: str, *, index: int) -> str:
        """Post one chunk; returns the message id."""
        if target.kind == "interaction":
            return await self._via_interaction(target, chunk, index=index)
        if target.kind == "dm":
            return await self.post_plain(
                target.channel_id, bot_prefix(speaker.display_name) + chunk
            )
        return await self._via_webhook(target, speaker, chunk)

    async def _via_webhook(self, target: Target, speaker: Speaker, chunk: str) -> str:
        for fresh in (False, True):
            webhook = await discord_call(
                partial(self._webhooks.get, target.channel_id, fresh=fresh)
            )
            if webhook is None:
                return await self._as_bot(target, speaker, chunk)
            try:
                return await self._execute(webhook, target, speaker, chunk)
            except DeliveryError as error:
                if error.category != "unknown_webhook" or fresh:
                    raise
                log.warning("webhook was deleted; making another", channel_id=target.channel_id)
        raise AssertionError("unreachable")

    async def _execute(
        self, webhook: tuple[str, str], target: Target, speaker: Speaker, content: str
    ) -> str:
        webhook_id, token = webhook
        thread = hikari.Snowflake(target.thread_id) if target.thread_id else hikari.UNDEFINED
        message = await discord_call(
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

    async def _as_bot(self, target: Target, speaker: Speaker, chunk: str) -> str:
        if await self._first_notice(target.channel_id, "manage-webhooks"):
            log.warning("missing Manage Webhooks permission", channel_id=target.channel_id)
            await self.post_plain(target.post_channel_id, MISSING_WEBHOOKS_NOTICE)
        return await self.post_plain(
            target.post_channel_id, bot_prefix(speaker.display_name) + chunk
        )

    async def _via_interaction(self, target: Target, chunk: str, *, index: int) -> str:
        if not target.interaction_token or not target.application_id:
            raise DeliveryError(True, "interaction_expired")
        app, token = hikari.Snowflake(target.application_id), target.interaction_token
        if index == 0:  # the deferred "thinking..." becomes the answer (an edit: idempotent)
            message = await discord_call(
                lambda: self._rest.edit_interaction_response(
                    app, token, chunk,
                    mentions_everyone=False, user_mentions=False, role_mentions=False,
                )
            )  # fmt: skip
        else:
            message = await discord_call(
                lambda: self._rest.execute_webhook(
                    app, token, chunk,
                    mentions_everyone=False, user_mentions=False, role_mentions=False,
                )
            )  # fmt: skip
        return str(message.id)

    async def post_plain(self, channel_id: str, content: str) -> str:
        message = await discord_call(
            lambda: self._rest.create_message(
                hikari.Snowflake(channel_id),
                content,
                mentions_everyone=False,
                user_mentions=False,
                role_mentions=False,
            )
        )
        return str(message.id)

    async def post_dm(self, user_id: str, content: str) -> str:
        """A message to a user alone, in their DM channel with the bot."""
        channel = await discord_call(
            lambda: self._rest.create_dm_channel(hikari.Snowflake(user_id))
        )
        return await self.post_plain(str(channel.id), content)

    async def edit_interaction(self, application_id: str, token: str, content: str) -> None:
        await discord_call(
            lambda: self._rest.edit_interaction_response(
                hikari.Snowflake(application_id), token, content,
                mentions_everyone=False, user_mentions=False, role_mentions=False,
            )
        )  # fmt: skip

    async def delete(self, channel_id: str, message_id: str) -> None:
        try:
            await discord_call(
                lambda: self._rest.delete_message(
                    hikari.Snowflake(channel_id), hikari.Snowflake(message_id)
                )
            )
        except DeliveryError as error:
            log.info("could not delete a notice", channel_id=channel_id, error=str(error))

    # -- a posted reply message, edited or removed (streaming, Regenerate) ---------------------

    async def edit(
        self, target: Target, speaker: Speaker, message_id: str, chunk: str, *, index: int
    ) -> None:
        """Make reply message `message_id` (chunk `index` of its reply) read `chunk`. A message
        that can no longer be edited (deleted, or posted by a webhook that is gone) raises the
        permanent DeliveryError `message_gone`."""
        if target.kind == "interaction":
            await _gone_if_unknown(self._edit_interaction(target, message_id, chunk, index=index))
        elif target.kind == "dm":
            await _gone_if_unknown(
                self._edit_as_bot(target, message_id, bot_prefix(speaker.display_name) + chunk)
            )
        else:
            await self._edit_in_channel(target, speaker, message_id, chunk)

    async def _edit_in_channel(
        self, target: Target, speaker: Speaker, message_id: str, chunk: str
    ) -> None:
        webhook = await discord_call(partial(self._webhooks.get, target.channel_id))
        if webhook is not None:
            webhook_id, token = webhook
            thread = hikari.Snowflake(target.thread_id) if target.thread_id else hikari.UNDEFINED
            try:
                await discord_call(
                    lambda: self._rest.edit_webhook_message(
                        hikari.Snowflake(webhook_id), token, hikari.Snowflake(message_id), chunk,
                        thread=thread,
                        mentions_everyone=False, user_mentions=False, role_mentions=False,
                    )
                )  # fmt: skip
                return
            except DeliveryError as error:
                if error.category not in _GONE:
                    raise
                if error.category == "unknown_webhook":
                    await self._webhooks.forget(target.channel_id)
                # Posted as the bot itself (no webhook back then), or by a webhook since
                # deleted: the bot's own edit is the one left to try.
        prefixed = bot_prefix(speaker.display_name) + chunk
        await _gone_if_unknown(self._edit_as_bot(target, message_id, prefixed))

    async def _edit_as_bot(self, target: Target, message_id: str, content: str) -> None:
        await discord_call(
            lambda: self._rest.edit_message(
                hikari.Snowflake(target.post_channel_id), hikari.Snowflake(message_id), content,
                mentions_everyone=False, user_mentions=False, role_mentions=False,
            )
        )  # fmt: skip

    async def _edit_interaction(
        self, target: Target, message_id: str, chunk: str, *, index: int
    ) -> None:
        if not target.interaction_token or not target.application_id:
            raise DeliveryError(True, "interaction_expired")
        app, token = hikari.Snowflake(target.application_id), target.interaction_token
        if index == 0:
            await discord_call(
                lambda: self._rest.edit_interaction_response(
                    app, token, chunk,
                    mentions_everyone=False, user_mentions=False, role_mentions=False,
                )
            )  # fmt: skip
            return
        await discord_call(
            lambda: self._rest.edit_webhook_message(
                app, token, hikari.Snowflake(message_id), chunk,
                mentions_everyone=False, user_mentions=False, role_mentions=False,
            )
        )  # fmt: skip

    async def remove(self, target: Target, message_id: str, *, index: int) -> None:
        """Delete reply message `message_id` (chunk `index`); one already gone is fine."""
        try:
            if target.kind == "interaction":
                await self._remove_interaction(target, message_id, index=index)
            elif target.kind == "channel":
                await self._remove_in_channel(target, message_id)
            else:
                await self._remove_as_bot(target, message_id)
        except DeliveryError as error:
            if error.category not in _GONE:
                raise

    async def _remove_in_channel(self, target: Target, message_id: str) -> None:
        webhook = await discord_call(partial(self._webhooks.get, target.channel_id))
        if webhook is not None:
            webhook_id, token = webhook
            thread = hikari.Snowflake(target.thread_id) if target.thread_id else hikari.UNDEFINED
            try:
                await discord_call(
                    lambda: self._rest.delete_webhook_message(
                        hikari.Snowflake(webhook_id), token, hikari.Snowflake(message_id),
                        thread=thread,
                    )
                )  # fmt: skip
                return
            except DeliveryError as error:
                if error.category not in _GONE:
                    raise
        await self._remove_as_bot(target, message_id)

    async def _remove_as_bot(self, target: Target, message_id: str) -> None:
        await discord_call(
            lambda: self._rest.delete_message(
                hikari.Snowflake(target.post_channel_id), hikari.Snowflake(message_id)
            )
        )

    async def _remove_interaction(self, target: Target, message_id: str, *, index: int) -> None:
        if not target.interaction_token or not target.application_id:
            raise DeliveryError(True, "interaction_expired")
        app, token = hikari.Snowflake(target.application_id), target.interaction_token
        if index == 0:
            await discord_call(lambda: self._rest.delete_interaction_response(app, token))
        else:
            await discord_call(
                lambda: self._rest.delete_webhook_message(app, token, hikari.Snowflake(message_id))
            )

    async def find_own(self, target: Target, speaker: Speaker, *, after: str | None) -> str | None:
        """The first message after `after` that this reply's speaker posted here, whatever it
        says: a streamed message posted but never recorded (its text was provisional)."""
        if target.kind == "interaction" and target.application_id is None:
            return None
        senders = {target.application_id} if target.kind == "interaction" else set()
        if target.kind == "channel":
            cached = await discord_call(partial(self._webhooks.get, target.channel_id))
            if cached is not None:
                senders.add(cached[0])
        username = webhook_username(speaker.display_name)
        prefix = bot_prefix(speaker.display_name)
        own_id = self._bot_user_id()
        after_id = hikari.Snowflake(after) if after else hikari.Snowflake.min()
        channel = hikari.Snowflake(target.post_channel_id)
        messages = await discord_call(
            lambda: self._rest.fetch_messages(channel, after=after_id).limit(_LOOK_BACK)
        )
        anyone = target.kind == "interaction"  # an interaction's messages are all this reply's
        for message in sorted(messages, key=lambda m: int(m.id)):
            sender = str(message.webhook_id) if message.webhook_id else None
            by_webhook = sender is not None and sender in senders
            by_bot = sender is None and own_id is not None and str(message.author.id) == own_id
            if (by_webhook and (anyone or message.author.username == username)) or (
                by_bot and (anyone or (message.content or "").startswith(prefix))
            ):
                return str(message.id)
        return None

    async def find_posted(
        self, target: Target, speaker: Speaker, chunk: str, *, after: str | None
    ) -> str | None:
        """The id of a message already in the channel carrying `chunk` as this delivery would
        have posted it (a process may have died between posting it and recording it)."""
        if target.kind == "interaction" and target.application_id is None:
            return None
        wanted = {chunk, bot_prefix(speaker.display_name) + chunk}
        senders = {target.application_id} if target.kind == "interaction" else set()
        if target.kind != "interaction":
            cached = await discord_call(partial(self._webhooks.get, target.channel_id))
            if cached is not None:
                senders.add(cached[0])
        own_id = self._bot_user_id()
        after_id = hikari.Snowflake(after) if after else hikari.Snowflake.min()
        channel = hikari.Snowflake(target.post_channel_id)
        messages = await discord_call(
            lambda: self._rest.fetch_messages(channel, after=after_id).limit(_LOOK_BACK)
        )
        for message in messages:
            sender = str(message.webhook_id) if message.webhook_id else None
            ours = (sender is not None and sender in senders) or (
                sender is None and own_id is not None and str(message.author.id) == own_id
            )
            if ours and message.content in wanted:
                return str(message.id)
        return None

    async def _first_notice(self, channel_id: str, kind: str) -> bool:
        """True the first time (per day) a channel is told about `kind`."""
        key = NOTICE.key(kind=kind, channel_id=channel_id)
        return bool(await self._redis.set(key, 1, nx=True, ex=NOTICE.ttl_seconds))
