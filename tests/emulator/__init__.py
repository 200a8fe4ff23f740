"""A Discord emulator on 127.0.0.1 that the real hikari client connects to.

Quick start::

    async def test_something(discord_emulator):
        emu = discord_emulator
        bot = make_gateway_bot(emu)
        async with running_bot(bot, emu):
            alice = emu.add_user("alice")
            await emu.post_message(emu.channel, alice, "hello")
            replies = await emu.wait_for_messages(emu.channel, 1)
"""

from tests.emulator.core import Settings
from tests.emulator.hikari_helpers import DEFAULT_INTENTS, make_gateway_bot, running_bot
from tests.emulator.ids import bot_token
from tests.emulator.models import (
    Channel,
    Fault,
    Guild,
    Interaction,
    Message,
    RecordedRequest,
    Role,
    User,
    Webhook,
)
from tests.emulator.server import DiscordEmulator
from tests.emulator.waiting import EmulatorTimeoutError

__all__ = [
    "DEFAULT_INTENTS",
    "Channel",
    "DiscordEmulator",
    "EmulatorTimeoutError",
    "Fault",
    "Guild",
    "Interaction",
    "Message",
    "RecordedRequest",
    "Role",
    "Settings",
    "User",
    "Webhook",
    "bot_token",
    "make_gateway_bot",
    "running_bot",
]
