"""``DiscordEmulator``: one aiohttp server on 127.0.0.1 serving REST (``/api/v10``) and the
gateway (``/gateway``), plus the scripting API tests use."""

from __future__ import annotations

import fnmatch
import http
import logging
import types
from collections.abc import Iterable, Mapping
from typing import Any, Self

from aiohttp import web

from tests.emulator import components, ids, payloads
from tests.emulator.core import Core, Settings
from tests.emulator.gateway import Delivery, Gateway, GatewayLog, Session
from tests.emulator.interaction_builder import (
    INTERACTION_APPLICATION_COMMAND,
    INTERACTION_AUTOCOMPLETE,
    INTERACTION_MESSAGE_COMPONENT,
    INTERACTION_MODAL_SUBMIT,
    InteractionBuilder,
    new_interaction_token,
)
from tests.emulator.models import (
    JSON,
    Attachment,
    Channel,
    Fault,
    Guild,
    Interaction,
    Member,
    Message,
    RecordedRequest,
    Role,
    User,
    Webhook,
    WebhookRefusal,
)
from tests.emulator.pluralkit import PluralKitApi
from tests.emulator.rest import RestApi
from tests.emulator.routes_basic import BasicRoutes
from tests.emulator.routes_cdn import CdnRoutes
from tests.emulator.routes_interactions import InteractionRoutes
from tests.emulator.routes_messages import MessageRoutes
from tests.emulator.state import World

LOGGER = logging.getLogger("tests.emulator")


_ERROR_MESSAGES = {
    10003: "Unknown Channel",
    10015: "Unknown Webhook",
    50001: "Missing Access",
    50013: "Missing Permissions",
}


