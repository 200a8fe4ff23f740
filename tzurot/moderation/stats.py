"""What /admin stats reports: the queue, the characters, and the jobs of the last hour.

The queue counts and the all-time totals come from `JobQueue.counts()` (SAQ's queue and the
result counters); the last hour is counted on the results stream (`tzurot:results`, which keeps
24 h of finished generations that had a Discord delivery: jobs of the HTTP API without one are
in the totals only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from tzurot.infra.keys import RESULTS_STREAM
from tzurot.jobs import JobQueue
from tzurot.personalities.store import PersonalityDirectory

_PAGE = 1000
_MAX_COUNTED = 200_000


@dataclass(frozen=True)
class StatsSnapshot:
    waiting: int
    active: int
    scheduled: int
    completed: int
    failed: int
    characters: int
    last_hour: int
    last_hour_capped: bool


class AdminStats:
    def __init__(self, redis: Redis, jobs: JobQueue, personalities: PersonalityDirectory) -> None:
        self._redis = redis
        self._jobs = jobs
        self._personalities = personalities

    async def snapshot(self) -> StatsSnapshot:
        counts = await self._jobs.counts()
        characters = len(await self._personalities.list())
        last_hour, capped = await self.finished_since(time.time() - 3600)
        return StatsSnapshot(
            waiting=counts.waiting, active=counts.active, scheduled=counts.scheduled,
            completed=counts.completed, failed=counts.failed, characters=characters,
            last_hour=last_hour, last_hour_capped=capped,
        )  # fmt: skip

    async def finished_since(self, since: float) -> tuple[int, bool]:
        """Generations delivered to Discord that finished after `since` (capped count)."""
        key = RESULTS_STREAM.key()
        start = f"{int(since * 1000)}-0"
        total = 0
        while total < _MAX_COUNTED:
            page: Any = await self._redis.xrange(key, min=start, count=_PAGE)
            # A reply that began to stream is announced too: only finished ones count.
            total += sum(1 for _, fields in page if b"streaming" not in fields)
            if len(page) < _PAGE:
                return total, False
            last = page[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else str(last))
        return total, True
