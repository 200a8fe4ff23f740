"""End to end: long-term memory through the emulator, the real app and the fake LLM's
embeddings. What a user notices: a character remembers what they said after the history is
gone, only where they said it (unless they share), not while incognito, not with memory off,
and keeps the newest of two contradicting facts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.emulator import DiscordEmulator
from tests.emulator.models import User
from tests.fixtures.bot import character_reply
from tests.fixtures.fake_llm import FakeLLM, Step
from tzurot.app import Application
from tzurot.memory.service import Exchange

pytestmark = pytest.mark.timeout(120)

MEMORY_ON = {"MEMORY_ENABLED": "true", "MEMORY_THRESHOLD": "0.2", "MEMORY_RETRY_SECONDS": "0.2"}
MEMORY_HEADING = "## Memories of earlier conversations"
FACTS_HEADING = "## What you know about"


async def remembered(app: Application, user: User, count: int = 1) -> list[str]:
    """The user's memory texts with Lilith, once there are at least `count`."""
    assert app.memory is not None
    async with asyncio.timeout(20):
        while True:
            records, total = await app.memory.browse(str(user.id), "lilith", offset=0, limit=50)
            if total >= count:
                return [r.text for r in records]
            await asyncio.sleep(0.05)


async def tell_about_miso(emu: DiscordEmulator, app: Application, user: User) -> None:
    """`user` tells Lilith about their cat in the main channel; the reply is out and the
    exchange remembered."""
    await emu.post_message(emu.channel, user, "@Lilith my cat is called Miso")
    await character_reply(emu, emu.channel, 1)
    await remembered(app, user)


def system_of(fake_llm: FakeLLM, index: int = -1) -> str:
    return str(fake_llm.chat_calls[index].json["messages"][0]["content"])  # type: ignore[index]


def history_of(fake_llm: FakeLLM, index: int = -1) -> list[str]:
    """The chat log of a call: every message between the system message and the new one."""
    messages = fake_llm.chat_calls[index].json["messages"]  # type: ignore[index]
    return [str(m["content"]) for m in messages[1:-1]]


async def command(emu: DiscordEmulator, user: User, name: str, options: dict[str, Any]) -> str:
    interaction = await emu.slash_command(emu.channel, user, name, options)
    await interaction.wait_for_content(timeout=10)
    assert interaction.original is not None
    return interaction.original.content


