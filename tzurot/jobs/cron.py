"""Scheduled maintenance as SAQ cron jobs, each tick run once across every process.

SAQ enqueues a cron job under one key per task, so processes sharing a Redis mostly agree; the
tick record (`tzurot:cron:{task}`, moved forward atomically, never back) makes "once per tick"
a guarantee rather than a likelihood.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from saq import CronJob, Job

from tzurot.infra.keys import CRON_TICK
from tzurot.logs import get_logger, log_context

log = get_logger(__name__)

# KEYS: the task's tick record. ARGV: tick, seconds. 1 if this tick is ours to run.
_CLAIM_TICK = """
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


@dataclass(frozen=True)
class CronTask:
    name: str
    schedule: str  # cron syntax; a sixth field means seconds
    run: Callable[[int], Awaitable[Any]]  # called with the tick (epoch seconds)
    timeout: int = 300


def saq_cron_jobs(tasks: Sequence[CronTask], redis: Redis) -> list[CronJob[Any]]:
    claim = redis.register_script(_CLAIM_TICK)
    return [CronJob(_once_per_tick(task, claim), cron=task.schedule, timeout=task.timeout,
                    unique=True) for task in tasks]  # fmt: skip


def _once_per_tick(task: CronTask, claim: Any) -> Callable[..., Awaitable[None]]:
    key = CRON_TICK.key(task=task.name)
    ttl = CRON_TICK.ttl_seconds

    async def tick(ctx: dict[str, Any]) -> None:
        job: Job = ctx["job"]
        with log_context(cron=task.name, tick=job.scheduled):
            if not await claim(keys=[key], args=[job.scheduled, ttl]):
                log.debug("cron tick already run elsewhere")
                return
            await task.run(job.scheduled)

    # SAQ names cron functions by __qualname__; each task needs its own.
    tick.__qualname__ = tick.__name__ = f"cron_{task.name}"
    return tick
