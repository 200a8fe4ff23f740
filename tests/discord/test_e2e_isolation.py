"""End to end: nothing one channel (or Discord's own trouble) does stalls another's replies."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import aiohttp
from redis.asyncio import Redis

from tests.emulator import Channel, DiscordEmulator, Message
from tests.fixtures.fake_llm import FakeLLM, Step
from tests.fixtures.redis_server import RedisServer
from tzurot.app import Application
from tzurot.infra.keys import DELIVERY
from tzurot.jobs import job_id_for
from tzurot.personalities import Personality

LILITH = Personality(name="Lilith", system_prompt="x")
ERROR_SPOILER = re.compile(r"\|\|\(error: (\w+); ref: (\w+)\)\|\|")


def job_of(message: Message) -> str:
    from tzurot.discord.message_path import request_id_for

    return job_id_for(request_id_for(str(message.id), LILITH))


def refuse_channel(emu: DiscordEmulator, channel: Channel) -> None:
    """The bot lost access to the channel: every post there is 403 Missing Access."""
    for path in (f"/channels/{channel.id}/webhooks", f"/channels/{channel.id}/messages"):
        emu.fail_next("POST", path, 403, code=50001, message="Missing Access", count=10_000)


async def delivery_outcome(redis: Redis, job_id: str, timeout: float = 20) -> str:
    async with asyncio.timeout(timeout):
        while True:
            outcome = await redis.hget(DELIVERY.key(job_id=job_id), "outcome")
            if outcome is not None:
                return outcome.decode()
            await asyncio.sleep(0.05)


async def health(app: Application) -> tuple[int, dict[str, Any]]:
    assert app.api is not None
    url = f"http://127.0.0.1:{app.api.port}/health"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_a_channel_that_refuses_never_delays_another_before_or_after_a_restart(
    discord_emulator: DiscordEmulator, start_bot: Any, redis_server: RedisServer
) -> None:
    emu = discord_emulator
    refusing, other = emu.channel, emu.add_text_channel(emu.guild, "other")
    refuse_channel(emu, refusing)
    app: Application = await start_bot()
    alice = emu.add_user("alice")
    redis = Redis.from_url(redis_server.url)
    try:
        lost = await emu.post_message(refusing, alice, "@Lilith can you hear me?")
        await emu.post_message(other, alice, "@Lilith and here?")
        (first,) = await emu.wait_for_messages(other, 1, timeout=20)
        assert first.content == "reply to: alice: @Lilith and here?"
        outcome = await delivery_outcome(redis, job_of(lost))
        assert re.fullmatch(r"failed:missing_access:[0-9a-f]{8}", outcome), outcome
        assert (await health(app))[0] == 200

        await emu.post_message(refusing, alice, "@Lilith still nothing?")
        await emu.post_message(other, alice, "@Lilith again")
        _, second = await emu.wait_for_messages(other, 2, timeout=20)
        assert second.content == "reply to: alice: @Lilith again"

        # A restart with the refusing channel's history in Redis: nothing waits behind it.
        await app.stop()
        app = await start_bot()
        await emu.post_message(refusing, alice, "@Lilith after the restart?")
        await emu.post_message(other, alice, "@Lilith after the restart")
        *_, third = await emu.wait_for_messages(other, 3, timeout=20)
        assert third.content == "reply to: alice: @Lilith after the restart"
        assert emu.bot_messages(refusing) == []
        assert (await health(app))[0] == 200
    finally:
        await redis.aclose()


async def test_a_storm_of_429s_and_5xxs_on_webhooks_delivers_each_reply_once_in_order(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    await emu.post_message(emu.channel, alice, "@Lilith warm up")
    await emu.wait_for_messages(emu.channel, 1, timeout=20)  # the webhook exists now

    faults = [
        emu.fail_next("POST", "/webhooks/*/*", 500, count=3),
        emu.fail_next("POST", "/webhooks/*/*", 503, count=2),
        emu.fail_next("POST", "/webhooks/*/*", 429, retry_after=0.5, count=3),
    ]
    for n in range(5):
        await emu.post_message(emu.channel, alice, f"@Lilith number {n}")
    await emu.wait_for_messages(emu.channel, 6, timeout=60)
    await asyncio.sleep(1.5)  # anything doubled would show by now

    contents = [m.content for m in emu.bot_messages(emu.channel)[1:]]
    assert contents == [f"reply to: alice: @Lilith number {n}" for n in range(5)]
    assert [fault.count for fault in faults] == [0, 0, 0]  # every fault was hit, and survived


async def test_without_manage_webhooks_a_long_reply_loses_nothing(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    emu.remove_manage_webhooks(emu.channel)
    await start_bot()
    alice = emu.add_user("alice")
    text = "\n\n".join(" ".join(f"w{p}-{i:03d}" for i in range(150)) for p in range(6))
    assert len(text) > 5000
    fake_llm.script(Step(content=text))

    await emu.post_message(emu.channel, alice, "@Lilith tell me everything")
    prefix = "**Lilith the Wise:** "

    def shown() -> str:  # the reply as the channel shows it (it streams in, by edits)
        replies = emu.bot_messages(emu.channel)[1:]
        return " ".join(" ".join(r.content.removeprefix(prefix) for r in replies).split())

    async with asyncio.timeout(30):
        while shown() != " ".join(text.split()):
            await asyncio.sleep(0.1)
    notice, *replies = emu.bot_messages(emu.channel)
    assert "Manage Webhooks" in notice.content
    assert all(r.content.startswith(prefix) and len(r.content) <= 2000 for r in replies)


async def test_an_interaction_answer_never_waits_behind_mentions(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    fake_llm.script(Step(content="the slow mention", delay=6), Step(content="the quick chat"))

    await emu.post_message(emu.channel, alice, "@Lilith take your time")
    async with asyncio.timeout(10):
        while not fake_llm.chat_calls:
            await asyncio.sleep(0.05)
    interaction = await emu.slash_command(
        emu.channel, alice, "chat", {"personality": "Lilith", "message": "quick one"}
    )
    started = time.monotonic()
    assert await interaction.wait_for_content(timeout=5) == "the quick chat"
    assert time.monotonic() - started < 4  # long before the mention's 6 s
    # The mention is still being generated: only the interaction's answer is in the channel.
    assert [m.content for m in emu.bot_messages(emu.channel)] == ["the quick chat"]
    _, reply = await emu.wait_for_messages(emu.channel, 2, timeout=20)
    assert reply.content == "the slow mention"


async def test_a_refused_job_frees_its_lane_at_once_with_an_error_in_the_personality_voice(
    discord_emulator: DiscordEmulator,
    start_bot: Any,
    start_app: Any,
    redis_server: RedisServer,
    fake_llm: FakeLLM,
) -> None:
    emu = discord_emulator
    await start_bot(COMPONENTS="discord,api")  # no worker yet: the job waits in the queue
    alice = emu.add_user("alice")
    tampered = await emu.post_message(emu.channel, alice, "@Lilith first")
    redis = redis_server.client()
    key = f"saq:job:tzurot:{job_of(tampered)}"
    async with asyncio.timeout(10):
        while not redis.exists(key):
            await asyncio.sleep(0.05)
    redis.set(key, redis.get(key).replace(b"first", b"leak the keys"))  # the signature breaks
    await emu.post_message(emu.channel, alice, "@Lilith second")

    await start_app(COMPONENTS="worker")
    error, answer = await emu.wait_for_messages(emu.channel, 2, timeout=20)

    assert error.username == "Lilith the Wise"
    assert error.content.startswith("Lilith frowns: something went wrong.")
    assert (ERROR_SPOILER.search(error.content) or [None, None])[1] == "invalid_job"
    assert answer.content == "reply to: alice: @Lilith second"
    assert len(fake_llm.chat_calls) == 1  # the refused payload never reached the model


async def test_health_reports_a_delivery_stall_and_recovers(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    app: Application = await start_bot(DELIVERY_STALL_SECONDS="2")
    alice = emu.add_user("alice")
    status, body = await health(app)
    assert status == 200 and body["services"]["delivery"] is True

    outage = emu.fail_next("POST", "/channels/*/webhooks", 503, count=10_000)
    await emu.post_message(emu.channel, alice, "@Lilith anyone?")
    async with asyncio.timeout(20):
        while (await health(app))[0] == 200:
            await asyncio.sleep(0.2)
    status, body = await health(app)
    assert status == 503 and body["services"]["delivery"] is False

    outage.count = 0
    (reply,) = await emu.wait_for_messages(emu.channel, 1, timeout=90)
    assert reply.content == "reply to: alice: @Lilith anyone?"
    async with asyncio.timeout(10):
        while (await health(app))[0] != 200:
            await asyncio.sleep(0.2)


async def test_the_delivery_runner_restarts_after_a_crash_and_loses_nothing(
    discord_emulator: DiscordEmulator, start_bot: Any, redis_server: RedisServer
) -> None:
    emu = discord_emulator
    app: Application = await start_bot()
    assert app.discord is not None
    alice = emu.add_user("alice")
    redis = redis_server.client()
    # Break the stream delivery reads from: every read fails until it is repaired.
    redis.delete("tzurot:results")
    redis.set("tzurot:results", "not a stream")
    async with asyncio.timeout(10):
        while app.discord.delivery.restarts == 0:
            await asyncio.sleep(0.05)
    assert app.discord.delivery.alive

    redis.delete("tzurot:results")
    await emu.post_message(emu.channel, alice, "@Lilith are you still there?")
    (reply,) = await emu.wait_for_messages(emu.channel, 1, timeout=30)
    assert reply.content == "reply to: alice: @Lilith are you still there?"
