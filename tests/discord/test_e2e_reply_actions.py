"""End to end through the emulator: the reply actions (right-click a reply > Apps): Regenerate,
Delete reply, View reasoning and Inspect, each with who may use it, and what Regenerate and
Delete leave in history and in memory."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.emulator import DiscordEmulator
from tests.emulator.models import Interaction, Message, User
from tests.fixtures.bot import character_reply
from tests.fixtures.fake_llm import FakeLLM, Step
from tzurot.app import Application
from tzurot.conversations import ChatTurn, TranscriptStore
from tzurot.memory.service import Exchange, MemoryService, memory_id_of

pytestmark = pytest.mark.timeout(120)

NOT_OURS = "isn't one of my characters' replies"


def memory_of(app: Application) -> MemoryService:
    assert app.memory is not None
    return app.memory


async def act(emu: DiscordEmulator, message: Message, user: User, name: str) -> str:
    """`user` runs the message command `name` on `message`; its (ephemeral) answer."""
    interaction: Interaction = await emu.message_command(message, user, name)
    await interaction.wait_for_content(timeout=15)
    assert interaction.original is not None and interaction.original.is_ephemeral, name
    return interaction.original.content


async def history(app: Application, channel_id: int) -> list[ChatTurn]:
    return await TranscriptStore(app.redis).recent(str(channel_id), 50)


async def job_of(app: Application, message: Message) -> str:
    assert app.discord is not None and app.discord.replies is not None
    async with asyncio.timeout(10):
        while (record := await app.discord.replies.of_message(str(message.id))) is None:
            await asyncio.sleep(0.05)
    return record.job_id


async def regenerated(app: Application, message: Message, old_job: str) -> str:
    """The job id of the reply that replaced `old_job` in `message`, once it is delivered."""
    assert app.discord is not None and app.discord.replies is not None
    async with asyncio.timeout(20):
        while True:
            record = await app.discord.replies.of_message(str(message.id))
            if record is not None and record.job_id != old_job:
                return record.job_id
            await asyncio.sleep(0.05)


async def remembered(app: Application, user: User, job_id: str, *, present: bool) -> None:
    async with asyncio.timeout(20):
        while (await memory_of(app).get(str(user.id), "lilith", memory_id_of(job_id))
               is not None) != present:  # fmt: skip
            await asyncio.sleep(0.05)


async def test_a_message_that_is_not_our_reply_gets_a_plain_answer(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    await start_bot()
    own = await emu.post_message(emu.channel, alice, "just chatting, nobody addressed")
    for name in ("Regenerate", "Delete reply", "View reasoning", "Inspect"):
        assert NOT_OURS in await act(emu, own, alice, name)
    names = {c["name"] for c in emu.commands(emu.guild) if c["type"] == 3}
    assert names == {"Regenerate", "Delete reply", "View reasoning", "Inspect"}


async def test_inspect_shows_model_tokens_settings_and_memories_to_the_requester_or_a_mod(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    alice, bob, mod = emu.add_user("alice"), emu.add_user("bob"), emu.add_moderator("mo")
    app = await start_bot(MEMORY_ENABLED="true")
    await memory_of(app).remember(
        Exchange(
            job_id="llm-earlier", user_id=str(alice.id), user_name="alice", personality="lilith",
            personality_name="Lilith the Wise", venue=f"guild:{emu.guild.id}",
            user_text="my cat is called Miso", reply_text="Miso is a fine name for a cat.",
            at=datetime.now(UTC),
        )
    )  # fmt: skip
    fake_llm.script(Step(content="You told me: Miso."))
    await emu.post_message(emu.channel, alice, "@Lilith what is my cat called? Miso?")
    reply = await character_reply(emu, emu.channel, 1)
    await job_of(app, reply)

    shown = await act(emu, reply, alice, "Inspect")
    assert "Inspect: Lilith the Wise's reply" in shown
    assert "fake-model" in shown  # the model
    assert " in / " in shown and " out" in shown and "Attempts: 1" in shown
    assert "`model` = `" in shown and "(built-in default)" in shown  # each with its source
    assert "Memories used (1)" in shown and "Miso is a fine name" in shown

    assert "Only <@" in await act(emu, reply, bob, "Inspect")
    assert "Inspect: Lilith the Wise's reply" in await act(emu, reply, mod, "Inspect")


async def test_view_reasoning_shows_the_stripped_thinking_to_the_requester_only(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    alice, mod = emu.add_user("alice"), emu.add_moderator("mo")
    app = await start_bot()
    fake_llm.script(
        Step(content="<think>They want a greeting; keep it short.</think>Hello, alice!"),
        Step(content="No thoughts here."),
    )
    await emu.post_message(emu.channel, alice, "@Lilith greet me")
    reply = await character_reply(emu, emu.channel, 1)
    await job_of(app, reply)
    assert reply.content == "Hello, alice!"  # the thinking never shows in the reply

    shown = await act(emu, reply, alice, "View reasoning")
    assert "They want a greeting; keep it short." in shown
    assert "Only <@" in await act(emu, reply, mod, "View reasoning")  # not even a moderator

    await emu.post_message(emu.channel, alice, "@Lilith again")
    plain = await character_reply(emu, emu.channel, 2)
    await job_of(app, plain)
    assert "No reasoning is stored" in await act(emu, plain, alice, "View reasoning")


async def test_regenerate_replaces_the_reply_in_place_in_history_and_in_memory(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    app = await start_bot(MEMORY_ENABLED="true")
    fake_llm.script(Step(content="The first answer."), Step(content="A better answer."))
    trigger = await emu.post_message(emu.channel, alice, "@Lilith tell me something")
    reply = await character_reply(emu, emu.channel, 1)
    old_job = await job_of(app, reply)
    await remembered(app, alice, old_job, present=True)

    refused = await act(emu, reply, bob, "Regenerate")
    assert "Only <@" in refused and "can regenerate" in refused
    assert len(fake_llm.chat_calls) == 1

    assert "Regenerating" in await act(emu, reply, alice, "Regenerate")
    new_job = await regenerated(app, reply, old_job)
    assert reply.content == "A better answer."
    assert [m.id for m in emu.bot_messages(emu.channel) if m.webhook_id] == [reply.id]
    assert not reply.deleted

    # The model saw the same turn again, without the answer it replaces.
    prompt = str(fake_llm.chat_calls[1].json)
    assert "tell me something" in prompt and "The first answer." not in prompt

    turns = await history(app, emu.channel.id)
    assert [(t.role, t.content) for t in turns] == [
        ("user", trigger.content), ("assistant", "A better answer."),
    ]  # fmt: skip
    await remembered(app, alice, new_job, present=True)
    await remembered(app, alice, old_job, present=False)
    records, total = await memory_of(app).browse(str(alice.id), "lilith", offset=0, limit=10)
    assert total == 1 and "A better answer." in records[0].text

    # Inspect and the rest now work on the new reply.
    assert "Inspect: Lilith the Wise's reply" in await act(emu, reply, alice, "Inspect")


async def test_regenerate_and_delete_are_for_the_requester_owner_moderators_and_bot_owner(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    mod, boss = emu.add_moderator("mo"), emu.add_user("boss")
    carol = emu.add_user("carol")
    app = await start_bot(BOT_OWNER_ID=str(boss.id))
    lilith = await app.personalities.get("lilith")
    assert lilith is not None
    await app.personalities.upsert(lilith.model_copy(update={"owner_id": str(carol.id)}))

    fake_llm.script(*(Step(content=f"answer {n}") for n in range(4)))
    await emu.post_message(emu.channel, alice, "@Lilith hello")
    reply = await character_reply(emu, emu.channel, 1)
    job = await job_of(app, reply)
    assert "can delete" in await act(emu, reply, bob, "Delete reply")
    assert "can regenerate" in await act(emu, reply, bob, "Regenerate")
    for n, who in enumerate((mod, boss, carol), start=1):
        assert "Regenerating" in await act(emu, reply, who, "Regenerate")
        job = await regenerated(app, reply, job)
        assert reply.content == f"answer {n}"
    assert len(fake_llm.chat_calls) == 4 and not reply.deleted
    assert "Deleted" in await act(emu, reply, carol, "Delete reply")  # the character's owner
    assert reply.deleted


async def test_delete_reply_removes_it_from_discord_history_and_memory(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    alice, bob, mod = emu.add_user("alice"), emu.add_user("bob"), emu.add_moderator("mo")
    app = await start_bot(MEMORY_ENABLED="true")
    long = " ".join(f"word{n}" for n in range(400))  # over 2000 characters: two messages
    fake_llm.script(Step(content=long))
    trigger = await emu.post_message(emu.channel, alice, "@Lilith a long one please")
    second = await character_reply(emu, emu.channel, 2)
    first = await character_reply(emu, emu.channel, 1)
    job = await job_of(app, second)
    await remembered(app, alice, job, present=True)

    refused = await act(emu, first, bob, "Delete reply")
    assert "can delete" in refused and not first.deleted

    assert "Deleted" in await act(emu, second, mod, "Delete reply")
    assert first.deleted and second.deleted
    turns = await history(app, emu.channel.id)
    assert [(t.role, t.content) for t in turns] == [("user", trigger.content)]
    await remembered(app, alice, job, present=False)
    assert app.discord is not None and app.discord.replies is not None
    assert await app.discord.replies.of_message(str(first.id)) is None


async def test_a_chat_answer_is_regenerated_in_place_too(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    app = await start_bot()
    fake_llm.script(Step(content="First try."), Step(content="Second try."))
    chat = await emu.slash_command(
        emu.channel, alice, "chat", {"personality": "Lilith", "message": "say something"}
    )
    assert await chat.wait_for_content(timeout=20) == "First try."
    answer = chat.original
    assert answer is not None
    job = await job_of(app, answer)

    assert "Regenerating" in await act(emu, answer, alice, "Regenerate")
    await regenerated(app, answer, job)
    assert answer.content == "Second try." and not answer.deleted
    prompt = str(fake_llm.chat_calls[1].json)
    assert prompt.count("say something") == 1 and "First try." not in prompt
    turns = await history(app, emu.channel.id)
    assert [(t.role, t.content) for t in turns] == [
        ("user", "say something"), ("assistant", "Second try."),
    ]  # fmt: skip
