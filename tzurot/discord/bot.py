"""The Discord front end: the hikari gateway bot, its listeners, commands and delivery.

This builds the Discord part's own pieces from the services the application hands in; the
message's path through them reads top to bottom in message_path.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime

import hikari
import lightbulb
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tzurot.discord.attachments import attachment_refs
from tzurot.discord.commands import CommandServices, register_commands
from tzurot.discord.delivery.lanes import Lanes
from tzurot.discord.delivery.live import LiveReplies
from tzurot.discord.delivery.metrics import DeliveryMetrics
from tzurot.discord.delivery.records import DeliveryRecords
from tzurot.discord.delivery.runner import DeliveryRunner
from tzurot.discord.delivery.sender import ReplySender
from tzurot.discord.delivery.webhooks import WebhookDirectory
from tzurot.discord.interactions import InteractionTokens
from tzurot.discord.interactions_router import InteractionRouter
from tzurot.discord.message_events import MessageEvents
from tzurot.discord.message_path import MessagePath
from tzurot.discord.pluralkit import PluralKitApi, PluralKitSpeakers, reply_in_embeds
from tzurot.discord.replies import Replies
from tzurot.discord.services import Community
from tzurot.discord.state import ConversationState
from tzurot.discord.triggers import IncomingMessage, TriggerResolver
from tzurot.discord.typing import TypingBoard
from tzurot.infra.identity import ProcessIdentity
from tzurot.infra.secretbox import SecretBox
from tzurot.jobs import JobQueue, ResultLog
from tzurot.jobs.streams import ReplyStreams
from tzurot.logs import get_logger
from tzurot.moderation.gate import Gate

log = get_logger(__name__)

INTENTS = (
    hikari.Intents.GUILDS
    | hikari.Intents.GUILD_MESSAGES
    | hikari.Intents.DM_MESSAGES
    | hikari.Intents.MESSAGE_CONTENT
)
_MESSAGE_CONTENT = (
    hikari.ApplicationFlags.MESSAGE_CONTENT_INTENT
    | hikari.ApplicationFlags.MESSAGE_CONTENT_INTENT_LIMITED
)
_NEEDED = {
    hikari.Permissions.VIEW_CHANNEL: "View Channels",
    hikari.Permissions.SEND_MESSAGES: "Send Messages",
    hikari.Permissions.READ_MESSAGE_HISTORY: "Read Message History",
    hikari.Permissions.MANAGE_WEBHOOKS: "Manage Webhooks (to answer under each character's name)",
    hikari.Permissions.SEND_MESSAGES_IN_THREADS: "Send Messages in Threads",
}
# hikari waits out a rate limit up to this long inside one call; a longer one comes back to
# delivery, which retries that lane later while others go on.
MAX_RATE_LIMIT_SECONDS = 10.0


class DiscordFrontEnd:
    def __init__(
        self,
        *,
        token: str,
        rest_url: str | None,
        dev_guild_id: int | None,
        shard_count: int | None,
        shard_ids: Sequence[int] | None,
        redis: Redis,
        secrets: SecretBox,
        identity: ProcessIdentity,
        jobs: JobQueue,
        results: ResultLog,
        community: Community,
        registry: CollectorRegistry,
        max_mentions: int,
        taking_longer_after: float,
        job_timeout: float,
        stall_seconds: float,
        pluralkit_url: str = "",
        pluralkit_grace: float = 1.5,
    ) -> None:
        self.bot = hikari.GatewayBot(
            token,
            intents=INTENTS,
            rest_url=rest_url,
            logs=None,  # our logging pipeline already handles hikari's records
            banner=None,
            suppress_optimization_warning=True,
            max_retries=0,  # delivery is the one retry layer (see delivery/errors.py)
            max_rate_limit=MAX_RATE_LIMIT_SECONDS,
        )
        self._shard_count = shard_count
        self._shard_ids = list(shard_ids) if shard_ids is not None else None
        rest = self.bot.rest
        self.webhooks = WebhookDirectory(rest, redis, secrets, application_id="")
        self.sender = ReplySender(rest, self.webhooks, redis, self._bot_user_id)
        self.interactions = InteractionTokens(redis, secrets)
        self.typing = TypingBoard(
            redis, rest, self.sender, self.interactions,
            longer_after=taking_longer_after, owns=self.owns,
        )  # fmt: skip
        state = ConversationState(redis)
        self.lanes = Lanes(redis, owner=identity.name)
        records = DeliveryRecords(redis)
        personalities = community.personalities
        triggers = TriggerResolver(personalities, state, max_mentions=max_mentions,
                                   activations=community.activations)  # fmt: skip
        # PluralKit members speak through its webhooks (pluralkit.py); "" turns it off.
        self.pluralkit = PluralKitSpeakers(
            PluralKitApi(pluralkit_url, redis) if pluralkit_url else None, redis,
            grace=pluralkit_grace,
            could_trigger=lambda m: triggers.could_trigger(m, self._bot_user_id() or ""),
        )  # fmt: skip
        # (C) the 24 h record of each delivered reply: reply actions, edits and deletions.
        self.replies = Replies(redis, transcripts=community.transcripts, memory=community.memory)
        self.path = MessagePath(
            memory=community.memory, replies=self.replies,
            personalities=personalities,
            triggers=triggers, pluralkit=self.pluralkit, settings=community.resolver,
            jobs=jobs, lanes=self.lanes, records=records, typing=self.typing,
            interactions=self.interactions, state=state, sender=self.sender,
            job_timeout=job_timeout,
            gate=Gate(community.denylist, community.rate_limiter, owner_id=community.owner_id,
                      rest=rest),
        )  # fmt: skip
        # Streamed replies are shown while they are written (delivery/live.py).
        self.live = LiveReplies(
            streams=ReplyStreams(redis), records=records, poster=self.path.poster,
            target=self.path.target, visible=self.path.settled,
        )  # fmt: skip
        self.delivery = DeliveryRunner(
            consumer=identity.name, results=results, jobs=jobs, lanes=self.lanes,
            records=records, post_reply=self.path.post_reply, settled=self.path.settled,
            is_alive=identity.is_alive, metrics=DeliveryMetrics(registry),
            job_timeout=job_timeout, stall_seconds=stall_seconds, live=self.live,
        )  # fmt: skip
        guilds = [dev_guild_id] if dev_guild_id else []
        self.commands = lightbulb.client_from_app(self.bot, default_enabled_guilds=guilds)
        self.router = InteractionRouter()
        register_commands(self.commands, CommandServices(community, self.path, self.router))
        self.message_events = MessageEvents(
            path=self.path, replies=self.replies, transcripts=community.transcripts,
            resolver=community.resolver, personalities=personalities,
        )  # fmt: skip
        self.ready = asyncio.Event()
        self._typing_task: asyncio.Task[None] | None = None
        self.bot.subscribe(hikari.StartedEvent, self._on_started)
        self.bot.subscribe(hikari.MessageCreateEvent, self._on_message)
        self.bot.subscribe(hikari.GuildMessageDeleteEvent, self._on_deleted_for_pluralkit)
        self.bot.subscribe(hikari.GuildAvailableEvent, self._on_guild)
        self.bot.subscribe(hikari.InteractionCreateEvent, self.router.on_interaction)
        self.bot.subscribe(hikari.MessageUpdateEvent, self._on_edited)  # (C)
        self.bot.subscribe(hikari.MessageDeleteEvent, self._on_deleted)  # (C)

    async def start(self) -> None:
        try:
            await self.bot.start(
                check_for_updates=False, shard_ids=self._shard_ids, shard_count=self._shard_count
            )
        except hikari.errors.GatewayServerClosedConnectionError as exc:
            if exc.code == hikari.errors.ShardCloseCode.DISALLOWED_INTENT:
                raise RuntimeError(
                    "Discord refused the Message Content intent: enable it in the Developer "
                    "Portal (your app > Bot > Privileged Gateway Intents > Message Content)"
                ) from None
            raise
        await self.delivery.start()
        self._typing_task = asyncio.create_task(self.typing.run(), name="typing")

    async def stop(self) -> None:
        await self.delivery.stop()
        await self.pluralkit.close()
        if self._typing_task is not None:
            self._typing_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._typing_task
        with contextlib.suppress(Exception):
            await self.bot.close()

    @property
    def alive(self) -> bool:
        return self.bot.is_alive and self.ready.is_set()

    def owns(self, guild_id: str | None) -> bool:
        """Whether this process runs the shard that a guild's (None: DMs') events come on."""
        shards = self.bot.shards
        if not shards:
            return False
        if guild_id is None:
            return 0 in shards
        return hikari.snowflakes.calculate_shard_id(self.bot, int(guild_id)) in shards

    def _bot_user_id(self) -> str | None:
        me = self.bot.get_me()
        return str(me.id) if me is not None else None

    async def _on_started(self, _event: hikari.StartedEvent) -> None:
        await self.commands.start()
        try:
            application = await self.bot.rest.fetch_application()
        except hikari.HTTPError:
            application = None
        if application is not None:
            self.webhooks.application_id = str(application.id)
            if not application.flags & _MESSAGE_CONTENT:
                log.warning(
                    "the Message Content intent is not enabled for this bot: the bot cannot "
                    "read messages, so @mentions and replies will not work. Enable it in the "
                    "Developer Portal: your app > Bot > Privileged Gateway Intents > Message "
                    "Content"
                )
        self.ready.set()

    async def _on_guild(self, event: hikari.GuildAvailableEvent) -> None:
        me = self.bot.get_me()
        member = event.guild.get_member(me.id) if me else None
        if member is None:
            return
        permissions = hikari.Permissions.NONE
        for role in member.get_roles():
            permissions |= role.permissions
        if permissions & hikari.Permissions.ADMINISTRATOR:
            return
        missing = [name for perm, name in _NEEDED.items() if not permissions & perm]
        if missing:
            log.warning(
                "the bot lacks permissions in a server; grant its role these",
                guild=event.guild.name, missing=", ".join(missing),
            )  # fmt: skip

    async def _on_edited(self, event: hikari.MessageUpdateEvent) -> None:
        """(C) A user edited a message: history, and maybe a regenerated reply."""
        content = event.content
        if event.is_bot is True or event.is_webhook is True or not isinstance(content, str):
            return
        edited_at = event.message.edited_timestamp
        try:
            await self.message_events.edited(
                channel_id=str(event.channel_id), message_id=str(event.message_id),
                content=content, edited_at=edited_at if isinstance(edited_at, datetime) else None,
            )  # fmt: skip
        except Exception:
            log.exception("could not handle an edited message", message_id=str(event.message_id))

    async def _on_deleted(self, event: hikari.MessageDeleteEvent) -> None:
        """(C) A message was deleted: a user's turn leaves history (the replies stay)."""
        try:
            await self.message_events.deleted(
                channel_id=str(event.channel_id), message_id=str(event.message_id)
            )
        except Exception:
            log.exception("could not handle a deleted message", message_id=str(event.message_id))

    async def _on_message(self, event: hikari.MessageCreateEvent) -> None:
        me = self.bot.get_me()
        if me is None:
            return
        incoming = self._incoming(event, me)
        try:
            if incoming.from_webhook:  # a PluralKit member's message speaks for its sender
                app = str(event.message.application_id)
                ours = app in {self.webhooks.application_id, str(me.id)}
                incoming = await self.pluralkit.as_member(incoming, ours=ours)
            await self.path.on_message(incoming, str(me.id))
        except Exception:
            log.exception("could not handle a message", message_id=incoming.id)

    async def _on_deleted_for_pluralkit(self, event: hikari.GuildMessageDeleteEvent) -> None:
        self.pluralkit.deleted(str(event.message_id))

    def _incoming(self, event: hikari.MessageCreateEvent, me: hikari.OwnUser) -> IncomingMessage:
        message = event.message
        guild_id = message.guild_id
        parent_id = None
        if guild_id is not None:
            thread = self.bot.cache.get_thread(message.channel_id)
            if thread is not None:
                parent_id = str(thread.parent_id)
        author = message.author
        member = message.member
        name = (member.display_name if member else None) or author.display_name or author.username
        replied = message.referenced_message
        # A PluralKit repost quotes what it replies to (webhooks cannot reply): a character's.
        quoted = reply_in_embeds(message) if message.webhook_id and not replied else None
        return IncomingMessage(
            id=str(message.id),
            channel_id=str(message.channel_id),
            guild_id=str(guild_id) if guild_id is not None else None,
            author_id=str(author.id),
            author_name=name,
            content=message.content or "",
            created_at=message.created_at,
            from_bot=author.is_bot,
            from_webhook=message.webhook_id is not None,
            reply_to_id=str(replied.id) if replied else quoted,
            reply_to_webhook=(replied is not None and replied.webhook_id is not None)
            or quoted is not None,
            thread_parent_id=parent_id,
            mentions_bot=me.id in (message.user_mentions_ids or ()),
            attachments=attachment_refs(message),
        )
