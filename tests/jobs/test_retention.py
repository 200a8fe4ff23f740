from __future__ import annotations

import time

from redis.asyncio import Redis
from saq import Job, Status
from saq.queue.redis import RedisQueue

from tests.fixtures.app import SIGNING_KEY, AppFactory
from tests.fixtures.redis_server import RedisServer
from tzurot.ai.generation import Generator, ModelDefaults
from tzurot.ai.provider import LiteLLMProvider
from tzurot.app import Application
from tzurot.conversations import NoHistory
from tzurot.jobs.results import ResultLog
from tzurot.jobs.retention import RetentionRule, expired, prune_finished_jobs
from tzurot.jobs.signing import PayloadSigner

HOUR_MS = 3600 * 1000


def job(key: str, completed_ms: float, status: Status = Status.COMPLETE) -> Job:
    return Job(function="generate", key=key, completed=int(completed_ms), status=status)


def test_old_jobs_go_but_the_newest_are_kept_whatever_their_age() -> None:
    now = time.time() * 1000
    jobs = [job(f"llm-{n}", now - (n + 1) * HOUR_MS * 10) for n in range(15)]  # 10 h apart
    rule = RetentionRule(max_age_seconds=24 * 3600, keep_at_least=10)

    gone = {j.key for j in expired(jobs, rule, now)}

    # The newest 10 stay even though 8 of them are older than 24 h; the other 5 are old too.
    assert gone == {f"llm-{n}" for n in range(10, 15)}


async def test_prune_removes_expired_records_and_keeps_recent(redis_server: RedisServer) -> None:
    redis = Redis.from_url(redis_server.url)
    queue = RedisQueue(redis, name="tzurot-ai")
    results = ResultLog(redis)
    now = time.time() * 1000
    for n in range(12):
        old = job(f"llm-old-{n}", now - 48 * HOUR_MS - n * 1000)
        old.queue = queue
        await redis.set(old.id, queue.serialize(old))
    fresh = job("llm-fresh", now - 1000)
    fresh.queue = queue
    await redis.set(fresh.id, queue.serialize(fresh))
    failed = job("llm-failed", now - 48 * HOUR_MS, Status.FAILED)
    failed.queue = queue
    await redis.set(failed.id, queue.serialize(failed))

    removed = await prune_finished_jobs(queue, results)

    # 13 completed: the newest 10 stay (fresh + 9 old); the 3 oldest go. The failed one is
    # within its 7 days.
    assert removed == 3
    assert await queue.job("llm-fresh") is not None
    assert await queue.job("llm-failed") is not None
    assert await queue.job("llm-old-11") is None
    await redis.aclose()


async def test_a_job_that_ended_without_a_result_still_gets_a_failure_recorded(
    start_app: AppFactory, redis_server: RedisServer
) -> None:
    from tzurot.ai.contracts import GenerationRequest
    from tzurot.jobs import record_abandoned_jobs

    app: Application = await start_app(COMPONENTS="api")  # no worker: the job stays queued
    jobs = app.jobs
    assert jobs is not None
    submission = await jobs.submit(
        GenerationRequest(request_id="lost-1", personality="lilith", message="hi", user_id="u")
    )
    job = await jobs.saq.job(submission.job_id)
    assert job is not None
    await jobs.saq.abort(job, error="swept")  # as a sweep does on a job's last attempt

    generator = _generator_for(app)
    assert (
        await record_abandoned_jobs(jobs.saq, ResultLog(jobs.saq.redis), _signer(), generator) == 1
    )

    view = await jobs.status(submission.job_id)
    assert view is not None and view.status == "failed"
    assert view.result is not None
    assert view.result.failure is not None and view.result.failure.category == "timeout"
    assert view.result.error_message == "Lilith frowns: something went wrong."
    # A second pass finds nothing more to do.
    assert (
        await record_abandoned_jobs(jobs.saq, ResultLog(jobs.saq.redis), _signer(), generator) == 0
    )


def _signer() -> PayloadSigner:
    return PayloadSigner(SIGNING_KEY)


def _generator_for(app: Application) -> Generator:
    assert app.personalities is not None
    defaults = ModelDefaults("openai/fake", None, None)
    return Generator(app.personalities, LiteLLMProvider(), NoHistory(), defaults)
