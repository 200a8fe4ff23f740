"""End to end: how replies reach Discord (splitting, mentions, /chat, errors, webhooks)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.emulator import DiscordEmulator, Message
from tests.fixtures.fake_llm import FakeLLM, Step


async def wait_deleted(message: Message, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not message.deleted:
            await asyncio.sleep(0.05)


async def test_a_long_reply_is_split_into_messages_that_fit(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    text = " ".join(f"word{i:04d}" for i in range(556))  # 5,003 characters
    assert len(text) >= 5000
    fake_llm.script(Step(content=text))

    await emu.post_message(emu.channel, alice, "@Lilith tell me a long story")
    replies = await emu.wait_for_messages(emu.channel, 3, timeout=20)
    await asyncio.sleep(0.5)
    replies = emu.bot_messages(emu.channel)

    assert all(len(r.content) <= 2000 for r in replies)
    assert all(r.username == "Lilith the Wise" for r in replies)
    assert " ".join(" ".join(r.content for r in replies).split()) == text


async def test_model_output_never_pings_anyone(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    role = emu.add_role(emu.guild, "mods", 0)
    fake_llm.script(Step(content=f"@everyone @here <@&{role.id}> <@{alice.id}> wake up"))

    await emu.post_message(emu.channel, alice, "@Lilith ping everybody")
    (reply,) = await emu.wait_for_messages(emu.channel, 1, timeout=20)

    assert "@everyone" in reply.content
    (execute,) = [r for r in emu.requests_matching("POST", "/webhooks/*/*") if r.status == 200]
    assert execute.json["allowed_mentions"] == {"parse": []}


async def test_chat_command_is_acknowledged_in_time_then_answered(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    fake_llm.script(Step(content="a considered answer", delay=10))

    interaction = await emu.slash_command(
        emu.channel, alice, "chat", {"personality": "Lilith", "message": "hi"}
    )
    response = await interaction.wait_for_response(timeout=5)

    assert response["type"] == 5  # deferred: "thinking..."
    assert interaction.rejected == []  # not refused as too late (10062)
    assert await interaction.wait_for_content(timeout=20) == "a considered answer"
    assert interaction.rejected == []


async def test_a_provider_failure_posts_the_personality_error_message(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    fake_llm.script(*[Step(status=401)] * 5)

    await emu.post_message(emu.channel, alice, "@Lilith hello?")
    (reply,) = await emu.wait_for_messages(emu.channel, 1, timeout=20)

    assert reply.username == "Lilith the Wise"
    assert re.fullmatch(
        r"Lilith frowns: something went wrong\.\n\|\|\(error: authentication; ref: \S+\)\|\|",
        reply.content,
    ), reply.content


async def test_a_deleted_webhook_is_recreated(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")

    await emu.post_message(emu.channel, alice, "@Lilith one")
    (first,) = await emu.wait_for_messages(emu.channel, 1, timeout=20)
    (webhook,) = emu.webhooks_in(emu.channel)
    emu.delete_webhook(webhook)

    await emu.post_message(emu.channel, alice, "@Lilith two")
    _, second = await emu.wait_for_messages(emu.channel, 2, timeout=20)

    assert second.content == "reply to: alice: @Lilith two"
    assert second.username == "Lilith the Wise"
    assert second.webhook_id is not None and second.webhook_id != first.webhook_id


async def test_without_manage_webhooks_the_bot_answers_as_itself_and_says_why_once(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    emu.remove_manage_webhooks(emu.channel)
    await start_bot()
    alice = emu.add_user("alice")

    await emu.post_message(emu.channel, alice, "@Lilith one")
    notice, first = await emu.wait_for_messages(emu.channel, 2, timeout=20)
    await emu.post_message(emu.channel, alice, "@Lilith two")
    *_, second = await emu.wait_for_messages(emu.channel, 3, timeout=20)
    await asyncio.sleep(0.5)

    assert "Manage Webhooks" in notice.content
    assert first.webhook_id is None
    assert first.content == "**Lilith the Wise:** reply to: alice: @Lilith one"
    assert second.content == "**Lilith the Wise:** reply to: alice: @Lilith two"
    assert len(emu.bot_messages(emu.channel)) == 3  # the notice came once


async def test_a_slow_answer_shows_a_notice_that_goes_away(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(TAKING_LONGER_SECONDS="1")
    alice = emu.add_user("alice")
    fake_llm.script(Step(content="finally", delay=3))

    await emu.post_message(emu.channel, alice, "@Lilith take your time")
    (notice,) = await emu.wait_for_messages(emu.channel, 1, timeout=10)
    assert "taking longer" in notice.content
    assert not notice.deleted
    _, reply = await emu.wait_for_messages(emu.channel, 2, timeout=20)
    await wait_deleted(notice)

    assert reply.content == "finally"
    assert emu.typing_in(emu.channel)
