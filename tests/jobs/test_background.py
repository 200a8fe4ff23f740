"""Background jobs (image-, audio-, memory-) on their own queue, with a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
from redis.asyncio import Redis

from tzurot.jobs.background import (
    BACKGROUND_QUEUE_NAME,
    BackgroundFailed,
    BackgroundJobs,
    TaskHandler,
    TaskRun,
    TaskSpec,
    build_background_worker,
)
from tzurot.jobs.constants import JobPrefix
from tzurot.jobs.saq_queue import TzurotQueue
from tzurot.jobs.signing import PayloadSigner

SECRET = "background-test-signing-secret-0123456789"
SPEC = TaskSpec("echo", JobPrefix.MEMORY, timeout=10, runs=3, retry_delay=0.1, keep_seconds=60)

Start = Callable[[Mapping[str, TaskHandler]], Awaitable[BackgroundJobs]]


@pytest.fixture
async def start(redis_client: Redis) -> AsyncIterator[Start]:
    """Starts a background queue, its submitter and a worker with the given handlers."""
    running: list[tuple[BackgroundJobs, Any, asyncio.Task[None]]] = []

    async def begin(handlers: Mapping[str, TaskHandler]) -> BackgroundJobs:
        queue = TzurotQueue(redis_client, name=BACKGROUND_QUEUE_NAME)
        signer = PayloadSigner(SECRET)
        jobs = BackgroundJobs(queue, signer)
        await jobs.start()
        worker = build_background_worker(
            queue, handlers, signer, worker_id="test-worker", concurrency=4, grace_seconds=1
        )
        task = asyncio.create_task(worker.start())
        running.append((jobs, worker, task))
        return jobs

    yield begin
    for jobs, worker, task in running:
        await worker.drain()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        await jobs.stop()


async def test_a_job_runs_once_and_its_result_is_kept_for_the_next_asker(start: Start) -> None:
    calls: list[str] = []

    async def echo(payload: str, run: TaskRun) -> str:
        calls.append(payload)
        return payload.upper()

    jobs = await start({"echo": echo})

    first = await jobs.run(SPEC, "same-work", "hello", timeout=10)
    second = await jobs.run(SPEC, "same-work", "hello", timeout=10)

    assert first == second == "HELLO"
    assert calls == ["hello"]


async def test_a_failing_run_is_retried_and_the_last_run_knows_it_is_the_last(
    start: Start,
) -> None:
    runs: list[TaskRun] = []

    async def flaky(payload: str, run: TaskRun) -> str:
        runs.append(run)
        if len(runs) < 3:
            raise ConnectionError("provider down")
        return "landed"

    jobs = await start({"echo": flaky})

    assert await jobs.run(SPEC, "flaky", "x", timeout=20) == "landed"
    assert [(r.attempt, r.last) for r in runs] == [(1, False), (2, False), (3, True)]


async def test_a_job_that_always_fails_is_reported_and_keeps_no_secret(
    start: Start, redis_client: Redis
) -> None:
    async def broken(payload: str, run: TaskRun) -> str:
        raise RuntimeError("https://discord.com/api/webhooks/1/SECRET-TOKEN refused")

    jobs = await start({"echo": broken})

    with pytest.raises(BackgroundFailed):
        await jobs.run(SPEC, "broken", "x", timeout=20)
    job = await jobs.queue.job(f"{SPEC.prefix}broken")
    assert job is not None and job.attempts == SPEC.runs
    stored = b"".join(
        [v for k in await redis_client.keys("saq:*") if (v := await _dump(redis_client, k))]
    )
    assert b"SECRET-TOKEN" not in stored
    assert b"RuntimeError" in stored


async def test_a_failed_job_runs_again_when_asked_again(start: Start) -> None:
    outcomes = iter([RuntimeError("1"), RuntimeError("2"), RuntimeError("3"), "fine"])

    async def once_broken(payload: str, run: TaskRun) -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    jobs = await start({"echo": once_broken})
    with pytest.raises(BackgroundFailed):
        await jobs.run(SPEC, "again", "x", timeout=20)

    assert await jobs.run(SPEC, "again", "x", timeout=20) == "fine"


async def test_a_payload_that_was_tampered_with_is_not_run(
    start: Start, redis_client: Redis
) -> None:
    calls: list[str] = []

    async def echo(payload: str, run: TaskRun) -> str:
        calls.append(payload)
        return payload

    jobs = await start({"echo": echo})
    forged = BackgroundJobs(TzurotQueue(redis_client, name=BACKGROUND_QUEUE_NAME),
                            PayloadSigner("another-secret-entirely-0123456789abcdef"))  # fmt: skip
    await forged.submit(SPEC, "forged", "rm -rf /")

    assert await jobs.run(SPEC, "forged", "rm -rf /", timeout=10) is None
    assert calls == []


async def _dump(redis: Redis, key: bytes) -> bytes | None:
    kind = await redis.type(key)
    if kind == b"string":
        value = await redis.get(key)
        return value if isinstance(value, bytes) else None
    if kind == b"list":
        return b"".join(await redis.lrange(key, 0, -1))
    return None
