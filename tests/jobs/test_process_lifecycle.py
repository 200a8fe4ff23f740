"""The real process: killed mid-job, stopped with SIGTERM, restarted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.app import ApiClient, TzurotProcess, settings_env
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer


@pytest.fixture
def process_env(
    redis_server: RedisServer, fake_llm: FakeLLM, personalities_dir: Path
) -> dict[str, str]:
    return settings_env(redis_server.url, fake_llm.base_url, personalities_dir)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[TzurotProcess]]:
    started: list[TzurotProcess] = []
    yield started
    for process in started:
        process.ensure_stopped()


async def wait_for_calls(fake_llm: FakeLLM, count: int, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while len(fake_llm.chat_calls) < count:
            await asyncio.sleep(0.05)


async def test_a_process_killed_mid_job_completes_it_exactly_once_after_restart(
    process_env: dict[str, str],
    fake_llm: FakeLLM,
    processes: list[TzurotProcess],
    tmp_path: Path,
) -> None:
    fake_llm.latency = 3.0
    first = TzurotProcess(process_env, tmp_path / "first.log")
    processes.append(first)
    await first.start()
    api = ApiClient(first.base_url)
    try:
        _, accepted = await api.generate(message="survive this")
        await wait_for_calls(fake_llm, 1)
        first.kill()

        second = TzurotProcess(process_env, tmp_path / "second.log", port=first.port)
        processes.append(second)
        await second.start()
        done = await api.wait_done(accepted["jobId"], timeout=60)
        _, metrics = await api.request("GET", "/metrics")
    finally:
        await api.close()

    assert done["status"] == "completed"
    assert done["content"] == "reply to: Ana: survive this"
    assert metrics["queue"]["completed"] == 1
    assert metrics["queue"]["failed"] == 0
    assert len(fake_llm.chat_calls) == 2  # the killed attempt, then the one that finished


async def test_sigterm_lets_running_jobs_finish_then_exits_zero(
    process_env: dict[str, str],
    fake_llm: FakeLLM,
    processes: list[TzurotProcess],
    tmp_path: Path,
) -> None:
    fake_llm.latency = 2.0
    process = TzurotProcess(process_env, tmp_path / "run.log")
    processes.append(process)
    await process.start()
    api = ApiClient(process.base_url)
    try:
        _, accepted = await api.generate(message="finish me")
        await wait_for_calls(fake_llm, 1)
        code = await process.terminate()
        assert code == 0, process.logs()[-3000:]

        restarted = TzurotProcess(process_env, tmp_path / "again.log", port=process.port)
        processes.append(restarted)
        await restarted.start()
        _, view = await api.request("GET", f"/ai/jobs/{accepted['jobId']}")
    finally:
        await api.close()

    assert view["status"] == "completed"
    assert len(fake_llm.chat_calls) == 1  # it finished during the grace period


async def test_a_job_longer_than_the_grace_period_is_left_queued_for_the_next_start(
    process_env: dict[str, str],
    fake_llm: FakeLLM,
    processes: list[TzurotProcess],
    tmp_path: Path,
) -> None:
    fake_llm.latency = 4.0
    env = {**process_env, "SHUTDOWN_GRACE_PERIOD": "0.5"}
    process = TzurotProcess(env, tmp_path / "run.log")
    processes.append(process)
    await process.start()
    api = ApiClient(process.base_url)
    try:
        _, accepted = await api.generate(message="too slow")
        await wait_for_calls(fake_llm, 1)
        assert await process.terminate() == 0

        fake_llm.latency = 0.0
        restarted = TzurotProcess(env, tmp_path / "again.log", port=process.port)
        processes.append(restarted)
        await restarted.start()
        done = await api.wait_done(accepted["jobId"], timeout=30)
    finally:
        await api.close()

    assert done["status"] == "completed"
    assert done["content"] == "reply to: Ana: too slow"


async def test_a_restarted_process_takes_its_own_jobs_back_at_once(
    process_env: dict[str, str],
    fake_llm: FakeLLM,
    processes: list[TzurotProcess],
    tmp_path: Path,
) -> None:
    fake_llm.latency = 2.0
    first = TzurotProcess({**process_env, "PROCESS_NAME": "box-1"}, tmp_path / "first.log")
    processes.append(first)
    await first.start()
    api = ApiClient(first.base_url)
    try:
        _, accepted = await api.generate(message="pick me up")
        await wait_for_calls(fake_llm, 1)
        first.kill()
        again = TzurotProcess(first.env, tmp_path / "again.log", port=first.port)
        processes.append(again)
        await again.start()
        restarted = asyncio.get_running_loop().time()
        done = await api.wait_done(accepted["jobId"], timeout=60)
        took = asyncio.get_running_loop().time() - restarted
    finally:
        await api.close()

    assert done["status"] == "completed"
    assert len(fake_llm.chat_calls) == 2
    # Not after its heartbeat went stale (15 s) and a sweep noticed: at once, by itself.
    assert took < 10, took
    assert "took back this process's unfinished jobs" in again.logs()


async def test_a_killed_worker_process_hands_its_jobs_to_another_within_30_seconds(
    process_env: dict[str, str],
    fake_llm: FakeLLM,
    processes: list[TzurotProcess],
    tmp_path: Path,
) -> None:
    fake_llm.latency = 3.0
    front = TzurotProcess({**process_env, "COMPONENTS": "api"}, tmp_path / "api.log")
    workers = [
        TzurotProcess(
            {**process_env, "COMPONENTS": "worker", "WORKER_CONCURRENCY": "3",
             "PROCESS_NAME": f"worker-{n}"},
            tmp_path / f"worker-{n}.log",
        )
        for n in (1, 2)
    ]  # fmt: skip
    processes.extend([front, *workers])
    await front.start()
    for worker in workers:
        await worker.start(wait_for_health=False)
    api = ApiClient(front.base_url)
    try:
        job_ids = []
        for n in range(6):
            _, accepted = await api.generate(message=f"job {n}")
            job_ids.append(accepted["jobId"])
        await wait_for_calls(fake_llm, 6)
        workers[0].kill()
        killed = asyncio.get_running_loop().time()
        done = [await api.wait_done(job_id, timeout=60) for job_id in job_ids]
        took = asyncio.get_running_loop().time() - killed
    finally:
        await api.close()

    assert [d["status"] for d in done] == ["completed"] * 6
    assert sorted(d["content"] for d in done) == sorted(f"reply to: Ana: job {n}" for n in range(6))
    assert took < 30, took
    assert 6 < len(fake_llm.chat_calls) <= 9  # the killed worker's calls were made again
