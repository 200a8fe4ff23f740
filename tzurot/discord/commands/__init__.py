"""Slash commands (hikari-lightbulb), one module per command group.

Every handler that does I/O defers first, well inside Discord's 3 seconds.
"""

from __future__ import annotations

import lightbulb

from tzurot.discord.commands import character, chat, help, history
from tzurot.discord.commands.common import CommandServices, Personalities


def register_commands(client: lightbulb.Client, services: CommandServices) -> None:
    known = Personalities(services.personalities)
    for group in (chat, character, history, help):
        group.register(client, services, known)


__all__ = ["CommandServices", "register_commands"]
