"""A process's name among the processes on one Redis: unique among the living, kept across
restarts, taken back from a dead predecessor at once."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from tests.fixtures.redis_server import RedisServer
from tzurot.infra.identity import Holder, ProcessIdentity, this_process
from tzurot.infra.keys import PROCESS_LEASE


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


async def test_live_processes_never_share_a_name(redis: Redis) -> None:
    first, second = ProcessIdentity(redis, "box"), ProcessIdentity(redis, "box")
    try:
        assert await first.claim() == "box"
        assert await second.claim() == "box-2"
        assert await first.is_alive("box") and await first.is_alive("box-2")
    finally:
        await first.release()
        await second.release()
    assert not await first.is_alive("box")


async def test_a_dead_predecessor_on_this_host_gives_its_name_back_at_once(redis: Redis) -> None:
    dead = replace(this_process(), pid=dead_pid(), started="12345")
    await redis.set(PROCESS_LEASE.key(name="box"), dead.dump(), px=15_000)
    identity = ProcessIdentity(redis, "box")
    try:
        async with asyncio.timeout(2):  # no waiting for the lease to lapse
            assert await identity.claim() == "box"
    finally:
        await identity.release()


async def test_a_restarted_container_takes_its_name_once_the_old_lease_is_not_renewed(
    redis: Redis,
) -> None:
    me = this_process()
    elsewhere = Holder(me.host.split("/")[0] + "/pid:[1]", 1, "1", "old")  # another pid ns
    await redis.set(PROCESS_LEASE.key(name="box"), elsewhere.dump(), px=15_000)
    identity = ProcessIdentity(redis, "box")
    try:
        assert await identity.claim() == "box"  # after watching one renewal period
    finally:
        await identity.release()


async def test_a_name_renewed_by_a_live_process_elsewhere_is_left_alone(redis: Redis) -> None:
    me = this_process()
    elsewhere = Holder(me.host.split("/")[0] + "/pid:[1]", 1, "1", "alive")
    key = PROCESS_LEASE.key(name="box")
    await redis.set(key, elsewhere.dump(), px=15_000)

    async def keep_renewing() -> None:
        while True:
            await redis.pexpire(key, 15_000)
            await asyncio.sleep(1)

    renewing = asyncio.create_task(keep_renewing())
    identity = ProcessIdentity(redis, "box")
    try:
        assert await identity.claim() == "box-2"
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        await identity.release()
