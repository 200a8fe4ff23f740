"""Scheduled maintenance as SAQ cron jobs, each tick run once across every process.

SAQ enqueues a cron job under one key per task, so processes sharing a Redis mostly agree; a
tick lock (`SET cron-tick:{task}:{tick} NX`) makes "once per tick" a guarantee rather than a
likelihood.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from saq import CronJob, Job

from tzurot.logs import get_logger, log_context

log = get_logger(__name__)

_TICK_LOCK_SECONDS = 24 * 3600
_LAST_RUN_KEY = "tzurot:cron:last-run"


@dataclass(frozen=True)
class CronTask:
    name: str
    schedule: str  # cron syntax; a sixth field means seconds
    run: Callable[[int], Awaitable[Any]]  # called with the tick (epoch seconds)
    timeout: int = 300


def saq_cron_jobs(tasks: Sequence[CronTask], redis: Redis) -> list[CronJob[Any]]:
    return [CronJob(_once_per_tick(task, redis), cron=task.schedule, timeout=task.timeout,
                    unique=True) for task in tasks]  # fmt: skip


def _once_per_tick(task: CronTask, redis: Redis) -> Callable[..., Awaitable[None]]:
    async def tick(ctx: dict[str, Any]) -> None:
        job: Job = ctx["job"]
        with log_context(cron=task.name, tick=job.scheduled):
            claimed = await redis.set(
                f"cron-tick:{task.name}:{job.scheduled}", "1", nx=True, ex=_TICK_LOCK_SECONDS
            )
            if not claimed:
                log.debug("cron tick already run elsewhere")
                return
            await task.run(job.scheduled)
            await redis.hset(_LAST_RUN_KEY, task.name, str(job.scheduled))

    # SAQ names cron functions by __qualname__; each task needs its own.
    tick.__qualname__ = tick.__name__ = f"cron_{task.name}"
    return tick