async def test_a_character_remembers_after_the_history_is_cleared(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app = await start_bot(**MEMORY_ON)
    alice = emu.add_user("alice")
    # Something said nine days ago, in this server.
    assert app.memory is not None and emu.guild is not None
    nine_days_ago = datetime.now(UTC) - timedelta(days=9)
    await app.memory.remember(Exchange(
        job_id="llm-earlier", user_id=str(alice.id), user_name="alice", personality="lilith",
        personality_name="Lilith the Wise", venue=f"guild:{emu.guild.id}",
        user_text="my sister Noor lives in Lisbon with her cat", reply_text="Lisbon is lovely.",
        at=nine_days_ago,
    ))  # fmt: skip

    await emu.post_message(emu.channel, alice, "@Lilith my cat is called Miso and she loves tuna")
    await character_reply(emu, emu.channel, 1)
    texts = await remembered(app, alice, count=2)
    assert "alice: @Lilith my cat is called Miso and she loves tuna" in texts[0]
    cleared = await command(emu, alice, "history clear", {})
    assert "memor" in cleared.lower()  # it says plainly that memories are kept

    await emu.post_message(emu.channel, alice, "@Lilith what is my cat called, and my sister?")
    await character_reply(emu, emu.channel, 2)

    system = system_of(fake_llm)
    assert MEMORY_HEADING in system
    memories = system.split(MEMORY_HEADING, 1)[1]
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert f"[{today}] alice: @Lilith my cat is called Miso and she loves tuna" in memories
    assert f"[{nine_days_ago.strftime('%Y-%m-%d')}] alice: my sister Noor lives in Lisbon" in (
        memories
    )
    assert not any("Miso" in turn for turn in history_of(fake_llm))  # the history is gone


async def test_a_memory_in_the_history_window_is_not_recalled_twice(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app = await start_bot(**MEMORY_ON)
    alice = emu.add_user("alice")

    await tell_about_miso(emu, app, alice)
    await emu.post_message(emu.channel, alice, "@Lilith what is my cat called?")
    await character_reply(emu, emu.channel, 2)

    assert any("Miso" in turn for turn in history_of(fake_llm))
    assert MEMORY_HEADING not in system_of(fake_llm)


async def test_memories_stay_in_their_server_unless_the_user_shares_them(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    other_guild = emu.add_guild("Other Guild")
    app = await start_bot(**MEMORY_ON)
    elsewhere = emu.add_text_channel(other_guild, "elsewhere")
    alice = emu.add_user("alice")
    assert app.memory is not None

    await tell_about_miso(emu, app, alice)

    await emu.post_message(elsewhere, alice, "@Lilith what is my cat called?")
    await character_reply(emu, elsewhere, 1)
    assert MEMORY_HEADING not in system_of(fake_llm)
    await emu.send_dm(alice, "@Lilith what is my cat called?")
    await character_reply(emu, emu.world.dm_channel(alice), 1)
    assert MEMORY_HEADING not in system_of(fake_llm)

    await app.memory.set_prefs(str(alice.id), share=True)
    await emu.post_message(elsewhere, alice, "@Lilith tell me about my cat")
    await character_reply(emu, elsewhere, 2)
    assert "Miso" in system_of(fake_llm).split(MEMORY_HEADING, 1)[1]


async def test_incognito_stops_remembering_but_not_recalling(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app = await start_bot(**MEMORY_ON)
    alice = emu.add_user("alice")
    assert app.memory is not None

    await tell_about_miso(emu, app, alice)
    await app.memory.set_prefs(str(alice.id), incognito=True)
    await command(emu, alice, "history clear", {})

    await emu.post_message(emu.channel, alice, "@Lilith my secret: my cat hates the vet")
    await character_reply(emu, emu.channel, 2)
    await asyncio.sleep(1.0)  # a write would have been queued and run by now
    texts = await remembered(app, alice)
    assert len(texts) == 1 and "secret" not in texts[0]
    assert "Miso" in system_of(fake_llm).split(MEMORY_HEADING, 1)[1]


async def test_memory_off_in_the_settings_stops_recall_and_writes(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app = await start_bot(**MEMORY_ON)
    alice = emu.add_user("alice")
    assert app.memory is not None

    await tell_about_miso(emu, app, alice)
    said = await command(emu, alice, "settings set", {"setting": "memory", "value": "off"})
    assert "off" in said
    await command(emu, alice, "history clear", {})
    embeddings_before = len(fake_llm.embedding_calls)

    await emu.post_message(emu.channel, alice, "@Lilith what is my cat called? I have a dog too")
    await character_reply(emu, emu.channel, 2)
    await asyncio.sleep(1.0)

    assert MEMORY_HEADING not in system_of(fake_llm)
    assert len(fake_llm.embedding_calls) == embeddings_before  # no recall, no write
    assert len(await remembered(app, alice)) == 1


async def test_a_correction_in_conversation_replaces_the_fact(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app = await start_bot(**MEMORY_ON, FACT_EVERY_EXCHANGES="1")
    alice = emu.add_user("alice")
    assert app.memory is not None
    user_id = str(alice.id)

    async def facts_become(expected: list[str]) -> None:
        assert app.memory is not None
        async with asyncio.timeout(20):
            while [f.text for f in await app.memory.facts(user_id, "lilith")] != expected:
                await asyncio.sleep(0.05)

    def facts_answer(*facts: tuple[str, str]) -> Step:
        body = {"facts": [{"key": k, "text": t} for k, t in facts], "forget": []}
        return Step(content=f"Here you go:\n```json\n{json.dumps(body)}\n```")

    fake_llm.script(
        Step(content="What a lovely name."), facts_answer(("cat_name", "Has a cat named Miso"))
    )
    await emu.post_message(emu.channel, alice, "@Lilith my cat is called Miso")
    await character_reply(emu, emu.channel, 1)
    await facts_become(["Has a cat named Miso"])
    distil_prompt = str(fake_llm.chat_calls[-1].json["messages"][1]["content"])  # type: ignore[index]
    assert "alice: @Lilith my cat is called Miso" in distil_prompt

    fake_llm.script(
        Step(content="Mochi it is."), facts_answer(("cat_name", "Has a cat named Mochi"))
    )
    await emu.post_message(emu.channel, alice, "@Lilith actually my cat is called Mochi")
    await character_reply(emu, emu.channel, 2)
    await facts_become(["Has a cat named Mochi"])
    assert "cat_name: Has a cat named Miso" in str(
        fake_llm.chat_calls[-1].json["messages"][1]["content"]
    )  # type: ignore[index]

    await emu.post_message(emu.channel, alice, "@Lilith say hi to my cat")
    await character_reply(emu, emu.channel, 3)
    # The reply's call (this exchange's facts job may have called the model since).
    reply_call = next(
        i for i, call in reversed(list(enumerate(fake_llm.chat_calls)))
        if str(call.json["messages"][-1]["content"]) == "alice: @Lilith say hi to my cat"  # type: ignore[index]
    )  # fmt: skip
    facts = system_of(fake_llm, reply_call).split(FACTS_HEADING, 1)[1].split("##", 1)[0]
    assert "Has a cat named Mochi" in facts and "Miso" not in facts


async def test_a_memory_write_that_fails_twice_then_lands(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app = await start_bot(**MEMORY_ON)
    alice = emu.add_user("alice")
    # The first failure is the recall's (the reply goes on without memories), the next two are
    # the write's first two runs; its third run lands.
    fake_llm.fail_embeddings(3, status=500)

    await emu.post_message(emu.channel, alice, "@Lilith my cat is called Miso")
    reply = await character_reply(emu, emu.channel, 1)
    assert reply.content.startswith("reply to: ")  # the reply did not wait for memory

    texts = await remembered(app, alice)
    assert len(texts) == 1 and "Miso" in texts[0]
    assert len(fake_llm.embedding_calls) == 4


async def test_a_write_that_fails_every_run_is_parked_and_lands_later(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app = await start_bot(**MEMORY_ON)
    alice = emu.add_user("alice")
    assert app.memory is not None
    fake_llm.fail_embeddings(4, status=503)  # the recall, then all three runs of the write

    await emu.post_message(emu.channel, alice, "@Lilith my cat is called Miso")
    await character_reply(emu, emu.channel, 1)
    async with asyncio.timeout(20):
        while len(fake_llm.embedding_calls) < 4:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    assert (await app.memory.browse(str(alice.id), "lilith", offset=0, limit=5))[1] == 0

    assert await app.memory.retry_parked() == 1  # what the cron task does every 10 minutes
    texts = await remembered(app, alice)
    assert "Miso" in texts[0]
    assert await app.memory.retry_parked() == 0
