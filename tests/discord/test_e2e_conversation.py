"""End to end: who answers which message (mentions, replies, DMs, help) and in what order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.emulator import DiscordEmulator
from tests.fixtures.fake_llm import FakeLLM, Step

BOB_TOML = """
name = "Bob"
display_name = "Bob the Builder"
avatar_url = "https://example.org/bob.png"
error_message = "Bob dropped his hammer."
system_prompt = "You are Bob, a cheerful builder."
"""


async def test_two_personalities_answer_in_mention_order(
    discord_emulator: DiscordEmulator,
    start_bot: Any,
    fake_llm: FakeLLM,
    personalities_dir: Path,
) -> None:
    (personalities_dir / "bob.toml").write_text(BOB_TOML)
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    # Bob is mentioned second but answers fast; Lilith (first) is slow. Order still holds.
    fake_llm.script(Step(content="Lilith here", delay=1.5), Step(content="Bob here"))

    await emu.post_message(emu.channel, alice, "@Lilith and @Bob, hello both")
    first, second = await emu.wait_for_messages(emu.channel, 2, timeout=20)

    assert (first.username, second.username) == ("Lilith the Wise", "Bob the Builder")
    assert {first.content, second.content} == {"Lilith here", "Bob here"}
    assert first.avatar_url == "https://example.org/lilith.png"
    assert second.avatar_url == "https://example.org/bob.png"


async def test_replying_to_a_personality_continues_with_it(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")

    await emu.post_message(emu.channel, alice, "@Lilith hello")
    (first,) = await emu.wait_for_messages(emu.channel, 1, timeout=20)
    await emu.post_message(emu.channel, alice, "and what next?", reply_to=first)
    _, second = await emu.wait_for_messages(emu.channel, 2, timeout=20)

    assert second.username == "Lilith the Wise"
    assert second.content == "reply to: alice: and what next?"
    assert len(fake_llm.chat_calls) == 2


async def test_dm_reply_is_prefixed_and_the_personality_sticks(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    dm = emu.world.dm_channel(alice)

    await emu.send_dm(alice, "hello there")
    (help_message,) = await emu.wait_for_messages(dm, 1, timeout=20)
    assert "@Name" in help_message.content and "Lilith the Wise" in help_message.content
    assert fake_llm.chat_calls == []

    await emu.send_dm(alice, "@Lilith are you there?")
    _, reply = await emu.wait_for_messages(dm, 2, timeout=20)
    assert reply.webhook_id is None
    assert reply.content.startswith("**Lilith the Wise:** ")
    assert reply.content.endswith("are you there?")

    await emu.send_dm(alice, "still with me?")
    *_, sticky = await emu.wait_for_messages(dm, 3, timeout=20)
    assert sticky.content.startswith("**Lilith the Wise:** ")
    assert sticky.content.endswith("still with me?")
    assert len(fake_llm.chat_calls) == 2


async def test_bare_bot_mention_gets_help_and_other_bots_are_ignored(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    robot = emu.add_user("robot", bot=True)

    await emu.post_message(emu.channel, robot, "@Lilith hi, I am a bot")
    await emu.post_message(emu.channel, alice, emu.bot_user.mention)
    (help_message,) = await emu.wait_for_messages(emu.channel, 1, timeout=20)

    assert "Lilith the Wise" in help_message.content
    assert help_message.webhook_id is None
    await asyncio.sleep(0.5)
    assert len(emu.bot_messages(emu.channel)) == 1
    assert fake_llm.chat_calls == []


async def test_replies_are_posted_in_message_order(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    fake_llm.script(Step(content="first answer", delay=3), Step(content="second answer"))

    await emu.post_message(emu.channel, alice, "@Lilith first question")
    await fake_llm_wait_calls(fake_llm, 1)
    await emu.post_message(emu.channel, alice, "@Lilith second question")
    first, second = await emu.wait_for_messages(emu.channel, 2, timeout=20)

    assert [first.content, second.content] == ["first answer", "second answer"]


async def test_a_replayed_message_is_answered_once(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")

    message = await emu.post_message(emu.channel, alice, "@Lilith only once please")
    await emu.replay(message)
    await emu.wait_for_messages(emu.channel, 1, timeout=20)
    await emu.replay(message)
    await asyncio.sleep(1.0)

    assert len(emu.bot_messages(emu.channel)) == 1
    assert len(fake_llm.chat_calls) == 1


async def fake_llm_wait_calls(fake_llm: FakeLLM, count: int, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while len(fake_llm.chat_calls) < count:
            await asyncio.sleep(0.02)
