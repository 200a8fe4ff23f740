"""Scheduled work: every tick of a cron task runs once, however many processes share Redis."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from tests.fixtures.app import AppFactory
from tests.fixtures.redis_server import RedisServer
from tzurot.jobs import CronTask


async def test_two_processes_on_one_redis_run_each_tick_once(
    start_app: AppFactory, redis_server: RedisServer
) -> None:
    counter = Redis.from_url(redis_server.url)

    async def count_tick(tick: int) -> None:
        await counter.hincrby("test:ticks", str(tick), 1)

    every_second = CronTask(name="count", schedule="* * * * * *", run=count_tick)
    await start_app(COMPONENTS="worker", extra_cron=[every_second])
    await start_app(COMPONENTS="worker", extra_cron=[every_second])

    await asyncio.sleep(6)
    runs = {int(k): int(v) for k, v in (await counter.hgetall("test:ticks")).items()}
    await counter.aclose()

    assert len(runs) >= 3, runs
    assert set(runs.values()) == {1}, runs
