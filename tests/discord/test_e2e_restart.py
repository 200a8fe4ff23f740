"""End to end: a process killed between generation and delivery still answers exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.emulator import DiscordEmulator
from tests.fixtures.app import TzurotProcess
from tests.fixtures.bot import discord_process_env
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer


async def test_a_reply_generated_before_a_crash_is_posted_once_after_restart(
    discord_emulator: DiscordEmulator,
    redis_server: RedisServer,
    fake_llm: FakeLLM,
    personalities_dir: Path,
    tmp_path: Path,
) -> None:
    emu = discord_emulator
    env = discord_process_env(emu, redis_server, fake_llm, personalities_dir)
    process = TzurotProcess(env, tmp_path / "tzurot.log")
    alice = emu.add_user("alice")
    # Discord is down for webhook posts: the first process generates but cannot deliver.
    outage = emu.fail_next("POST", "/webhooks/*/*", 500, count=10_000)
    try:
        await process.start()
        await emu.wait_until_ready(timeout=20)
        await emu.post_message(emu.channel, alice, "@Lilith survive this")
        await emu.wait_for_request("POST", "/webhooks/*/*", timeout=20)
        assert len(fake_llm.chat_calls) == 1
        process.kill()

        outage.count = 0
        await process.start()
        (reply,) = await emu.wait_for_messages(emu.channel, 1, timeout=30)
        await asyncio.sleep(2)

        assert reply.content == "reply to: alice: @Lilith survive this"
        assert len(emu.bot_messages(emu.channel)) == 1
        assert len(fake_llm.chat_calls) == 1
    finally:
        process.ensure_stopped()
