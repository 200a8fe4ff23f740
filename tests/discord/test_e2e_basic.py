"""End to end: a user mentions a personality; the reply arrives through the channel webhook."""

from __future__ import annotations

from typing import Any

from tests.emulator import DiscordEmulator
from tests.fixtures.fake_llm import FakeLLM


async def test_mention_gets_a_webhook_reply_with_name_and_avatar(
    start_bot: Any, discord_emulator: DiscordEmulator, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")

    await emu.post_message(emu.channel, alice, "hey @Lilith, how are you?")
    (reply,) = await emu.wait_for_messages(emu.channel, 1, timeout=20)

    assert reply.content == "reply to: alice: hey @Lilith, how are you?"
    assert reply.username == "Lilith the Wise"
    assert reply.avatar_url == "https://example.org/lilith.png"
    assert reply.webhook_id is not None
    assert reply.allowed_mentions == {"parse": []}
