"""Two separate OS processes on one Redis run the same every-second cron task: each tick once.

tests/jobs/test_cron.py shows it for two Applications in one event loop; here they are two
`python -m tests.fixtures.cron_child` processes, each with its own clock reads, connections and
SAQ worker, as in a deployment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.app import PROJECT_ROOT, settings_env
from tests.fixtures.cron_child import STARTED
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer
from tzurot.jobs.constants import QUEUE_NAME

pytestmark = pytest.mark.timeout(90)

COUNTS = "test:cron-counts"  # the test's own hash, outside the program's key families
RUN_SECONDS = 6.0


class CronChild:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.fixtures.cron_child"],
                cwd=PROJECT_ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def started(self) -> bool:
        return STARTED in self.logs()

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"cron child exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")

    async def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, timeout)

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def children(
    redis_server: RedisServer, fake_llm: FakeLLM, personalities_dir: Path, tmp_path: Path
) -> Iterator[list[CronChild]]:
    made = []
    for name in ("cron-a", "cron-b"):
        env = settings_env(
            redis_server.url,
            fake_llm.base_url,
            personalities_dir,
            COMPONENTS="worker",
            PROCESS_NAME=name,
            CRON_COUNTS=COUNTS,
            LOG_FORMAT="json",
        )
        made.append(CronChild(env, tmp_path / f"{name}.log"))
    try:
        yield made
    finally:
        for child in made:
            child.ensure_stopped()


async def test_two_os_processes_run_each_tick_of_a_cron_task_once(
    children: list[CronChild], redis_server: RedisServer
) -> None:
    client = redis_server.client()
    for child in children:
        child.start()
    async with asyncio.timeout(30):
        while not all(child.started for child in children):
            for child in children:
                child.check_alive()
            await asyncio.sleep(0.1)

    started = time.monotonic()
    workers: set[str] = set()
    while time.monotonic() - started < RUN_SECONDS:
        # Both SAQ workers are live at once (each writes its worker info every few seconds).
        workers |= {m.decode() for m in client.zrange(f"saq:{QUEUE_NAME}:stats", 0, -1)}
        for child in children:
            child.check_alive()
        await asyncio.sleep(0.25)
    codes = await asyncio.gather(*(child.terminate() for child in children))

    runs = {int(tick): int(n) for tick, n in client.hgetall(COUNTS).items()}
    client.close()
    assert codes == [0, 0], [child.logs()[-2000:] for child in children]
    assert {w.rsplit(":", 1)[-1] for w in workers} >= {"cron-a", "cron-b"}, workers
    assert len(runs) >= 3, runs
    twice = {tick: n for tick, n in runs.items() if n != 1}
    assert not twice, f"ticks run more than once: {twice} (all: {runs})"
