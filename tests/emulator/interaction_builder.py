"""Builds INTERACTION_CREATE payloads (slash commands, autocomplete, component interactions
and modal submits) as Discord sends them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tests.emulator import ids, payloads
from tests.emulator.models import (
    JSON,
    ApplicationCommand,
    Attachment,
    Channel,
    Message,
    Role,
    User,
)
from tests.emulator.state import World

LOGGER = logging.getLogger("tests.emulator")

OPTION_SUB_COMMAND = 1
OPTION_SUB_COMMAND_GROUP = 2
OPTION_STRING = 3
OPTION_INTEGER = 4
OPTION_BOOLEAN = 5
OPTION_USER = 6
OPTION_CHANNEL = 7
OPTION_ROLE = 8
OPTION_NUMBER = 10
OPTION_ATTACHMENT = 11

INTERACTION_APPLICATION_COMMAND = 2
INTERACTION_MESSAGE_COMPONENT = 3
INTERACTION_AUTOCOMPLETE = 4
INTERACTION_MODAL_SUBMIT = 5
CONTEXT_GUILD = 0
CONTEXT_BOT_DM = 1
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
COMMAND_CHAT_INPUT = 1
COMMAND_USER = 2
COMMAND_MESSAGE = 3


def _infer_type(value: object) -> int:
    if isinstance(value, bool):
        return OPTION_BOOLEAN
    if isinstance(value, int):
        return OPTION_INTEGER
    if isinstance(value, float):
        return OPTION_NUMBER
    if isinstance(value, User):
        return OPTION_USER
    if isinstance(value, Channel):
        return OPTION_CHANNEL
    if isinstance(value, Role):
        return OPTION_ROLE
    if isinstance(value, Attachment):
        return OPTION_ATTACHMENT
    return OPTION_STRING


class InteractionBuilder:
    def __init__(self, world: World) -> None:
        self.world = world

    def find_command(
        self, channel: Channel, name: str, command_type: int = COMMAND_CHAT_INPUT
    ) -> ApplicationCommand | None:
        """The synced command (a slash command, or with ``command_type`` a user or message
        command): the guild's own first, then the global one."""
        commands = [
            c for c in self.world.commands.values() if c.name == name and c.type == command_type
        ]
        in_guild = [
            c for c in commands if c.guild_id is not None and c.guild_id == channel.guild_id
        ]
        global_ = [c for c in commands if c.guild_id is None]
        found = in_guild or global_
        if not found:
            LOGGER.warning("interaction for /%s, which the bot has not synced (no PUT seen)", name)
            return None
        return found[0]

    def _options(
        self,
        channel: Channel,
        values: Mapping[str, Any],
        types: Mapping[str, int],
        focused: str | None,
        resolved: JSON,
    ) -> list[JSON]:
        out: list[JSON] = []
        for name, value in values.items():
            option_type = types.get(name, _infer_type(value))
            option: JSON = {"name": name, "type": option_type}
            if name == focused:
                option["focused"] = True
                option["value"] = str(value)  # the partial text the user has typed so far
            else:
                option["value"] = self._value(channel, value, resolved)
            out.append(option)
        return out

    def _value(self, channel: Channel, value: object, resolved: JSON) -> object:
        world = self.world
        if isinstance(value, User):
            resolved.setdefault("users", {})[str(value.id)] = payloads.user(value)
            guild = world.guild_of(channel)
            if guild is not None and value.id in guild.members:
                member = payloads.member(world, guild.members[value.id], with_user=False)
                member["permissions"] = str(world.channel_permissions(channel, value.id))
                resolved.setdefault("members", {})[str(value.id)] = member
            return str(value.id)
        if isinstance(value, Channel):
            entry = payloads.channel(world, value)
            entry["permissions"] = str(world.channel_permissions(value, world.bot.id))
            resolved.setdefault("channels", {})[str(value.id)] = entry
            return str(value.id)
        if isinstance(value, Role):
            resolved.setdefault("roles", {})[str(value.id)] = payloads.role(value)
            return str(value.id)
        if isinstance(value, Attachment):
            entry = value.payload(ephemeral=True)
            resolved.setdefault("attachments", {})[str(value.id)] = entry
            return str(value.id)
        return value

    def resolve(self, channel: Channel, value: object, resolved: JSON) -> object:
        """``value`` as Discord sends it (an id for users, channels, roles, attachments),
        adding the entity to ``resolved``."""
        return self._value(channel, value, resolved)

    def build(
        self,
        *,
        interaction_id: int,
        token: str,
        kind: int,
        channel: Channel,
        user: User,
        name: str,
        options: Mapping[str, Any],
        focused: str | None,
        locale: str,
    ) -> tuple[JSON, int]:
        """The INTERACTION_CREATE data and the command id used. ``name`` may hold a
        subcommand path: ``"history clear"`` or ``"settings apikey set"``."""
        world = self.world
        path = name.split()
        command = self.find_command(channel, path[0])
        command_id = command.id if command else world.snowflakes.next()
        types = command.option_types(path[1:]) if command else {}
        resolved: JSON = {}
        nested = self._options(channel, options, types, focused, resolved)
        for depth in range(len(path) - 1, 0, -1):
            kind_of = OPTION_SUB_COMMAND if depth == len(path) - 1 else OPTION_SUB_COMMAND_GROUP
            nested = [{"name": path[depth], "type": kind_of, "options": nested}]
        data: JSON = {"id": str(command_id), "name": path[0], "type": 1, "options": nested}
        if resolved:
            data["resolved"] = resolved
        if command is not None and command.guild_id is not None:
            data["guild_id"] = str(command.guild_id)

        payload = self.envelope(
            interaction_id=interaction_id,
            token=token,
            kind=kind,
            channel=channel,
            user=user,
            locale=locale,
        )
        payload["data"] = data
        return payload, command_id

    def build_message_command(
        self,
        *,
        interaction_id: int,
        token: str,
        target: Message,
        user: User,
        name: str,
        locale: str,
    ) -> tuple[JSON, int]:
        """A message command (right-click a message > Apps > ``name``) as Discord sends it:
        type 2 with ``data {id, name, type: 3, target_id, resolved: {messages}}``."""
        world = self.world
        channel = world.channels[target.channel_id]
        command = self.find_command(channel, name, COMMAND_MESSAGE)
        command_id = command.id if command else world.snowflakes.next()
        data: JSON = {
            "id": str(command_id),
            "name": name,
            "type": COMMAND_MESSAGE,
            "target_id": str(target.id),
            "resolved": {"messages": {str(target.id): payloads.message(world, target)}},
        }
        if command is not None and command.guild_id is not None:
            data["guild_id"] = str(command.guild_id)
        payload = self.envelope(
            interaction_id=interaction_id, token=token, kind=INTERACTION_APPLICATION_COMMAND,
            channel=channel, user=user, locale=locale,
        )  # fmt: skip
        payload["data"] = data
        return payload, command_id

    def envelope(
        self,
        *,
        interaction_id: int,
        token: str,
        kind: int,
        channel: Channel,
        user: User,
        locale: str,
        message: Message | None = None,
    ) -> JSON:
        """Everything of an INTERACTION_CREATE but ``data``: channel (with the user's
        permissions), ``member`` (with ``permissions``) or ``user``, ``app_permissions``, and
        for component interactions the ``message`` the component is on."""
        world = self.world
        channel_payload = payloads.channel(world, channel)
        user_permissions = world.channel_permissions(channel, user.id)
        channel_payload["permissions"] = str(user_permissions)
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(world.application_id),
            "type": kind,
            "token": token,
            "version": 1,
            "channel_id": str(channel.id),
            "channel": channel_payload,
            "locale": locale,
            "app_permissions": str(world.channel_permissions(channel, world.bot.id)),
            "entitlements": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if message is not None:
            payload["message"] = payloads.message(world, message)
        guild = world.guild_of(channel)
        if guild is not None:
            member_record = guild.members.get(user.id)
            if member_record is None:
                raise ValueError(f"{user.username} is not a member of guild {guild.name}")
            member = payloads.member(world, member_record)
            member["permissions"] = str(user_permissions)
            payload.update(
                guild_id=str(guild.id),
                guild_locale="en-US",
                guild={"id": str(guild.id), "locale": "en-US", "features": []},
                member=member,
                authorizing_integration_owners={"0": str(guild.id)},
                context=CONTEXT_GUILD,
            )
        else:
            payload.update(
                user=payloads.user(user),
                authorizing_integration_owners={"0": "0"},
                context=CONTEXT_BOT_DM,
            )
        return payload


def new_interaction_token() -> str:
    return "aW50ZXJhY3Rpb24" + ids.new_token(60)
