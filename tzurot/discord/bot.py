"""The Discord front end: the hikari gateway bot, its listeners, commands and delivery."""

from __future__ import annotations

import asyncio
import contextlib

import hikari
import lightbulb

from tzurot.conversations import TranscriptStore
from tzurot.discord.commands import CommandServices, register_commands
from tzurot.discord.delivery import DeliveryConsumer, InteractionRegistry
from tzurot.discord.sender import ReplySender
from tzurot.discord.state import DiscordState
from tzurot.discord.triggers import IncomingMessage, TriggerResolver
from tzurot.discord.turns import TurnStarter
from tzurot.discord.typing import TypingKeeper
from tzurot.jobs import JobQueue, ResultLog
from tzurot.logs import get_logger
from tzurot.personalities.store import PersonalityDirectory

log = get_logger(__name__)

INTENTS = (
    hikari.Intents.GUILDS
    | hikari.Intents.GUILD_MESSAGES
    | hikari.Intents.DM_MESSAGES
    | hikari.Intents.MESSAGE_CONTENT
)
_MESSAGE_CONTENT_FLAGS = (1 << 18) | (1 << 19)  # GATEWAY_MESSAGE_CONTENT(_LIMITED)
_NEEDED = {
    hikari.Permissions.VIEW_CHANNEL: "View Channels",
    hikari.Permissions.SEND_MESSAGES: "Send Messages",
    hikari.Permissions.READ_MESSAGE_HISTORY: "Read Message History",
    hikari.Permissions.MANAGE_WEBHOOKS: "Manage Webhooks (to answer under each character's name)",
    hikari.Permissions.SEND_MESSAGES_IN_THREADS: "Send Messages in Threads",
}


class DiscordFrontEnd:
    def __init__(
        self,
        *,
        token: str,
        rest_url: str | None,
        dev_guild_id: int | None,
        jobs: JobQueue,
        results: ResultLog,
        personalities: PersonalityDirectory,
        transcripts: TranscriptStore,
        redis_state: DiscordState,
        max_mentions: int,
        taking_longer_after: float,
        stale_reply_after: float,
        consumer_name: str,
    ) -> None:
        self.bot = hikari.GatewayBot(
            token,
            intents=INTENTS,
            rest_url=rest_url,
            logs=None,  # our logging pipeline already handles hikari's records
            banner=None,
            suppress_optimization_warning=True,
        )
        rest = self.bot.rest
        self.state = redis_state
        self.sender = ReplySender(rest, redis_state)
        self.typing = TypingKeeper(rest, self.sender, longer_after=taking_longer_after)
        self.interactions = InteractionRegistry()
        self.turns = TurnStarter(
            TriggerResolver(personalities, redis_state, max_mentions=max_mentions),
            jobs, personalities, transcripts, redis_state, self.typing, self.sender,
        )  # fmt: skip
        self.delivery = DeliveryConsumer(
            results, self.sender, redis_state, transcripts, self.typing, self.interactions,
            consumer=consumer_name, stale_after_seconds=stale_reply_after,
        )  # fmt: skip
        guilds = [dev_guild_id] if dev_guild_id else []
        self.commands = lightbulb.client_from_app(self.bot, default_enabled_guilds=guilds)
        register_commands(
            self.commands,
            CommandServices(jobs, personalities, transcripts, redis_state, self.typing,
                            self.interactions),
        )  # fmt: skip
        self.ready = asyncio.Event()
        self.bot.subscribe(hikari.StartedEvent, self._on_started)
        self.bot.subscribe(hikari.MessageCreateEvent, self._on_message)
        self.bot.subscribe(hikari.GuildAvailableEvent, self._on_guild)

    async def start(self) -> None:
        try:
            await self.bot.start(check_for_updates=False)
        except hikari.errors.GatewayServerClosedConnectionError as exc:
            if exc.code == 4014:
                raise RuntimeError(
                    "Discord refused the Message Content intent: enable it in the Developer "
                    "Portal (your app > Bot > Privileged Gateway Intents > Message Content)"
                ) from None
            raise
        await self.delivery.start()

    async def stop(self) -> None:
        await self.delivery.stop()
        await self.typing.stop_all()
        with contextlib.suppress(Exception):
            await self.bot.close()

    @property
    def alive(self) -> bool:
        return self.bot.is_alive and self.ready.is_set()

    async def _on_started(self, _event: hikari.StartedEvent) -> None:
        await self.commands.start()
        self.ready.set()
        try:
            application = await self.bot.rest.fetch_application()
        except hikari.HTTPError:
            return
        if not int(application.flags) & _MESSAGE_CONTENT_FLAGS:
            log.warning(
                "the Message Content intent is not enabled for this bot: the bot cannot read "
                "messages, so @mentions and replies will not work. Enable it in the Developer "
                "Portal: your app > Bot > Privileged Gateway Intents > Message Content"
            )

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
        message = event.message
        me = self.bot.get_me()
        if me is None:
            return
        bot_id = str(me.id)
        parent_id: str | None = None
        guild_id = getattr(event, "guild_id", None)
        if guild_id is not None:
            channel = self.bot.cache.get_thread(message.channel_id)
            if isinstance(channel, hikari.GuildThreadChannel):
                parent_id = str(channel.parent_id)
        author = message.author
        member = getattr(message, "member", None)
        name = (member.display_name if member else None) or author.display_name or author.username
        replied = message.referenced_message
        incoming = IncomingMessage(
            id=str(message.id),
            channel_id=str(message.channel_id),
            guild_id=str(guild_id) if guild_id is not None else None,
            author_id=str(author.id),
            author_name=name,
            content=message.content or "",
            from_bot=author.is_bot,
            from_webhook=message.webhook_id is not None,
            reply_to_id=str(replied.id) if replied else None,
            reply_to_webhook=replied is not None and replied.webhook_id is not None,
            thread_parent_id=parent_id,
            mentions_bot=me.id in (message.user_mentions_ids or ()),
        )
        try:
            await self.turns.on_message(incoming, bot_id)
        except Exception:
            log.exception("could not handle a message", message_id=incoming.id)
