"""The emulator's mutable world and Discord's permission arithmetic."""

from __future__ import annotations

import asyncio
import re

from tests.emulator import ids
from tests.emulator.models import (
    ApplicationCommand,
    Attachment,
    Channel,
    Guild,
    Interaction,
    Member,
    Message,
    Overwrite,
    RecordedRequest,
    Role,
    User,
    Webhook,
)
from tests.emulator.waiting import ChangeNotifier

_USER_MENTION = re.compile(r"<@!?(\d+)>")


class World:
    """Everything Discord knows. Lookups raise ``KeyError`` on unknown ids."""

    def __init__(self, bot_name: str, bot_id: int | None = None) -> None:
        self.snowflakes = ids.SnowflakeFactory()
        self.notifier = ChangeNotifier()
        bot_user_id = bot_id if bot_id is not None else self.snowflakes.next()
        self.bot = User(id=bot_user_id, username=bot_name, bot=True)
        self.application_id = bot_user_id
        self.owner = User(id=self.snowflakes.next(), username="app-owner")
        self.users: dict[int, User] = {self.bot.id: self.bot, self.owner.id: self.owner}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self.webhooks: dict[int, Webhook] = {}
        self.messages: dict[int, Message] = {}
        self.message_order: list[int] = []
        self.interactions: dict[int, Interaction] = {}
        self.commands: dict[int, ApplicationCommand] = {}
        self.requests: list[RecordedRequest] = []
        self.typing: list[tuple[int, float]] = []  # (channel id, loop time)
        self.cdn: dict[int, Attachment] = {}  # attachment id -> file served by the emulator
        self.cdn_fetches: list[str] = []  # paths (with query) fetched from the emulator's CDN
        self.redirects: dict[str, tuple[int, str]] = {}  # key -> (status, Location)

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def changed(self) -> None:
        self.notifier.notify()

    # -- lookups -------------------------------------------------------------------------

    def guild_of(self, channel: Channel) -> Guild | None:
        return self.guilds.get(channel.guild_id) if channel.guild_id is not None else None

    def permission_channel(self, channel: Channel) -> Channel:
        """Threads take their permissions from the parent channel."""
        if channel.is_thread and channel.parent_id is not None:
            return self.channels[channel.parent_id]
        return channel

    def channel_messages(self, channel_id: int) -> list[Message]:
        return [
            self.messages[mid]
            for mid in self.message_order
            if self.messages[mid].channel_id == channel_id
        ]

    def mentioned_ids(self, content: str) -> list[int]:
        found = [int(m) for m in _USER_MENTION.findall(content)]
        return [uid for uid in dict.fromkeys(found) if uid in self.users]

    # -- permissions (https://discord.com/developers/docs/topics/permissions) ---------------

    def base_permissions(self, guild: Guild, user_id: int) -> int:
        if user_id == guild.owner_id:
            return ids.ALL_PERMISSIONS
        member = guild.members.get(user_id)
        if member is None:
            return 0
        perms = guild.everyone_role.permissions
        for role_id in member.role_ids:
            role = guild.roles.get(role_id)
            if role is not None:
                perms |= role.permissions
        if perms & ids.ADMINISTRATOR:
            return ids.ALL_PERMISSIONS
        return perms

    def channel_permissions(self, channel: Channel, user_id: int) -> int:
        guild = self.guild_of(channel)
        if guild is None:  # DMs: what a DM allows
            return ids.EVERYONE_PERMISSIONS
        perms = self.base_permissions(guild, user_id)
        if perms & ids.ADMINISTRATOR:
            return ids.ALL_PERMISSIONS
        target = self.permission_channel(channel)
        everyone = target.overwrites.get(guild.id)
        if everyone is not None:
            perms = (perms & ~everyone.deny) | everyone.allow
        member = guild.members.get(user_id)
        role_ids = member.role_ids if member else []
        allow = deny = 0
        for role_id in role_ids:
            overwrite = target.overwrites.get(role_id)
            if overwrite is not None and overwrite.type == 0:
                allow |= overwrite.allow
                deny |= overwrite.deny
        perms = (perms & ~deny) | allow
        own = target.overwrites.get(user_id)
        if own is not None and own.type == 1:
            perms = (perms & ~own.deny) | own.allow
        return perms

    def set_overwrite(
        self, channel: Channel, target: User | Role, *, allow: int = 0, deny: int = 0
    ) -> Overwrite:
        kind = 0 if isinstance(target, Role) else 1
        overwrite = Overwrite(id=target.id, type=kind, allow=allow, deny=deny)
        self.permission_channel(channel).overwrites[target.id] = overwrite
        self.changed()
        return overwrite

    # -- builders ----------------------------------------------------------------------

    def new_guild(self, name: str, bot_permissions: int, *, guild_id: int | None = None) -> Guild:
        guild_id = guild_id if guild_id is not None else self.snowflakes.next()
        guild = Guild(id=guild_id, name=name, owner_id=self.owner.id)
        guild.roles[guild_id] = Role(
            id=guild_id, guild_id=guild_id, name="@everyone", permissions=ids.EVERYONE_PERMISSIONS
        )
        bot_role = Role(
            id=self.snowflakes.next(),
            guild_id=guild_id,
            name=self.bot.username,
            permissions=bot_permissions,
            position=1,
            managed=True,
            bot_id=self.bot.id,
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot.id] = Member(
            guild_id=guild_id, user_id=self.bot.id, role_ids=[bot_role.id]
        )
        guild.members[self.owner.id] = Member(guild_id=guild_id, user_id=self.owner.id)
        self.guilds[guild_id] = guild
        self.changed()
        return guild

    def new_channel(
        self, guild: Guild, name: str, *, type_: int = ids.GUILD_TEXT, parent: Channel | None = None
    ) -> Channel:
        channel = Channel(
            id=self.snowflakes.next(),
            type=type_,
            name=name,
            guild_id=guild.id,
            parent_id=parent.id if parent else None,
            position=len(guild.channel_ids),
            owner_id=self.bot.id if type_ in ids.THREAD_TYPES else None,
        )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        self.changed()
        return channel

    def dm_channel(self, user: User) -> Channel:
        channel_id = self.dm_channels.get(user.id)
        if channel_id is None:
            channel = Channel(
                id=self.snowflakes.next(), type=ids.DM, name=None, recipient_id=user.id
            )
            self.channels[channel.id] = channel
            self.dm_channels[user.id] = channel.id
            self.changed()
            return channel
        return self.channels[channel_id]

    def add_message(self, message: Message) -> Message:
        self.messages[message.id] = message
        self.message_order.append(message.id)
        self.changed()
        return message
