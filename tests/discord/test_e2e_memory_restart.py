"""End to end: a process killed while it writes a memory: the write is taken up again when it
restarts and lands once; the reply was posted once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.asyncio import Redis

from tests.emulator import DiscordEmulator
from tests.fixtures.app import TzurotProcess
from tests.fixtures.bot import discord_process_env
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer
from tzurot.infra.keys import MEMORY_RECORDS
from tzurot.memory.models import MemoryScope


async def test_a_memory_write_cut_off_by_a_kill_lands_once_after_restart(
    discord_emulator: DiscordEmulator,
    redis_server: RedisServer,
    fake_llm: FakeLLM,
    personalities_dir: Path,
    tmp_path: Path,
) -> None:
    emu = discord_emulator
    env = discord_process_env(
        emu, redis_server, fake_llm, personalities_dir,
        MEMORY_ENABLED="true", MEMORY_THRESHOLD="0.2", PROCESS_NAME="memory-host",
    )  # fmt: skip
    process = TzurotProcess(env, tmp_path / "tzurot.log")
    alice = emu.add_user("alice")
    redis = Redis.from_url(redis_server.url)
    records = MEMORY_RECORDS.key(scope=MemoryScope(str(alice.id), "lilith").key)
    try:
        await process.start()
        await emu.wait_until_ready(timeout=20)
        # The recall's embedding answers at once; the write's hangs until the process is gone.
        await emu.post_message(emu.channel, alice, "@Lilith my cat is called Miso")
        (reply,) = await emu.wait_for_messages(emu.channel, 1, timeout=30)
        fake_llm.embedding_delay = 30.0
        async with asyncio.timeout(20):
            while len(fake_llm.embedding_calls) < 2:  # the write's call is in flight
                await asyncio.sleep(0.05)
        process.kill()
        assert await redis.hlen(records) == 0

        fake_llm.embedding_delay = 0.0
        await process.start()
        async with asyncio.timeout(30):
            while await redis.hlen(records) == 0:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)

        assert await redis.hlen(records) == 1
        assert "Miso" in str(await redis.hvals(records))
        assert len(emu.bot_messages(emu.channel)) == 1
        assert reply.content.endswith("my cat is called Miso")
    finally:
        process.ensure_stopped()
        await redis.aclose()
