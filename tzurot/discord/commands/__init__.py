"""Slash commands (hikari-lightbulb), one module per command group.

Every handler that does I/O defers first, well inside Discord's 3 seconds (a modal is the
exception: it must be the first answer). The `channel` and `settings` groups are shared by
several modules, so they are built here and handed to each.
"""

from __future__ import annotations

import lightbulb

from tzurot.discord.commands import (
    admin,
    apikey,
    channel_settings,
    character,
    chat,
    chime_in,
    deny,
    help,
    history,
    memory,
    models,
    preset,
    reply_actions,
)
from tzurot.discord.commands import channel as channel_commands
from tzurot.discord.commands import settings as settings_commands
from tzurot.discord.commands.common import CommandServices, Personalities


def register_commands(client: lightbulb.Client, services: CommandServices) -> None:
    known = Personalities(services.personalities)
    for group in (chat, chime_in, character, history, memory, help):
        group.register(client, services, known)
    for module in (preset, models):
        module.register(client, services, known)
    for community_module in (admin, deny):
        community_module.register(client, services, known)
    reply_actions.register(client, services, known)  # message commands (right-click > Apps)

    channel_group = lightbulb.Group("channel", "Characters and settings of this channel")
    settings_group = lightbulb.Group("settings", "Your settings, and your own API keys")
    # Modules that add subcommands to these groups register here.
    settings_commands.register(settings_group, services, known)
    apikey_group = settings_group.subgroup("apikey", "Your own provider API keys")
    apikey.register(apikey_group, services, known)
    channel_settings.register(channel_group, services, known)
    channel_commands.register(channel_group, services, known)

    for shared in (channel_group, settings_group):
        if shared.subcommands:
            client.register(shared)


__all__ = ["CommandServices", "register_commands"]
