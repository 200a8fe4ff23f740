"""End to end with real OS processes: shards split across processes, a delivering process
killed (another takes over), and a reply posted just before a crash never posted twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.emulator import DiscordEmulator
from tests.fixtures.app import TzurotProcess
from tests.fixtures.bot import discord_process_env, two_shards
from tests.fixtures.fake_llm import FakeLLM, Step
from tests.fixtures.redis_server import RedisServer

GROUP = "delivery"


def pending_by_consumer(redis_server: RedisServer) -> dict[str, int]:
    client = redis_server.client()
    try:
        return {
            c["name"].decode(): int(c["pending"])
            for c in client.xinfo_consumers("tzurot:results", GROUP)
        }
    finally:
        client.close()


async def test_two_processes_split_the_gateway_and_each_guild_is_answered_once(
    discord_emulator: DiscordEmulator,
    redis_server: RedisServer,
    fake_llm: FakeLLM,
    personalities_dir: Path,
    tmp_path: Path,
    processes: list[TzurotProcess],
) -> None:
    emu = discord_emulator
    _, channels = await two_shards(
        emu, redis_server, fake_llm, personalities_dir, tmp_path, processes
    )
    alice = emu.add_user("alice")

    sent = [await emu.post_message(c, alice, f"@Lilith hi from {c.name}") for c in channels]
    for channel in channels:
        (reply,) = await emu.wait_for_messages(channel, 1, timeout=30)
        assert reply.content == f"reply to: alice: @Lilith hi from {channel.name}"
    await asyncio.sleep(1)

    assert [emu.shards_that_received(m) for m in sent] == [[0], [1]]
    assert [len(emu.bot_messages(c)) for c in channels] == [1, 1]
    assert len(fake_llm.chat_calls) == 2


async def test_a_killed_delivering_process_has_its_replies_posted_by_another_within_30_s(
    discord_emulator: DiscordEmulator,
    redis_server: RedisServer,
    fake_llm: FakeLLM,
    personalities_dir: Path,
    tmp_path: Path,
    processes: list[TzurotProcess],
) -> None:
    emu = discord_emulator
    shards, channels = await two_shards(
        emu, redis_server, fake_llm, personalities_dir, tmp_path, processes
    )
    alice = emu.add_user("alice")
    channel = channels[0]
    # Discord fails every post for now: the replies wait in whichever process read them.
    outage = emu.fail_next("*", "/webhooks/*", 503, count=100_000)  # and interaction edits
    await emu.post_message(channel, alice, "@Lilith one")
    await emu.post_message(channel, alice, "@Lilith two")
    chat = await emu.slash_command(channel, alice, "chat", {"personality": "Lilith",
                                                           "message": "and you?"})  # fmt: skip
    assert (await chat.wait_for_response(timeout=10))["type"] == 5  # deferred
    async with asyncio.timeout(20):
        while sum(pending_by_consumer(redis_server).values()) < 3:
            await asyncio.sleep(0.1)
    holders = [name for name, count in pending_by_consumer(redis_server).items() if count]
    victim = next(p for p in shards if p.env["PROCESS_NAME"] in holders)
    victim.kill()
    outage.count = 0
    killed = asyncio.get_running_loop().time()

    replies = await emu.wait_for_messages(channel, 3, timeout=40)
    answer = await chat.wait_for_content(timeout=40)
    took = asyncio.get_running_loop().time() - killed
    await asyncio.sleep(2)

    assert answer == "reply to: alice: and you?"  # "thinking…" did not stay forever
    posted = [m.content for m in emu.bot_messages(channel)]
    assert sorted(posted) == sorted(
        ["reply to: alice: @Lilith one", "reply to: alice: @Lilith two", answer]
    )  # each once: nothing lost, nothing doubled
    assert posted.index("reply to: alice: @Lilith one") < posted.index(
        "reply to: alice: @Lilith two"
    )
    assert len(replies) >= 3
    assert took < 30, took


async def test_a_reply_posted_just_before_a_crash_is_not_posted_again(
    discord_emulator: DiscordEmulator,
    redis_server: RedisServer,
    fake_llm: FakeLLM,
    personalities_dir: Path,
    tmp_path: Path,
    processes: list[TzurotProcess],
) -> None:
    emu = discord_emulator
    env = discord_process_env(emu, redis_server, fake_llm, personalities_dir, PROCESS_NAME="box")
    process = TzurotProcess(env, tmp_path / "box.log")
    processes.append(process)
    await process.start()
    await emu.wait_until_ready(timeout=20)
    alice = emu.add_user("alice")
    await emu.post_message(emu.channel, alice, "@Lilith first")
    await emu.wait_for_messages(emu.channel, 1, timeout=20)  # the webhook exists now

    # Discord posts the message, then the process dies before it hears back (so before it
    # can record it).
    fake_llm.script(Step(content="a reply that must appear once"))
    emu.fail_next("POST", "/webhooks/*", 500, after_effect=True, delay=30)
    await emu.post_message(emu.channel, alice, "@Lilith second")
    await emu.wait_for_messages(emu.channel, 2, timeout=20)
    process.kill()

    again = TzurotProcess(env, tmp_path / "again.log", port=process.port)
    processes.append(again)
    await again.start()
    await emu.post_message(emu.channel, alice, "@Lilith third")
    *_, third = await emu.wait_for_messages(emu.channel, 3, timeout=30)
    await asyncio.sleep(2)

    contents = [m.content for m in emu.bot_messages(emu.channel)]
    assert contents.count("a reply that must appear once") == 1, contents
    assert third.content == "reply to: alice: @Lilith third"
    assert len(contents) == 3
