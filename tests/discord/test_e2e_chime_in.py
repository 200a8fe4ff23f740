"""End to end: /chime-in, a character joining the channel's conversation with no new message.
What a user notices: the character speaks in the channel under its own name, having read the
conversation; the command is answered privately; the same gate as /chat (private characters,
the denylist) applies."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import DiscordEmulator
from tests.fixtures.bot import character_reply
from tests.fixtures.fake_llm import FakeLLM, Step
from tzurot.app import Application
from tzurot.conversations import TranscriptStore
from tzurot.moderation.denylist import DenyEntry, Denylist

pytestmark = pytest.mark.timeout(120)

BOB_TOML = """
name = "Bob"
display_name = "Bob the Builder"
avatar_url = "https://example.org/bob.png"
system_prompt = "You are Bob, a cheerful builder."
"""


async def test_a_character_chimes_in_on_the_conversation(
    discord_emulator: DiscordEmulator,
    start_bot: Any,
    fake_llm: FakeLLM,
    personalities_dir: Path,
) -> None:
    (personalities_dir / "bob.toml").write_text(BOB_TOML)
    emu = discord_emulator
    app: Application = await start_bot()
    alice = emu.add_user("alice")
    fake_llm.script(Step(content="The sun is out at last."), Step(content="Perfect for building!"))
    await emu.post_message(emu.channel, alice, "@Lilith the weather is lovely today")
    await character_reply(emu, emu.channel, 1)

    interaction = await emu.slash_command(emu.channel, alice, "chime-in", {"personality": "Bob"})
    answer = await interaction.wait_for_content(timeout=10)
    reply = await character_reply(emu, emu.channel, 2)

    assert "Bob the Builder" in answer
    assert interaction.original is not None and interaction.original.is_ephemeral
    assert reply.username == "Bob the Builder" and reply.avatar_url == "https://example.org/bob.png"
    assert reply.content == "Perfect for building!"
    # Bob read the conversation, and was asked to join it (no new user message).
    messages = fake_llm.chat_calls[-1].json["messages"]  # type: ignore[index]
    contents = [str(m["content"]) for m in messages]
    assert "alice: @Lilith the weather is lovely today" in contents
    assert "Lilith the Wise: The sun is out at last." in contents
    assert contents[-1].startswith("[Nobody has addressed Bob the Builder directly")
    # History gains Bob's reply and no user turn of the command.
    assert app.redis is not None
    turns = await TranscriptStore(app.redis).recent(str(emu.channel.id), 10)
    assert [(t.role, t.speaker) for t in turns] == [
        ("user", "alice"), ("assistant", "Lilith the Wise"), ("assistant", "Bob the Builder"),
    ]  # fmt: skip


async def test_chime_in_keeps_to_the_gate(
    discord_emulator: DiscordEmulator,
    start_bot: Any,
    fake_llm: FakeLLM,
    personalities_dir: Path,
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    bob = emu.add_user("bob")
    (personalities_dir / "vega.toml").write_text(
        f'name = "Vega"\nsystem_prompt = "You are Vega."\npublic = false\nowner_id = "{bob.id}"\n'
    )
    app: Application = await start_bot()
    assert app.redis is not None

    private = await emu.slash_command(emu.channel, alice, "chime-in", {"personality": "Vega"})
    refused_private = await private.wait_for_content(timeout=10)
    await Denylist(app.redis).add(
        DenyEntry(target=str(alice.id), scope="bot", added_by=str(emu.owner.id),
                  added_at=time.time())
    )  # fmt: skip
    denied = await emu.slash_command(emu.channel, alice, "chime-in", {"personality": "Lilith"})
    refused_denied = await denied.wait_for_content(timeout=10)
    await asyncio.sleep(1.0)

    assert "don't know anyone called `Vega`" in refused_private
    assert refused_denied == "This isn't available here."
    assert private.original is not None and private.original.is_ephemeral
    assert denied.original is not None and denied.original.is_ephemeral
    assert [m for m in emu.bot_messages(emu.channel) if m.webhook_id] == []
    assert fake_llm.chat_calls == []
