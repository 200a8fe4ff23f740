"""A Discord emulator on 127.0.0.1 that the real hikari client connects to.

One aiohttp server serves REST under ``/api/v10`` and the gateway websocket at ``/gateway``
(``/gateway/resume`` is the ``resume_gateway_url``). Every REST request is recorded.

Quick start::

    async def test_reply(discord_emulator):          # fixture: guild + #general, bot can
        emu = discord_emulator                        # manage webhooks
        bot = make_gateway_bot(emu)                   # hikari.GatewayBot(emu.token, rest_url=...)
        async with running_bot(bot, emu):             # await bot.start() ... await bot.close()
            alice = emu.add_user("alice")
            await emu.post_message(emu.channel, alice, "@Lilith hi")
            (reply,) = await emu.wait_for_messages(emu.channel, 1)
            assert reply.username.startswith("Lilith")

World: ``add_guild``, ``add_text_channel``, ``add_thread``, ``add_user``, ``add_role``,
``give_role``, ``set_permissions``, ``remove_manage_webhooks``, ``delete_webhook``.
Users act: ``post_message``, ``send_dm``, ``replay``, ``slash_command``, ``autocomplete``.
Faults: ``fail_next``, ``drop_connection``, ``send_reconnect``, ``invalidate_session``,
``settings`` (interaction deadline, token TTL, echoes, privileged intents).
Observe: ``requests`` / ``requests_matching`` / ``wait_for_request``, ``bot_messages`` /
``wait_for_messages``, ``typing_in``, ``commands``, ``webhooks_in``, ``gateway_log``,
``intents``, ``wait_until_ready``, ``wait_for_resume``; ``Interaction.wait_for_*``.
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
