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

World: ``add_guild`` (``shard=``/``shard_count=`` to land on a shard), ``add_text_channel``,
``add_thread``, ``add_user``, ``add_role``, ``give_role``, ``set_permissions``,
``remove_manage_webhooks``, ``add_webhook``, ``delete_webhook``, ``delete_channel``.
``add_moderator`` (a member with a role granting permissions), ``owner`` (the guild owner).
Users act: ``post_message`` / ``send_dm`` (``attachments=``), ``replay``, ``slash_command``,
``autocomplete``, ``click`` (a button), ``select`` (a select menu), ``submit_modal``,
``close_dms`` / ``open_dms``.
Files: ``upload`` (an ``Attachment``: slash option value or message attachment), served over
HTTP on ``cdn_host`` (``attachment_url``; ``serve_redirect`` for hostile URLs);
``attachment_bytes`` reads what the bot uploaded; ``cdn_fetches`` lists what was fetched.
Faults: ``fail_next``, ``lose_access`` / ``regain_access``, ``refuse_webhooks`` /
``accept_webhooks``, ``drop_connection``, ``send_reconnect``, ``invalidate_session`` (these
three take ``shard=``), ``settings`` (interaction deadline, token TTL, echoes, privileged
intents, recommended ``shards``, ``max_concurrency``).
Observe: ``requests`` / ``requests_matching`` / ``wait_for_request``, ``bot_messages`` /
``wait_for_messages``, ``typing_in``, ``commands``, ``webhooks_in``, ``gateway_log``,
``dms_to`` / ``wait_for_dms``, ``buttons(message)`` / ``selects(message)``,
``intents``, ``wait_until_ready`` / ``wait_for_resume`` (``shard=``), ``wait_for_shards``,
``session_for``, ``connected_shards``, ``shard_of``, ``dispatches``, ``shards_that_received``;
``Interaction.wait_for_*`` (``wait_for_modal``, ``wait_for_update``), ``Interaction.modal``.

Sharding: one session per IDENTIFY'd shard; a guild's events go to shard
``(guild_id >> 22) % shard_count``, DMs to shard 0. Without ``shard=`` the gateway helpers mean
the most recent session (the only one when unsharded), so single-shard tests read as before.
Two bots of one application: ``running_bot(bot_a, emu, shard_ids=[0], shard_count=2)`` and
``running_bot(bot_b, emu, shard_ids=[1], shard_count=2)``.
"""

from tests.emulator.components import buttons, selects
from tests.emulator.core import Settings
from tests.emulator.gateway import Delivery, Session
from tests.emulator.hikari_helpers import DEFAULT_INTENTS, Events, make_gateway_bot, running_bot
from tests.emulator.ids import bot_token
from tests.emulator.models import (
    Attachment,
    Channel,
    Fault,
    Guild,
    Interaction,
    Message,
    Modal,
    RecordedRequest,
    Role,
    User,
    Webhook,
    WebhookRefusal,
)
from tests.emulator.server import DiscordEmulator
from tests.emulator.waiting import EmulatorTimeoutError

__all__ = [
    "DEFAULT_INTENTS",
    "Attachment",
    "Channel",
    "Delivery",
    "DiscordEmulator",
    "EmulatorTimeoutError",
    "Events",
    "Fault",
    "Guild",
    "Interaction",
    "Message",
    "Modal",
    "RecordedRequest",
    "Role",
    "Session",
    "Settings",
    "User",
    "Webhook",
    "WebhookRefusal",
    "bot_token",
    "buttons",
    "make_gateway_bot",
    "running_bot",
    "selects",
]
