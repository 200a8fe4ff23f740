"""End to end: the other slash commands, threads, and history reaching the prompt."""

from __future__ import annotations

from typing import Any

from tests.emulator import DiscordEmulator
from tests.fixtures.fake_llm import FakeLLM


async def test_character_list_view_and_autocomplete(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")

    listed = await emu.slash_command(emu.channel, alice, "character list")
    assert "Lilith the Wise" in await listed.wait_for_content(timeout=10)

    viewed = await emu.slash_command(emu.channel, alice, "character view", {"personality": "lil"})
    shown = await viewed.wait_for_content(timeout=10)
    assert "Lilith the Wise" in shown and "patient, curious" in shown

    suggestion = await emu.autocomplete(
        emu.channel, alice, "chat", {"personality": "LIL", "message": ""}, focused="personality"
    )
    await suggestion.wait_for_response()
    assert [c["name"] for c in suggestion.choices or []] == ["Lilith"]


async def test_help_command_names_the_characters(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    await start_bot()
    helped = await emu.slash_command(emu.channel, emu.add_user("alice"), "help")
    text = await helped.wait_for_content(timeout=10)
    assert "@Name" in text and "Lilith the Wise" in text


async def test_history_reaches_the_prompt_until_it_is_cleared(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")

    await emu.post_message(emu.channel, alice, "@Lilith my cat is called Miso")
    await emu.wait_for_messages(emu.channel, 1, timeout=20)
    await emu.post_message(emu.channel, alice, "@Lilith what is my cat called?")
    await emu.wait_for_messages(emu.channel, 2, timeout=20)

    second_prompt = fake_llm.chat_calls[1].json
    assert second_prompt is not None
    spoken = [m["content"] for m in second_prompt["messages"]]
    assert "alice: @Lilith my cat is called Miso" in spoken  # the user turn, with the speaker
    assert "reply to: alice: @Lilith my cat is called Miso" in spoken  # Lilith's own reply

    cleared = await emu.slash_command(
        emu.channel, alice, "history clear", {"personality": "Lilith"}
    )
    assert "Forgot" in await cleared.wait_for_content(timeout=10)
    await emu.post_message(emu.channel, alice, "@Lilith do you remember my cat?")
    # Four bot messages now: two replies, the /history answer, and this reply.
    await emu.wait_for_messages(emu.channel, 4, timeout=20)
    third_prompt = fake_llm.chat_calls[2].json
    assert third_prompt is not None
    assert not any("Miso" in m["content"] for m in third_prompt["messages"])


async def test_a_reply_in_a_thread_goes_through_the_parent_webhook(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    await start_bot()
    thread = emu.add_thread(emu.channel, "side quest")

    await emu.post_message(thread, emu.add_user("alice"), "@Lilith hello from a thread")
    (reply,) = await emu.wait_for_messages(thread, 1, timeout=20)

    assert reply.username == "Lilith the Wise"
    assert reply.thread_id == thread.id
    (webhook,) = emu.webhooks_in(emu.channel)  # created on the parent, not the thread
    assert reply.webhook_id == webhook.id
