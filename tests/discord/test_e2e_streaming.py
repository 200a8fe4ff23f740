"""End to end: replies that stream in under the character's name, through the emulator (which
records every edit of every message) and the fake LLM's streamed answers."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.emulator import Channel, DiscordEmulator, Message, User
from tests.fixtures.app import TzurotProcess
from tests.fixtures.bot import two_shards
from tests.fixtures.fake_llm import FakeLLM, Step
from tests.fixtures.redis_server import RedisServer
from tzurot.discord.delivery.render import reply_chunks
from tzurot.infra.keys import LANE_LEASE
from tzurot.jobs import ResultLog, job_id_for
from tzurot.jobs.streams import ReplyStreams

pytestmark = pytest.mark.timeout(180)

NAME = "Lilith the Wise"
# Discord's limit, and the least time between two edits of one message (about 1 s, with room
# for the emulator's clock reading each request a little after it was sent).
LIMIT = 2000
EDIT_GAP = 0.8


def story(words: int) -> str:
    """Prose with sentences and paragraphs, so the splitter has real choices to make."""
    out = []
    for i in range(words):
        out.append(f"word{i:04d}")
        if i % 12 == 11:
            out[-1] += "."
        if i % 120 == 119:
            out[-1] += "\n\n"
    return " ".join(out).replace("\n\n ", "\n\n").strip()


def streamed(text: str, *, chunk_size: int = 40, chunk_delay: float = 0.02, **more: Any) -> Step:
    return Step(content=text, chunk_size=chunk_size, chunk_delay=chunk_delay, **more)


def replies(emu: DiscordEmulator, channel: Channel, *, with_deleted: bool = False) -> list[Message]:
    """The character's messages in `channel` (webhook posts; in DMs the bot's own)."""
    dm = channel.guild_id is None
    return [
        m
        for m in emu.bot_messages(channel)
        if (m.webhook_id or dm) and (with_deleted or not m.deleted)
    ]


async def settle(
    emu: DiscordEmulator, channel: Channel, wanted: Any, timeout: float = 60
) -> list[Message]:
    """The character's messages once `wanted(messages)` holds, and a moment after (no more
    edits coming)."""
    async with asyncio.timeout(timeout):
        while not wanted(replies(emu, channel)):
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)
    return replies(emu, channel)


def assert_edited_within_limits(messages: list[Message], *, deferred: bool = False) -> None:
    """Every version of every message fits, and one message changes about once a second at
    most (`deferred`: the first version is Discord's "thinking…", not the bot's)."""
    for message in messages:
        versions = message.versions[1:] if deferred else message.versions
        assert all(len(v.content) <= LIMIT for v in versions), [len(v.content) for v in versions]
        gaps = [b.at - a.at for a, b in itertools.pairwise(versions)]
        assert all(gap >= EDIT_GAP for gap in gaps), gaps


async def set_streaming(emu: DiscordEmulator, user: User, value: str) -> None:
    interaction = await emu.slash_command(
        emu.channel, user, "settings set", {"setting": "streaming", "value": value}
    )
    await interaction.wait_for_content(timeout=10)


async def test_a_long_reply_streams_in_edits_that_fit_and_ends_as_the_plain_reply(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    text = story(560)
    assert len(text) >= 5000
    fake_llm.script(streamed(text, chunk_size=50, chunk_delay=0.03))

    await emu.post_message(emu.channel, alice, "@Lilith tell me a long story")
    (first, *_) = await settle(emu, emu.channel, lambda ms: len(ms) >= 1)
    stream = fake_llm.streams[-1]
    # The first text was up while the model was still writing, and it grew by edits.
    assert stream.finished_at is None or first.posted_at < stream.finished_at
    streamed_messages = await settle(
        emu, emu.channel, lambda ms: len(ms) >= 3 and stream.finished_at is not None
    )
    assert len(first.versions) > 1 and len(first.first_content) < len(first.content)
    assert all(m.username == NAME for m in streamed_messages)
    assert_edited_within_limits(streamed_messages)

    # The same answer with streaming off: posted once, the very same messages.
    await set_streaming(emu, alice, "off")
    fake_llm.script(Step(content=text))
    await emu.post_message(emu.channel, alice, "@Lilith again, all at once")
    count = len(streamed_messages)
    messages = await settle(emu, emu.channel, lambda ms: len(ms) >= 2 * count)
    plain = messages[count:]
    assert all(m.revisions == [] for m in plain)
    assert [m.content for m in plain] == [m.content for m in streamed_messages]
    assert not fake_llm.chat_calls[-1].json or not fake_llm.chat_calls[-1].json.get("stream")


async def test_rate_limited_edits_slow_down_and_the_reply_still_ends_whole(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    text = story(300)
    fake_llm.script(streamed(text, chunk_size=20, chunk_delay=0.03))
    emu.rate_limit_edits(retry_after=1.5, count=3)

    await emu.post_message(emu.channel, alice, "@Lilith talk while Discord pushes back")
    stream_done = await settle(emu, emu.channel, bool)
    messages = await settle(
        emu,
        emu.channel,
        lambda ms: (
            fake_llm.streams[-1].finished_at is not None
            and " ".join(" ".join(m.content for m in ms).split()) == " ".join(text.split())
        ),
    )

    limited = [r for r in emu.requests_matching("PATCH", "*/messages/*") if r.status == 429]
    assert limited, "the emulator answered no edit with 429"
    assert stream_done and len(messages) == 2
    assert_edited_within_limits(messages)
    assert all(m.username == NAME for m in messages)


async def test_a_failure_mid_stream_becomes_the_characters_error_message(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    partial = story(200)
    fake_llm.script(*[streamed(partial, chunk_size=20, chunk_delay=0.05, fail_after=40)] * 5)

    await emu.post_message(emu.channel, alice, "@Lilith start, then stumble")
    messages = await settle(
        emu, emu.channel, lambda ms: len(ms) == 1 and "||(error:" in ms[0].content
    )

    (reply,) = messages
    assert re.fullmatch(
        r"Lilith frowns: something went wrong\.\n\|\|\(error: \w+; ref: \S+\)\|\|",
        reply.content,
    ), reply.content
    assert any(v.content.startswith("word0000") for v in reply.versions)  # it had streamed
    for message in replies(emu, emu.channel, with_deleted=True):
        assert message is reply or message.deleted


async def test_thinking_never_shows_in_any_edit(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    answer = "Here is what I think. " + story(80)
    fake_llm.script(
        streamed(
            "<think>a secret plan, step by step</think>" + answer,
            chunk_size=3, chunk_delay=0.01, reasoning="hidden reasoning the provider sent",
        )
    )  # fmt: skip

    await emu.post_message(emu.channel, alice, "@Lilith think first")
    messages = await settle(
        emu, emu.channel, lambda ms: bool(ms) and ms[-1].content.endswith("word0079")
    )

    seen = [v.content for m in messages for v in m.versions]
    assert len(seen) > 1
    assert not any("secret" in s or "hidden" in s or "think>" in s for s in seen), seen
    assert " ".join(m.content for m in messages) == answer


async def test_a_dm_reply_streams_as_the_bots_own_edited_message(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    dm = emu.world.dm_channel(alice)
    text = story(150)
    fake_llm.script(streamed(text, chunk_size=20, chunk_delay=0.03))

    await emu.send_dm(alice, "@Lilith hello in private")
    messages = await settle(emu, dm, lambda ms: bool(ms) and ms[-1].content.endswith(text[-20:]))

    (reply,) = messages
    assert reply.webhook_id is None and reply.author.id == emu.bot_user.id
    assert reply.content == f"**{NAME}:** {text}"
    assert len(reply.versions) > 1
    assert all(v.content.startswith(f"**{NAME}:** ") for v in reply.versions)
    assert_edited_within_limits([reply])


async def test_a_reply_streams_in_a_thread_through_the_parents_webhook(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    thread = emu.add_thread(emu.channel, "a thread")
    text = story(260)  # two messages' worth
    fake_llm.script(streamed(text, chunk_size=20, chunk_delay=0.03))

    await emu.post_message(thread, alice, "@Lilith in the thread, please")
    messages = await settle(
        emu, thread, lambda ms: [m.content for m in ms] == reply_chunks(text, NAME)
    )

    assert [m.content for m in messages] == reply_chunks(text, NAME)
    assert all(m.thread_id == thread.id and m.username == NAME for m in messages)
    assert len(messages[0].versions) > 1
    assert replies(emu, emu.channel) == []
    assert_edited_within_limits(messages)


async def test_without_manage_webhooks_a_reply_streams_as_the_bot(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    emu.remove_manage_webhooks(emu.channel)
    await start_bot()
    alice = emu.add_user("alice")
    text = story(120)
    fake_llm.script(streamed(text, chunk_size=20, chunk_delay=0.03))

    await emu.post_message(emu.channel, alice, "@Lilith no webhooks here")
    async with asyncio.timeout(30):
        while not any(m.content == f"**{NAME}:** {text}" for m in emu.bot_messages(emu.channel)):
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)

    notice, reply = emu.bot_messages(emu.channel)
    assert "Manage Webhooks" in notice.content
    assert reply.webhook_id is None and reply.content == f"**{NAME}:** {text}"
    assert len(reply.versions) > 1
    assert all(v.content.startswith(f"**{NAME}:** ") for v in reply.versions)
    assert_edited_within_limits([reply])


async def test_chat_streams_into_the_deferred_response(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    text = story(120)
    fake_llm.script(streamed(text, chunk_size=20, chunk_delay=0.03))

    interaction = await emu.slash_command(
        emu.channel, alice, "chat", {"personality": "Lilith", "message": "stream to me"}
    )
    assert (await interaction.wait_for_response(timeout=5))["type"] == 5
    async with asyncio.timeout(30):
        while interaction.original is None or interaction.original.content != text:
            await asyncio.sleep(0.05)
    await asyncio.sleep(1)

    original = interaction.original
    assert original is not None and original.content == text
    assert len(original.versions) > 2  # "thinking…", then the text growing
    assert interaction.rejected == []
    assert_edited_within_limits([original], deferred=True)


async def test_delivery_shows_a_reply_stream_written_anywhere_then_the_final_reply(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM, redis_client: Redis
) -> None:
    """The delivery side alone: the reply's stream is written here (as a generating process
    elsewhere would); the model's answer itself comes late, all at once."""
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    await set_streaming(emu, alice, "off")  # the generator itself writes no stream here
    text = story(300)
    fake_llm.script(Step(content=text, delay=6))

    message = await emu.post_message(emu.channel, alice, "@Lilith hello")
    async with asyncio.timeout(20):
        while not fake_llm.chat_calls:  # the reply's ticket is in its lane, the model asked
            await asyncio.sleep(0.02)
    slug = hashlib.sha256(b"lilith").hexdigest()[:12]
    job_id = job_id_for(f"msg-{message.id}-{slug}")
    writer = ReplyStreams(redis_client, ResultLog(redis_client).announce_streaming).writer(
        job_id, str(emu.channel.id)
    )
    await writer.restart()
    for end in range(40, len(text) + 40, 40):
        await writer.show(text[:end])
        await asyncio.sleep(0.02)
    await writer.end()
    shown = await settle(
        emu, emu.channel, lambda ms: [m.content for m in ms] == reply_chunks(text, NAME)
    )
    assert await redis_client.get(f"tzurot:result:{job_id}") is None  # before the result

    async with asyncio.timeout(30):
        while await redis_client.exists(f"tzurot:stream:{job_id}"):
            await asyncio.sleep(0.1)  # delivered, and the stream gone with it
    final = replies(emu, emu.channel, with_deleted=True)
    assert [m.id for m in final] == [m.id for m in shown]
    assert [m.content for m in final] == reply_chunks(text, NAME)
    assert len(final[0].versions) > 1
    assert_edited_within_limits(final)


