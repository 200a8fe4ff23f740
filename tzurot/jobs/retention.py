"""Retention of finished jobs: completed 24 h (newest 10 kept), failed 7 days (newest 50 kept)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from saq import Job, Status
from saq.queue.redis import RedisQueue

from tzurot.jobs.constants import (
    COMPLETED_KEEP_AT_LEAST,
    COMPLETED_RETENTION_SECONDS,
    FAILED_KEEP_AT_LEAST,
    FAILED_RETENTION_SECONDS,
    JobPrefix,
)
from tzurot.jobs.results import ResultLog
from tzurot.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class RetentionRule:
    max_age_seconds: float
    keep_at_least: int


COMPLETED_RULE = RetentionRule(COMPLETED_RETENTION_SECONDS, COMPLETED_KEEP_AT_LEAST)
FAILED_RULE = RetentionRule(FAILED_RETENTION_SECONDS, FAILED_KEEP_AT_LEAST)


def expired(jobs: list[Job], rule: RetentionRule, now_ms: float) -> list[Job]:
    """The jobs past `rule`: older than its age, and not among the newest `keep_at_least`."""
    newest_first = sorted(jobs, key=lambda job: job.completed, reverse=True)
    cutoff = now_ms - rule.max_age_seconds * 1000
    return [job for job in newest_first[rule.keep_at_least :] if job.completed < cutoff]


async def prune_finished_jobs(
    queue: RedisQueue,
    results: ResultLog,
    completed: RetentionRule = COMPLETED_RULE,
    failed: RetentionRule = FAILED_RULE,
) -> int:
    done: list[Job] = []
    failures: list[Job] = []
    prefixes = tuple(JobPrefix)
    async for job in queue.iter_jobs([Status.COMPLETE, Status.FAILED, Status.ABORTED]):
        if not job.key.startswith(prefixes):
            continue
        (done if job.status == Status.COMPLETE else failures).append(job)
    now_ms = time.time() * 1000
    doomed = expired(done, completed, now_ms) + expired(failures, failed, now_ms)
    if doomed:
        await queue.redis.delete(*(job.id for job in doomed))
        await results.forget([job.key for job in doomed])
        log.info("finished jobs removed", count=len(doomed))
    return len(doomed)