class DiscordEmulator:
    """A scriptable Discord. Build the world (guilds, channels, users), ``await start()``,
    point ``hikari.GatewayBot(emu.token, rest_url=emu.rest_url, ...)`` at it, then drive it.

    Sharding: ``settings.shards`` is what ``GET /gateway/bot`` recommends (default 1). Each
    IDENTIFY opens one session for its ``shard``; a guild's events go to shard
    ``(guild_id >> 22) % shard_count`` and DMs to shard 0. Gateway helpers take ``shard=``;
    without it they mean the most recent session (the only one, unsharded).
    """

    def __init__(self, *, bot_name: str = "Tzurot", bot_id: int | None = None) -> None:
        self.world = World(bot_name, bot_id)
        self.settings = Settings()
        self.token = ids.bot_token(self.world.bot.id)
        self.gateway = Gateway(
            token=lambda: self.token,
            ready_payloads=self._ready_payloads,
            member_chunk=self._member_chunk,
            allowed_privileged_intents=lambda: self.settings.allowed_privileged_intents,
            changed=self.world.changed,
            now=self.world.now,
            tailor=self._tailor,
        )
        self.core = Core(self.world, self.gateway, self.settings)
        self.rest = RestApi(self.core, lambda: self.token)
        self._interactions = InteractionBuilder(self.world)
        # PluralKit's API and proxying, at ``pluralkit.url`` (tests/emulator/pluralkit.py).
        self.pluralkit = PluralKitApi(self)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def _ready_payloads(self, session: Session) -> list[tuple[str, JSON]]:
        return self.core.ready_payloads(session)

    def _member_chunk(self, request: JSON) -> JSON | None:
        return self.core.member_chunk(request)

    def _tailor(self, session: Session, event: str, data: JSON) -> JSON | None:
        return self.core.tailor(session, event, data)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        interaction_routes = InteractionRoutes(self.core)
        self.rest.install(
            app,
            [
                interaction_routes.routes(),  # before /webhooks/{id}/{token}/messages/{id}
                BasicRoutes(self.core, lambda: self.gateway_url).routes(),
                MessageRoutes(self.core, interaction_routes).routes(),
            ],
        )
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/resume", self.gateway.handle)
        CdnRoutes(self.world).install(app)
        self.pluralkit.install(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.core.resume_gateway_url = f"ws://127.0.0.1:{self.port}/gateway/resume"
        self.core.cdn_base = f"http://{self.cdn_host}"
        LOGGER.info("Discord emulator on %s (bot %s)", self.rest_url, self.world.bot.id)

    async def stop(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{ids.API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def cdn_host(self) -> str:
        """``127.0.0.1:PORT``: the host of every attachment URL (give it to the bot as
        ``ATTACHMENT_HOSTS``). Attachments are served over plain HTTP."""
        return f"127.0.0.1:{self.port}"

    @property
    def cdn_fetches(self) -> list[str]:
        """Paths (with query) fetched from the emulator's CDN and redirects, in order."""
        return self.world.cdn_fetches

    # -- who is who ----------------------------------------------------------------------------

    @property
    def bot_user(self) -> User:
        return self.world.bot

    @property
    def application_id(self) -> int:
        return self.world.application_id

    @property
    def guild(self) -> Guild:
        """The first guild."""
        return next(iter(self.world.guilds.values()))

    @property
    def channel(self) -> Channel:
        """The first text channel of the first guild."""
        guild = self.guild
        return next(
            self.world.channels[c]
            for c in guild.channel_ids
            if not self.world.channels[c].is_thread
        )

    @property
    def owner(self) -> User:
        """The owner of every guild (and of the application): all permissions everywhere."""
        return self.world.owner

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.world.requests

    @property
    def gateway_log(self) -> GatewayLog:
        return self.gateway.log

    @property
    def intents(self) -> int | None:
        """The intents of the most recent session (any shard), as sent in IDENTIFY."""
        return self.gateway.intents

    def shard_of(self, guild: Guild | int, shard_count: int | None = None) -> int:
        """The shard Discord routes ``guild``'s events to (``shard_count`` default
        ``settings.shards``)."""
        guild_id = guild if isinstance(guild, int) else guild.id
        return ids.shard_of(guild_id, shard_count or self.settings.shards)

    def session_for(self, shard: int) -> Session | None:
        """The newest live (connected or resumable) session of ``shard``."""
        return self.gateway.shard_session(shard)

    def connected_shards(self) -> list[int]:
        """Shard ids that have a live, connected session."""
        return sorted({s.shard_id for s in self.gateway.live_sessions() if s.connection})

    def dispatches(self, event: str | None = None, *, shard: int | None = None) -> list[Delivery]:
        """Numbered dispatches given to sessions (sent, or buffered for RESUME; replays on
        RESUME are entries with ``replayed=True``), optionally of one event / shard."""
        return [
            d
            for d in self.gateway.log.deliveries
            if (event is None or d.event == event) and (shard is None or d.shard_id == shard)
        ]

    def shards_that_received(self, item: Message | Interaction) -> list[int]:
        """Which shards got ``item``'s MESSAGE_CREATE / INTERACTION_CREATE (sent or buffered,
        replays not counted), sorted."""
        event = "INTERACTION_CREATE" if isinstance(item, Interaction) else "MESSAGE_CREATE"
        return sorted(
            {
                d.shard_id
                for d in self.dispatches(event)
                if not d.replayed and d.data.get("id") == str(item.id)
            }
        )

    # -- building the world -------------------------------------------------------------------

    def add_guild(
        self,
        name: str = "Test Guild",
        *,
        bot_permissions: int = ids.BOT_PERMISSIONS,
        shard: int | None = None,
        shard_count: int | None = None,
    ) -> Guild:
        """A guild with @everyone, a managed role for the bot holding ``bot_permissions``
        (default includes Manage Webhooks) and the bot as member. Existing users join it.
        With ``shard``, its id is chosen so that it lands on that shard of ``shard_count``
        (default ``settings.shards``)."""
        guild_id = None
        if shard is not None:
            guild_id = self.world.snowflakes.next_on_shard(
                shard, shard_count or self.settings.shards
            )
        elif shard_count is not None:
            raise ValueError("shard_count without shard")
        guild = self.world.new_guild(name, bot_permissions, guild_id=guild_id)
        for user in self.world.users.values():
            if user.id not in guild.members and user is not self.world.owner:
                guild.members[user.id] = Member(guild_id=guild.id, user_id=user.id)
        self.gateway.queue(
            "GUILD_CREATE", payloads.gateway_guild(self.world, guild, initially_unavailable=False)
        )
        return guild

    def add_text_channel(self, guild: Guild | None = None, name: str = "general") -> Channel:
        channel = self.world.new_channel(guild or self.guild, name)
        self.gateway.queue("CHANNEL_CREATE", payloads.channel(self.world, channel))
        return channel

    def add_thread(self, parent: Channel | None = None, name: str = "thread") -> Channel:
        parent = parent or self.channel
        guild = self.world.guild_of(parent)
        if guild is None or parent.is_thread:
            raise ValueError("threads live under a guild text channel")
        thread = self.world.new_channel(guild, name, type_=ids.PUBLIC_THREAD, parent=parent)
        self.gateway.queue(
            "THREAD_CREATE", {**payloads.channel(self.world, thread), "newly_created": True}
        )
        return thread

    def add_user(self, name: str, *, bot: bool = False, guilds: list[Guild] | None = None) -> User:
        """A user who is a member of ``guilds`` (default: every guild)."""
        user = User(id=self.world.snowflakes.next(), username=name, bot=bot)
        self.world.users[user.id] = user
        for guild in guilds if guilds is not None else list(self.world.guilds.values()):
            guild.members[user.id] = Member(guild_id=guild.id, user_id=user.id)
        self.world.changed()
        return user

    def add_role(self, guild: Guild, name: str, permissions: int) -> Role:
        role = Role(
            id=self.world.snowflakes.next(),
            guild_id=guild.id,
            name=name,
            permissions=permissions,
            position=len(guild.roles),
        )
        guild.roles[role.id] = role
        self.gateway.queue(
            "GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": payloads.role(role)}
        )
        self.world.changed()
        return role

    def give_role(self, guild: Guild, user: User, role: Role) -> None:
        guild.members[user.id].role_ids.append(role.id)
        self.world.changed()

    def add_moderator(
        self,
        name: str,
        permissions: int = ids.MANAGE_MESSAGES | ids.MANAGE_CHANNELS,
        *,
        guild: Guild | None = None,
    ) -> User:
        """A user (member of every guild) holding a role in ``guild`` (default: the first)
        that grants ``permissions`` (default Manage Messages | Manage Channels); interaction
        payloads then carry them in ``member.permissions``. A plain member: ``add_user``; the
        guild owner (all permissions): ``emu.owner``."""
        guild = guild or self.guild
        user = self.add_user(name)
        role = self.add_role(guild, f"{name} moderator", permissions)
        self.give_role(guild, user, role)
        return user

    def set_permissions(
        self, channel: Channel, target: User | Role, *, allow: int = 0, deny: int = 0
    ) -> None:
        """A permission overwrite on the channel (the parent, for a thread)."""
        self.world.set_overwrite(channel, target, allow=allow, deny=deny)
        changed = self.world.permission_channel(channel)
        self.gateway.queue("CHANNEL_UPDATE", payloads.channel(self.world, changed))

    def remove_manage_webhooks(self, channel: Channel) -> None:
        """Deny the bot Manage Webhooks in this channel: creating webhooks then gets 403/50013."""
        self.set_permissions(channel, self.world.bot, deny=ids.MANAGE_WEBHOOKS)

    def lose_access(self, channel: Channel) -> None:
        """The bot can no longer see ``channel`` (a member overwrite denying View Channel, on
        the parent for a thread), as when a moderator hides it: every bot route on it then
        answers 403/50001 Missing Access (send, create/list webhooks, fetch, history, typing)
        and its messages no longer reach the gateway. Webhooks the bot already has keep
        working, as on Discord (see ``refuse_webhooks``). CHANNEL_UPDATE is dispatched."""
        target = self.world.permission_channel(channel)
        own = target.overwrites.get(self.world.bot.id)
        allow = own.allow if own is not None and own.type == 1 else 0
        deny = own.deny if own is not None and own.type == 1 else 0
        self.set_permissions(
            channel, self.world.bot, allow=allow & ~ids.VIEW_CHANNEL, deny=deny | ids.VIEW_CHANNEL
        )
        if self.world.channel_permissions(channel, self.world.bot.id) & ids.VIEW_CHANNEL:
            raise ValueError("the bot is an administrator: overwrites cannot hide a channel")

    def regain_access(self, channel: Channel) -> None:
        """Undo ``lose_access``."""
        target = self.world.permission_channel(channel)
        own = target.overwrites.get(self.world.bot.id)
        if own is None or own.type != 1:
            return
        own.deny &= ~ids.VIEW_CHANNEL
        if not own.allow and not own.deny:
            del target.overwrites[self.world.bot.id]
        self.world.changed()
        self.gateway.queue("CHANNEL_UPDATE", payloads.channel(self.world, target))

    def refuse_webhooks(
        self,
        channel: Channel,
        *,
        status: int = 403,
        code: int = 50013,
        message: str | None = None,
        execute_only: bool = False,
    ) -> WebhookRefusal:
        """Every webhook of ``channel`` (the parent, for a thread; existing ones and any made
        later) answers ``status``/``code`` to executes, and unless ``execute_only`` to edits,
        deletes and fetches of its messages through the token too, until ``accept_webhooks``.
        Discord says 403/50013 when the webhook lost its rights, 404/10015 when it is gone.
        The returned object counts refusals (``.refused``)."""
        target = self.world.permission_channel(channel)
        text = message or _ERROR_MESSAGES.get(code) or http.HTTPStatus(status).phrase
        target.webhook_refusal = WebhookRefusal(status, code, text, execute_only)
        self.world.changed()
        return target.webhook_refusal

    def accept_webhooks(self, channel: Channel) -> None:
        """Undo ``refuse_webhooks``."""
        self.world.permission_channel(channel).webhook_refusal = None
        self.world.changed()

    def delete_channel(self, channel: Channel) -> None:
        """A moderator deletes the channel (or thread): every route on it answers 404/10003
        Unknown Channel, its threads go with it, its webhooks are deleted (executing them:
        404/10015), and CHANNEL_DELETE (THREAD_DELETE for threads) is dispatched. The
        ``Channel`` object, its messages and ``emu.channel`` stay for assertions."""
        world = self.world
        if channel.is_dm or channel.guild_id is None:
            raise ValueError("only guild channels and threads can be deleted")
        if channel.deleted:
            return
        threads = [
            c
            for c in world.channels.values()
            if c.parent_id == channel.id and c.is_thread and not c.deleted
        ]
        for doomed in [channel, *threads]:
            doomed.deleted = True
        for webhook in world.webhooks.values():
            if webhook.channel_id == channel.id:
                webhook.deleted = True
        world.changed()
        for thread in threads:
            self.gateway.queue("THREAD_DELETE", self._thread_delete(thread))
        if channel.is_thread:
            self.gateway.queue("THREAD_DELETE", self._thread_delete(channel))
        else:
            self.gateway.queue("CHANNEL_DELETE", payloads.channel(world, channel))

    @staticmethod
    def _thread_delete(thread: Channel) -> JSON:
        return {
            "id": str(thread.id),
            "guild_id": str(thread.guild_id),
            "parent_id": str(thread.parent_id),
            "type": thread.type,
        }

    def close_dms(self, user: User) -> None:
        """``user`` blocks the bot / turns DMs off: the bot sending to their DM channel gets
        403/50007 Cannot send messages to this user (opening the DM channel still works).
        Discord also answers 50007 when the user shares no guild with the bot; so does this."""
        user.dms_closed = True
        self.world.changed()

    def open_dms(self, user: User) -> None:
        """Undo ``close_dms``."""
        user.dms_closed = False
        self.world.changed()

    def add_webhook(
        self, channel: Channel, name: str = "Captain Hook", *, creator: User | None = None
    ) -> Webhook:
        """A webhook that already exists in ``channel``: by default one the bot's application
        made (e.g. in an earlier run: ``application_id`` set), or one ``creator`` (a user) made
        by hand (no ``application_id``). Dispatches WEBHOOKS_UPDATE."""
        world = self.world
        target = world.permission_channel(channel)
        if target.guild_id is None:
            raise ValueError("DM channels have no webhooks")
        by_bot = creator is None or creator.id == world.bot.id
        webhook = Webhook(
            id=world.snowflakes.next(),
            token=ids.new_token(),
            guild_id=target.guild_id,
            channel_id=target.id,
            name=name,
            application_id=world.application_id if by_bot else None,
            creator_id=world.bot.id if creator is None else creator.id,
        )
        world.webhooks[webhook.id] = webhook
        world.changed()
        self.gateway.queue(
            "WEBHOOKS_UPDATE", {"guild_id": str(webhook.guild_id), "channel_id": str(target.id)}
        )
        return webhook

    def webhooks_in(self, channel: Channel) -> list[Webhook]:
        return [
            w for w in self.world.webhooks.values() if w.channel_id == channel.id and not w.deleted
        ]

    def delete_webhook(self, webhook: Webhook | int) -> None:
        """A moderator deletes the webhook: executing it now gets 404 code 10015."""
        found = self.world.webhooks[webhook if isinstance(webhook, int) else webhook.id]
        found.deleted = True
        self.world.changed()
        self.gateway.queue(
            "WEBHOOKS_UPDATE",
            {"guild_id": str(found.guild_id), "channel_id": str(found.channel_id)},
        )

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int,
        retry_after: float | None = None,
        count: int = 1,
        *,
        code: int = 0,
        message: str | None = None,
        is_global: bool = False,
        scope: str = "user",
        after_effect: bool = False,
        delay: float = 0.0,
    ) -> Fault:
        """The next ``count`` requests ``method`` (or ``"*"``) to a path matching the glob
        ``path_pattern`` (without ``/api/v10``, e.g. ``"/webhooks/*"``) fail with ``status``.
        A 429 carries ``retry_after`` (default 1 s) in the body and the ``Retry-After`` /
        ``X-RateLimit-*`` headers Discord sends. With ``after_effect`` the request is carried
        out first (the message is posted), then, ``delay`` s later, the fault answers."""
        fault = Fault(
            method=method.upper(),
            path_pattern=path_pattern,
            status=status,
            count=count,
            retry_after=retry_after,
            code=code,
            message=message,
            is_global=is_global,
            scope=scope,
            after_effect=after_effect,
            delay=delay,
        )
        self.rest.add_fault(fault)
        return fault

    def rate_limit_edits(
        self, retry_after: float = 1.0, count: int = 1, *, is_global: bool = False
    ) -> Fault:
        """The next ``count`` message edits (PATCH of a webhook message, @original, a followup
        or a channel message) answer 429 as Discord does: ``retry_after`` and ``global`` in the
        body, ``Retry-After`` / ``X-RateLimit-*`` headers; each limit lasts ``retry_after``."""
        return self.fail_next(
            "PATCH", "*/messages/*", 429, retry_after, count, is_global=is_global,
            scope="global" if is_global else "user",
        )  # fmt: skip

    # -- users talking ------------------------------------------------------------------------

    def _user_message(
        self,
        channel: Channel,
        author: User,
        content: str,
        reply_to: Message | None,
        mentions: list[User] | None,
        attachments: list[Attachment] | None = None,
    ) -> Message:
        world = self.world
        reference = None
        if reply_to is not None:
            reference = {
                "type": 0,
                "message_id": str(reply_to.id),
                "channel_id": str(reply_to.channel_id),
            }
            if reply_to.guild_id is not None:
                reference["guild_id"] = str(reply_to.guild_id)
        mention_ids = world.mentioned_ids(content) + [u.id for u in mentions or []]
        if (
            reply_to is not None
            and reply_to.webhook_id is None
            and reply_to.author.id in world.users
        ):
            mention_ids.append(reply_to.author.id)  # a reply pings its author by default
        message = Message(
            id=world.snowflakes.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            content=content,
            source="user",
            posted_at=world.now(),
            message_reference=reference,
            mention_ids=list(dict.fromkeys(mention_ids)),
            type=19 if reference else 0,
            attachments=[a.payload() for a in attachments or []],
        )
        return world.add_message(message)

    async def post_message(
        self,
        channel: Channel,
        author: User,
        content: str,
        *,
        reply_to: Message | None = None,
        mentions: list[User] | None = None,
        attachments: list[Attachment] | None = None,
        voice: bool = False,
    ) -> Message:
        """``author`` writes in a guild channel or thread; the bot gets MESSAGE_CREATE (on the
        guild's shard; not at all if it cannot view the channel). ``attachments``: files from
        ``emu.upload`` attached to the message. ``voice``: a voice message (flag
        IS_VOICE_MESSAGE; Discord sends it with empty content and one audio attachment)."""
        if channel.deleted:
            raise ValueError(f"#{channel.name} was deleted")
        message = self._user_message(channel, author, content, reply_to, mentions, attachments)
        if voice:
            message.flags |= ids.FLAG_IS_VOICE_MESSAGE
        await self.gateway.dispatch("MESSAGE_CREATE", self.core.message_event(message))
        return message

    async def send_dm(
        self,
        user: User,
        content: str,
        *,
        reply_to: Message | None = None,
        attachments: list[Attachment] | None = None,
        voice: bool = False,
    ) -> Message:
        """``user`` writes to the bot in their DM channel (delivered to shard 0)."""
        channel = self.world.dm_channel(user)
        return await self.post_message(
            channel, user, content, reply_to=reply_to, attachments=attachments, voice=voice
        )

    async def replay(self, message: Message) -> None:
        """Deliver the very same MESSAGE_CREATE again (Discord may do this around a resume)."""
        await self.gateway.dispatch("MESSAGE_CREATE", self.core.message_event(message))

    async def slash_command(
        self,
        channel: Channel,
        user: User,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        locale: str = "en-US",
    ) -> Interaction:
        """``user`` runs ``/name`` (``name`` may be ``"channel activate"`` for a subcommand).
        Option values: str/int/float/bool, or User/Channel/Role (sent as ids plus ``resolved``).
        The 3 s callback deadline starts when the INTERACTION_CREATE is written."""
        return await self._interaction(
            INTERACTION_APPLICATION_COMMAND, channel, user, name, options, None, locale
        )

    async def autocomplete(
        self,
        channel: Channel,
        user: User,
        name: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        locale: str = "en-US",
    ) -> Interaction:
        """An autocomplete interaction; ``options[focused]`` is the partial text typed."""
        return await self._interaction(
            INTERACTION_AUTOCOMPLETE, channel, user, name, options, focused, locale
        )

    async def message_command(
        self, message: Message | int, user: User, name: str, *, locale: str = "en-US"
    ) -> Interaction:
        """``user`` right-clicks ``message`` > Apps > ``name``: INTERACTION_CREATE type 2
        (APPLICATION_COMMAND) with ``data {type: 3, target_id, resolved.messages}``, as Discord
        sends a message command. ``name`` may hold spaces and capitals (``"Delete reply"``)."""
        target = self._message(message)
        if target.deleted:
            raise AssertionError(f"message {target.id} was deleted: nobody can right-click it")
        if target.is_ephemeral:
            raise AssertionError(f"message {target.id} is ephemeral: Apps are not offered on it")
        channel = self.world.channels[target.channel_id]
        interaction_id = self.world.snowflakes.next()
        token = new_interaction_token()
        payload, command_id = self._interactions.build_message_command(
            interaction_id=interaction_id, token=token, target=target, user=user, name=name,
            locale=locale,
        )  # fmt: skip
        interaction = Interaction(
            id=interaction_id,
            token=token,
            type=INTERACTION_APPLICATION_COMMAND,
            application_id=self.world.application_id,
            channel=channel,
            user=user,
            guild_id=channel.guild_id,
            command_name=name,
            command_id=command_id,
            payload=payload,
            notifier=self.world.notifier,
        )
        return await self._dispatch_interaction(interaction)

    async def edit_user_message(self, message: Message, content: str) -> Message:
        """The user who wrote ``message`` edits it to ``content``: the bot gets MESSAGE_UPDATE
        (with ``edited_timestamp``), as Discord sends it."""
        if message.source != "user":
            raise AssertionError("only a user's own message can be edited by a test user")
        if message.deleted:
            raise AssertionError(f"message {message.id} was deleted")
        message.content = content
        message.mention_ids = list(
            dict.fromkeys(self.world.mentioned_ids(content) + message.mention_ids)
        )
        message.edits.append({"content": content})
        message.edited_at = ids.utcnow()
        self.world.changed()
        await self.gateway.dispatch("MESSAGE_UPDATE", self.core.message_event(message))
        return message

    async def delete_user_message(self, message: Message) -> None:
        """``message`` is deleted (by its author or a moderator): the bot gets MESSAGE_DELETE."""
        if message.deleted:
            raise AssertionError(f"message {message.id} was already deleted")
        message.deleted = True
        self.world.changed()
        data: JSON = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        await self.gateway.dispatch("MESSAGE_DELETE", data)

    async def _interaction(
        self,
        kind: int,
        channel: Channel,
        user: User,
        name: str,
        options: Mapping[str, Any] | None,
        focused: str | None,
        locale: str,
    ) -> Interaction:
        interaction_id = self.world.snowflakes.next()
        token = new_interaction_token()
        payload, command_id = self._interactions.build(
            interaction_id=interaction_id,
            token=token,
            kind=kind,
            channel=channel,
            user=user,
            name=name,
            options=options or {},
            focused=focused,
            locale=locale,
        )
        interaction = Interaction(
            id=interaction_id,
            token=token,
            type=kind,
            application_id=self.world.application_id,
            channel=channel,
            user=user,
            guild_id=channel.guild_id,
            command_name=name,
            command_id=command_id,
            payload=payload,
            notifier=self.world.notifier,
        )
        return await self._dispatch_interaction(interaction)

    async def _dispatch_interaction(self, interaction: Interaction) -> Interaction:
        self.world.interactions[interaction.id] = interaction

        def sent(at: float) -> None:
            interaction.dispatched_at = at

        await self.gateway.dispatch("INTERACTION_CREATE", interaction.payload, on_sent=sent)
        return interaction

    def _component_interaction(
        self,
        message: Message,
        user: User,
        data: JSON,
        locale: str,
        *,
        kind: int = INTERACTION_MESSAGE_COMPONENT,
        command_name: str | None = None,
        command_id: int = 0,
        parent: Interaction | None = None,
        values: list[str] | None = None,
    ) -> Interaction:
        channel = self.world.channels[message.channel_id]
        interaction_id = self.world.snowflakes.next()
        token = new_interaction_token()
        payload = self._interactions.envelope(
            interaction_id=interaction_id,
            token=token,
            kind=kind,
            channel=channel,
            user=user,
            locale=locale,
            message=message,
        )
        payload["data"] = data
        return Interaction(
            id=interaction_id,
            token=token,
            type=kind,
            application_id=self.world.application_id,
            channel=channel,
            user=user,
            guild_id=channel.guild_id,
            command_name=command_name or f"[component {data.get('custom_id')}]",
            command_id=command_id,
            payload=payload,
            notifier=self.world.notifier,
            custom_id=str(data.get("custom_id")),
            message=message,
            parent=parent,
            values=list(values or []),
        )

    def _message(self, message: Message | int) -> Message:
        if isinstance(message, Message):
            return message
        found = self.world.messages.get(int(message))
        if found is None:
            raise AssertionError(f"no message {message}")
        return found

    def _usable_component(self, message: Message, custom_id: str, user: User) -> JSON:
        """The component ``user`` can use, or an AssertionError saying why a real client
        could not (Discord would never send such an interaction)."""
        where = f"message {message.id} ({message.content[:40]!r})"
        if message.deleted:
            raise AssertionError(f"{where} was deleted")
        if not message.from_bot:
            raise AssertionError(f"{where} is not from the bot: its components are not the bot's")
        if message.is_ephemeral and message.interaction_id is not None:
            owner = self.world.interactions.get(message.interaction_id)
            if owner is not None and owner.user.id != user.id:
                raise AssertionError(f"{where} is ephemeral: only {owner.user.username} sees it")
        found = components.find(message.components, custom_id)
        if found is None:
            available = [c.get("custom_id") for c in components.walk(message.components)]
            raise AssertionError(f"{where} has no component {custom_id!r}; custom ids: {available}")
        if found.get("disabled"):
            raise AssertionError(f"component {custom_id!r} on {where} is disabled")
        return found

    async def click(
        self, message: Message | int, custom_id: str, user: User, *, locale: str = "en-US"
    ) -> Interaction:
        """``user`` presses the button ``custom_id`` on the bot's ``message``: INTERACTION_CREATE
        type 3 (MESSAGE_COMPONENT) with ``data {custom_id, component_type: 2}`` and the
        ``message``. Clicking a missing, disabled or link button is an AssertionError. The bot
        may answer 4/5 (a new message), 6 then PATCH @original, or 7 (update ``message``)."""
        message = self._message(message)
        found = self._usable_component(message, custom_id, user)
        if found.get("type") != components.BUTTON:
            raise AssertionError(f"{custom_id!r} is a select menu: use emu.select(...)")
        data: JSON = {"custom_id": custom_id, "component_type": components.BUTTON}
        return await self._dispatch_interaction(
            self._component_interaction(message, user, data, locale)
        )

    async def select(
        self,
        message: Message | int,
        custom_id: str,
        values: list[Any],
        user: User,
        *,
        locale: str = "en-US",
    ) -> Interaction:
        """``user`` picks ``values`` in the select menu ``custom_id``: option values (str) for a
        string select, Users / Roles / Channels for the others (sent with ``resolved``)."""
        message = self._message(message)
        found = self._usable_component(message, custom_id, user)
        kind = found.get("type")
        if kind not in components.SELECTS:
            raise AssertionError(f"{custom_id!r} is not a select menu: use emu.click(...)")
        low = int(found.get("min_values", 1))
        high = int(found.get("max_values", 1))
        if not low <= len(values) <= high:
            raise AssertionError(f"select {custom_id!r} takes {low}..{high} values, not {values}")
        channel = self.world.channels[message.channel_id]
        data: JSON = {"custom_id": custom_id, "component_type": kind}
        if kind == components.STRING_SELECT:
            offered = [o.get("value") for o in found.get("options") or []]
            missing = [v for v in values if v not in offered]
            if missing:
                raise AssertionError(f"select {custom_id!r} offers {offered}, not {missing}")
            sent = [str(v) for v in values]
        else:
            resolved: JSON = {}
            sent = [str(self._interactions.resolve(channel, v, resolved)) for v in values]
            data["resolved"] = resolved
        data["values"] = sent
        return await self._dispatch_interaction(
            self._component_interaction(message, user, data, locale, values=sent)
        )

    async def submit_modal(
        self,
        interaction: Interaction,
        values: Mapping[str, str],
        user: User | None = None,
        *,
        locale: str = "en-US",
    ) -> Interaction:
        """The user fills in and submits the modal the bot showed in answer to ``interaction``:
        INTERACTION_CREATE type 5 (MODAL_SUBMIT), ``data {custom_id, components}`` with every
        text input's ``value`` (fields not in ``values`` keep their pre-filled text or are
        empty). A value a real client could not submit (longer than ``max_length``, shorter
        than ``min_length``, a required field left empty, an unknown field) is an
        AssertionError. The new interaction takes callbacks 4/5, and 6/7 when the modal came
        from a component (its ``message`` is then updated)."""
        modal = interaction.modal
        if modal is None:
            raise AssertionError(
                f"the bot showed no modal for /{interaction.command_name} (responses: "
                f"{[r.get('type') for r in interaction.responses]}, "
                f"rejected: {interaction.rejected})"
            )
        if modal.submitted:
            raise AssertionError(f"modal {modal.custom_id!r} was already submitted (it closed)")
        user = user or interaction.user
        if user.id != interaction.user.id:
            raise AssertionError(f"only {interaction.user.username} sees modal {modal.custom_id!r}")
        unknown = sorted(set(values) - set(modal.fields))
        if unknown:
            raise AssertionError(
                f"modal {modal.custom_id!r} has no field(s) {unknown}; it has {list(modal.fields)}"
            )
        final: dict[str, str] = {}
        for custom_id, spec in modal.fields.items():
            value = values.get(custom_id, spec["value"] or "")
            if not isinstance(value, str):
                raise AssertionError(f"modal field {custom_id!r}: values are text, not {value!r}")
            label = f"{custom_id!r} ({spec['label']!r})"
            if spec["required"] and not value:
                raise AssertionError(f"modal field {label} is required: the client cannot submit")
            if len(value) > spec["max_length"]:
                raise AssertionError(
                    f"modal field {label} takes at most {spec['max_length']} characters, "
                    f"not {len(value)}: the client cannot type more"
                )
            if value and len(value) < spec["min_length"]:
                raise AssertionError(
                    f"modal field {label} needs at least {spec['min_length']} characters, "
                    f"not {len(value)}: the client cannot submit"
                )
            final[custom_id] = value
        modal.submitted = True
        data: JSON = {
            "custom_id": modal.custom_id,
            "components": components.submitted_components(modal, final),
        }
        if interaction.message is not None:
            submit = self._component_interaction(
                interaction.message,
                user,
                data,
                locale,
                kind=INTERACTION_MODAL_SUBMIT,
                command_name=interaction.command_name,
                command_id=interaction.command_id,
                parent=interaction,
            )
        else:
            interaction_id = self.world.snowflakes.next()
            token = new_interaction_token()
            payload = self._interactions.envelope(
                interaction_id=interaction_id,
                token=token,
                kind=INTERACTION_MODAL_SUBMIT,
                channel=interaction.channel,
                user=user,
                locale=locale,
            )
            payload["data"] = data
            submit = Interaction(
                id=interaction_id,
                token=token,
                type=INTERACTION_MODAL_SUBMIT,
                application_id=self.world.application_id,
                channel=interaction.channel,
                user=user,
                guild_id=interaction.guild_id,
                command_name=interaction.command_name,
                command_id=interaction.command_id,
                payload=payload,
                notifier=self.world.notifier,
                custom_id=modal.custom_id,
                parent=interaction,
            )
        return await self._dispatch_interaction(submit)

    # -- files (the emulator's CDN) ---------------------------------------------------------

    def upload(
        self,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        size: int | None = None,
        redirect_to: str | None = None,
        description: str | None = None,
        duration_secs: float | None = None,
        waveform: str | None = None,
    ) -> Attachment:
        """A file a user uploads: use it as a slash option value (type 11, with
        ``resolved.attachments``) or in ``post_message(attachments=[...])``. Served at
        ``attachment.url`` (``http://{cdn_host}/ephemeral-attachments/...``). For hostile
        input ``content_type`` and ``size`` (what Discord reports) may lie about ``data``,
        and ``redirect_to`` makes the CDN answer 302 to that URL instead of the bytes.
        A voice message: ``duration_secs`` and ``waveform`` (base64) join the attachment
        payload; post it with ``post_message(..., voice=True)``."""
        return self.core.store_file(
            filename,
            data,
            content_type,
            f"ephemeral-attachments/{self.world.application_id}",
            size=size,
            redirect_to=redirect_to,
            description=description,
            duration_secs=duration_secs,
            waveform=waveform,
        )

    def attachment_url(self, attachment: Attachment | JSON | int | str) -> str:
        """The URL the emulator serves an attachment's bytes at."""
        return self._stored(attachment).url

    def attachment_bytes(self, attachment: Attachment | JSON | Any) -> bytes:
        """The bytes of an attachment: an ``Attachment``, an attachment dict as in
        ``message.attachments`` (e.g. one the bot uploaded), anything with an ``id`` (a
        ``hikari.Attachment``), or the id itself."""
        return self._stored(attachment).data

    def _stored(self, attachment: Attachment | JSON | Any) -> Attachment:
        if isinstance(attachment, dict):
            raw = attachment.get("id")
        elif isinstance(attachment, int | str):
            raw = attachment
        else:
            raw = getattr(attachment, "id", None)
        try:
            return self.world.cdn[int(str(raw))]
        except (KeyError, ValueError):
            raise KeyError(f"no attachment {raw!r} on the emulator's CDN") from None

    def serve_redirect(self, location: str, *, status: int = 302) -> str:
        """A URL on the emulator's CDN host that answers ``status`` with ``Location:
        location`` (e.g. towards a host the bot must not fetch)."""
        if not self.port:
            raise RuntimeError("start the emulator first")
        key = ids.new_token(12)
        self.world.redirects[key] = (status, location)
        return f"http://{self.cdn_host}/redirect/{key}"

    # -- gateway control ----------------------------------------------------------------------

    async def wait_until_ready(self, timeout: float = 10.0, *, shard: int | None = None) -> None:
        """The bot IDENTIFY'd and got READY (and every GUILD_CREATE), and the most recent
        session is connected; with ``shard``: that shard's newest session is READY and
        connected."""
        if shard is not None:
            await self.wait_for_shards([shard], timeout)
            return
        await self.world.notifier.wait_for(
            lambda: self.gateway.log.ready_count > 0 and self.gateway.connected,
            timeout,
            lambda: f"the bot to IDENTIFY (connects so far: {self.gateway.log.connects})",
        )

    async def wait_for_shards(self, shards: Iterable[int], timeout: float = 10.0) -> None:
        """Every shard in ``shards`` has a READY, connected session."""
        wanted = sorted(set(shards))
        await self.world.notifier.wait_for(
            lambda: all(self.gateway.shard_ready(s) for s in wanted),
            timeout,
            lambda: f"shards {wanted} READY; connected: {self.connected_shards()}",
        )

    async def wait_for_resume(
        self, count: int = 1, timeout: float = 10.0, *, shard: int | None = None
    ) -> None:
        """``count`` successful RESUMEs in total (RESUMED sent) and the most recent session
        connected; with ``shard``: ``count`` RESUMEs of that shard, and it is connected."""
        log = self.gateway.log

        def done() -> bool:
            if shard is None:
                return log.resumed_count >= count and self.gateway.connected
            return log.resumed_shards.count(shard) >= count and self.gateway.shard_ready(shard)

        await self.world.notifier.wait_for(
            done,
            timeout,
            lambda: (
                f"{count} RESUME(s) (shard={shard}); seen {len(log.resumes)} attempts, "
                f"resumed shards {log.resumed_shards}"
            ),
        )

    async def drop_connection(
        self, *, code: int = 4000, abrupt: bool = False, shard: int | None = None
    ) -> None:
        """Close the bot's websocket (close ``code``, or ``abrupt`` TCP abort): the most recent
        session's, or ``shard``'s. The session stays resumable; dispatches made meanwhile are
        replayed on RESUME. Other shards are not touched."""
        await self.gateway.drop(code=code, abrupt=abrupt, shard=shard)

    async def send_reconnect(self, *, shard: int | None = None) -> None:
        await self.gateway.send_op(7, shard=shard)

    async def invalidate_session(
        self, *, resumable: bool = False, shard: int | None = None
    ) -> None:
        await self.gateway.send_op(9, resumable, shard=shard)

    # -- what the bot did ----------------------------------------------------------------------

    def bot_messages(self, channel: Channel, *, include_threads: bool = False) -> list[Message]:
        """What the bot, its webhooks and its interaction responses posted in ``channel``, in
        order; deleted ones included (``.deleted``), 'thinking' placeholders left out."""
        world = self.world
        wanted = {channel.id}
        if include_threads:
            wanted |= {c.id for c in world.channels.values() if c.parent_id == channel.id}
        return [
            world.messages[mid]
            for mid in world.message_order
            if world.messages[mid].channel_id in wanted
            and world.messages[mid].from_bot
            and not world.messages[mid].is_loading
        ]

    async def wait_for_messages(
        self,
        channel: Channel,
        count: int = 1,
        timeout: float = 5.0,
        *,
        include_threads: bool = False,
    ) -> list[Message]:
        """All bot messages in ``channel`` once there are at least ``count`` of them."""

        def enough() -> list[Message] | None:
            found = self.bot_messages(channel, include_threads=include_threads)
            return found if len(found) >= count else None

        def describe() -> str:
            found = self.bot_messages(channel, include_threads=include_threads)
            recent = self.world.requests[-8:]
            return f"{count} bot message(s) in #{channel.name}; have {len(found)}; last {recent}"

        return await self.world.notifier.wait_for(enough, timeout, describe)

    def requests_matching(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        """Recorded requests by method (or ``"*"``) and a glob on the path (no ``/api/v10``)."""
        method = method.upper()
        return [
            r
            for r in self.world.requests
            if method in ("*", r.method) and fnmatch.fnmatchcase(r.path, path_pattern)
        ]

    async def wait_for_request(
        self, method: str, path_pattern: str, *, count: int = 1, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """``count`` matching requests that have been answered (``status`` set)."""

        def enough() -> list[RecordedRequest] | None:
            found = [r for r in self.requests_matching(method, path_pattern) if r.status]
            return found if len(found) >= count else None

        return await self.world.notifier.wait_for(
            enough,
            timeout,
            lambda: f"{count} x {method} {path_pattern}; last {self.world.requests[-8:]}",
        )

    def dms_to(self, user: User) -> list[Message]:
        """What the bot sent to ``user``'s DM channel, in order (empty if it never opened one)."""
        channel_id = self.world.dm_channels.get(user.id)
        if channel_id is None:
            return []
        return self.bot_messages(self.world.channels[channel_id])

    async def wait_for_dms(self, user: User, count: int = 1, timeout: float = 5.0) -> list[Message]:
        """The bot's DMs to ``user`` once there are at least ``count``."""

        def enough() -> list[Message] | None:
            found = self.dms_to(user)
            return found if len(found) >= count else None

        return await self.world.notifier.wait_for(
            enough,
            timeout,
            lambda: f"{count} DM(s) to {user.username}; have {len(self.dms_to(user))}",
        )

    def typing_in(self, channel: Channel) -> list[float]:
        """Loop times at which the bot triggered typing in ``channel``."""
        return [at for channel_id, at in self.world.typing if channel_id == channel.id]

    def commands(self, guild: Guild | None = None) -> list[dict[str, Any]]:
        """The synced commands (global, or the guild's), as Discord would list them."""
        guild_id = guild.id if guild else None
        return [payloads.command(c) for c in self.world.commands.values() if c.guild_id == guild_id]