# -- a process killed mid-stream --------------------------------------------------------------


def lease_holder(redis_server: RedisServer, lane: str) -> str | None:
    client = redis_server.client()
    try:
        raw = client.get(LANE_LEASE.key(lane=lane))
        return raw.decode() if isinstance(raw, bytes) else raw
    finally:
        client.close()


async def test_a_process_killed_mid_stream_leaves_the_survivor_finishing_the_same_messages(
    discord_emulator: DiscordEmulator,
    redis_server: RedisServer,
    fake_llm: FakeLLM,
    personalities_dir: Path,
    tmp_path: Path,
    processes: list[TzurotProcess],
) -> None:
    emu = discord_emulator
    started, channels = await two_shards(
        emu, redis_server, fake_llm, personalities_dir, tmp_path, processes
    )
    channel = channels[0]
    alice = emu.add_user("alice")
    text = story(330)  # two messages' worth
    # Slow enough to be killed halfway; a re-run (if the generating process died) is the same.
    fake_llm.script(*[streamed(text, chunk_size=20, chunk_delay=0.08)] * 2)

    await emu.post_message(channel, alice, "@Lilith a story, slowly")
    await settle(emu, channel, lambda ms: bool(ms) and len(ms[0].versions) >= 2)
    holder = lease_holder(redis_server, str(channel.id))
    assert holder is not None
    victim = next(p for p in started if p.env["PROCESS_NAME"] == holder)
    victim.kill()
    shown_at_kill = [m.content for m in replies(emu, channel)]

    messages = await settle(
        emu,
        channel,
        lambda ms: " ".join(" ".join(m.content for m in ms).split()) == " ".join(text.split()),
        timeout=120,
    )

    everything = replies(emu, channel, with_deleted=True)
    assert [m.id for m in everything] == [m.id for m in messages]  # no duplicate, none left
    assert len(messages) == 2
    assert messages[0].content.startswith(shown_at_kill[0][:50])
    assert_edited_within_limits(messages)
