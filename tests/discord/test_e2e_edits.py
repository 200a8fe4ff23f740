"""End to end through the emulator: users editing or deleting the message a character answered.
An edit updates the user's turn in history (and, with `regenerate_on_edit` on, regenerates the
reply in place); a deleted trigger leaves the reply but drops the turn from history."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.emulator import DiscordEmulator
from tests.fixtures.bot import character_reply
from tests.fixtures.fake_llm import FakeLLM, Step
from tzurot.app import Application
from tzurot.conversations import ChatTurn, TranscriptStore

pytestmark = pytest.mark.timeout(120)


async def history(app: Application, channel_id: int) -> list[tuple[str, str]]:
    turns: list[ChatTurn] = await TranscriptStore(app.redis).recent(str(channel_id), 50)
    return [(t.role, t.content) for t in turns]


async def until(check: Any, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def recorded(app: Application, message_id: int) -> None:
    assert app.discord is not None and app.discord.replies is not None
    replies = app.discord.replies

    async def found() -> bool:
        return await replies.of_message(str(message_id)) is not None

    await until(found)


async def test_an_edited_trigger_updates_history_and_nothing_is_regenerated_by_default(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    app = await start_bot()
    fake_llm.script(Step(content="Paris is lovely."))
    trigger = await emu.post_message(emu.channel, alice, "@Lilith what about Pariss?")
    reply = await character_reply(emu, emu.channel, 1)
    await recorded(app, reply.id)

    await emu.edit_user_message(trigger, "@Lilith what about Paris?")

    async def edited() -> bool:
        return ("user", "@Lilith what about Paris?") in await history(app, emu.channel.id)

    await until(edited)
    assert await history(app, emu.channel.id) == [
        ("user", "@Lilith what about Paris?"), ("assistant", "Paris is lovely."),
    ]  # fmt: skip
    await asyncio.sleep(0.5)
    assert len(fake_llm.chat_calls) == 1 and reply.content == "Paris is lovely."


async def test_with_regenerate_on_edit_the_reply_is_regenerated_in_place(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    app = await start_bot()
    setting = await emu.slash_command(
        emu.channel, alice, "settings set", {"setting": "regenerate_on_edit", "value": "on"}
    )
    await setting.wait_for_content(timeout=10)
    fake_llm.script(Step(content="Cats? Sure."), Step(content="Dogs are great too."))
    trigger = await emu.post_message(emu.channel, alice, "@Lilith tell me about cats")
    reply = await character_reply(emu, emu.channel, 1)
    await recorded(app, reply.id)

    await emu.edit_user_message(trigger, "@Lilith tell me about dogs")
    async with asyncio.timeout(20):
        while reply.content != "Dogs are great too.":
            await asyncio.sleep(0.05)
    assert [m.id for m in emu.bot_messages(emu.channel) if m.webhook_id] == [reply.id]
    prompt = str(fake_llm.chat_calls[1].json)
    assert "tell me about dogs" in prompt and "cats" not in prompt

    async def replaced() -> bool:
        return await history(app, emu.channel.id) == [
            ("user", "@Lilith tell me about dogs"), ("assistant", "Dogs are great too."),
        ]  # fmt: skip

    await until(replaced)
    # The same edit delivered twice (a gateway replay) regenerates once.
    await emu.gateway.dispatch("MESSAGE_UPDATE", emu.core.message_event(trigger))
    await asyncio.sleep(0.5)
    assert len(fake_llm.chat_calls) == 2


async def test_a_deleted_trigger_leaves_the_reply_and_drops_the_turn_from_history(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    app = await start_bot()
    fake_llm.script(Step(content="Noted."), Step(content="Hello again."))
    trigger = await emu.post_message(emu.channel, alice, "@Lilith remember this")
    reply = await character_reply(emu, emu.channel, 1)
    await recorded(app, reply.id)

    await emu.delete_user_message(trigger)

    async def dropped() -> bool:
        return await history(app, emu.channel.id) == [("assistant", "Noted.")]

    await until(dropped)
    assert not reply.deleted and reply.content == "Noted."
    # The conversation goes on without it.
    await emu.post_message(emu.channel, alice, "@Lilith hi")
    await character_reply(emu, emu.channel, 2)
    assert "remember this" not in str(fake_llm.chat_calls[1].json)
