"""The Discord front end: the hikari gateway bot, its listeners, commands and delivery.

This builds the Discord part's own pieces from the services the application hands in; the
message's path through them reads top to bottom in message_path.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import hikari
import lightbulb
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tzurot.discord.attachments import attachment_refs
from tzurot.discord.commands import CommandServices, register_commands
from tzurot.discord.delivery.lanes import Lanes
from tzurot.discord.delivery.metrics import DeliveryMetrics
from tzurot.discord.delivery.records import DeliveryRecords
from tzurot.discord.delivery.runner import DeliveryRunner
from tzurot.discord.delivery.sender import ReplySender
from tzurot.discord.delivery.webhooks import WebhookDirectory
from tzurot.discord.interactions import InteractionTokens
from tzurot.discord.interactions_router import InteractionRouter
from tzurot.discord.message_path import MessagePath
from tzurot.discord.services import Community
from tzurot.discord.state import ConversationState
from tzurot.discord.triggers import IncomingMessage, TriggerResolver
from tzurot.discord.typing import TypingBoard
from tzurot.infra.identity import ProcessIdentity
from tzurot.infra.secretbox import SecretBox
from tzurot.jobs import JobQueue, ResultLog
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
        self.path = MessagePath(
            memory=community.memory,
            personalities=personalities,
            triggers=TriggerResolver(personalities, state, max_mentions=max_mentions,
                                     activations=community.activations),
            jobs=jobs, lanes=self.lanes, records=records, typing=self.typing,
            interactions=self.interactions, state=state, sender=self.sender,
            job_timeout=job_timeout,
            gate=Gate(community.denylist, community.rate_limiter, owner_id=community.owner_id,
                      rest=rest),
        )  # fmt: skip
        self.delivery = DeliveryRunner(
            consumer=identity.name, results=results, jobs=jobs, lanes=self.lanes,
            records=records, post_reply=self.path.post_reply, settled=self.path.settled,
            is_alive=identity.is_alive, metrics=DeliveryMetrics(registry),
            job_timeout=job_timeout, stall_seconds=stall_seconds,
        )  # fmt: skip
        guilds = [dev_guild_id] if dev_guild_id else []
        self.commands = lightbulb.client_from_app(self.bot, default_enabled_guilds=guilds)
        self.router = InteractionRouter()
        register_commands(self.commands, CommandServices(community, self.path, self.router))
        self.ready = asyncio.Event()
        self._typing_task: asyncio.Task[None] | None = None
        self.bot.subscribe(hikari.StartedEvent, self._on_started)
        self.bot.subscribe(hikari.MessageCreateEvent, self._on_message)
        self.bot.subscribe(hikari.GuildAvailableEvent, self._on_guild)
        self.bot.subscribe(hikari.InteractionCreateEvent, self.router.on_interaction)

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

    async def _on_message(self, event: hikari.MessageCreateEvent) -> None:
        me = self.bot.get_me()
        if me is None:
            return
        incoming = self._incoming(event, me)
        try:
            await self.path.on_message(incoming, str(me.id))
        except Exception:
            log.exception("could not handle a message", message_id=incoming.id)

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
            reply_to_id=str(replied.id) if replied else None,
            reply_to_webhook=replied is not None and replied.webhook_id is not None,
            thread_parent_id=parent_id,
            mentions_bot=me.id in (message.user_mentions_ids or ()),
            attachments=attachment_refs(message),
        )
