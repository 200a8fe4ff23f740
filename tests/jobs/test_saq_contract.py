"""Every SAQ internal our code relies on, pinned, so that a SAQ upgrade fails here, loudly.

tzurot/jobs/saq_queue.py (TzurotQueue) overrides SAQ's sweep and reads private attributes of
RedisQueue; tzurot/jobs/worker.py builds SAQ's Worker with keyword arguments and class
attributes that SAQ reads at start; tzurot/jobs/queue.py relies on SAQ applying Job.ttl as the
job key's expiry, which is what keeps SAQ's keys bounded. When a test here fails after an
upgrade, re-review those modules against the new SAQ before changing the pins.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib.metadata
import inspect
import re
import signal
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import saq
from redis.asyncio import Redis
from saq import CronJob, Job, Status, Worker
from saq.job import TERMINAL_STATUSES
from saq.queue.redis import RedisQueue

from tests.fixtures.app import PROJECT_ROOT
from tests.fixtures.redis_server import RedisServer
from tzurot.infra.keys import family_of
from tzurot.jobs import (
    QUEUE_NAME,
    CronTask,
    GenerationJob,
    InProcessWorker,
    JobMetrics,
    JobOptions,
    PayloadSigner,
    ResultLog,
    TzurotQueue,
    build_worker,
    saq_cron_jobs,
)
from tzurot.jobs.queue import _STATE
from tzurot.jobs.worker import DEQUEUE_TIMEOUT_SECONDS

pytestmark = pytest.mark.timeout(60)

REVIEW = (
    "SAQ changed {what}: re-review tzurot/jobs/saq_queue.py (TzurotQueue.sweep, _sweep_job, "
    "recover_own, enqueue_claimed, _finish, notify) and tzurot/jobs/worker.py against the new "
    "SAQ, then update the pin in tests/jobs/test_saq_contract.py"
)
# sha256 of inspect.getsource() of the SAQ methods TzurotQueue re-implements, saq 0.26.4.
REIMPLEMENTED_SHA256 = {
    "_finish": "3e7c6df61b6b7cf947614e22958a2488d2ab4f99864ad7e71124bce192761ff8",
    "_enqueue": "d679d338ffa377648a67e1fe0a971222f15bdfe3b352110ebb54e82aed361e9d",
    "notify": "6c0156cbc155bb2ddf618e8803552b19b9c2b610b5b1ed035d41957001cefd86",
}
# sha256 of inspect.getsource(saq.queue.redis.RedisQueue.sweep), saq 0.26.4.
SWEEP_SOURCE_SHA256 = "3777246cdb502e29e4fef86aabd0155ebee5e32ee981962613514d675b918f3a"
# sha256 of the cleanup Lua script in that method, each line stripped.
CLEANUP_LUA_SHA256 = "1ac1512bc20e815420a279a9932909cd39e689de4a1003f648833872bf3d60b1"


def _pinned_saq_version() -> str:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    (pin,) = [d for d in project["dependencies"] if re.match(r"saq\s*==", d)]
    return pin.split("==", 1)[1].strip()


def test_installed_saq_is_the_pinned_version() -> None:
    pinned = _pinned_saq_version()
    assert importlib.metadata.version("saq") == pinned
    assert saq.__version__ == pinned


# -- RedisQueue's private parts TzurotQueue uses --------------------------------------------


def _queue() -> TzurotQueue:
    # A client that never connects: constructing it opens nothing.
    return TzurotQueue(Redis(host="127.0.0.1", port=1), name=QUEUE_NAME)


def test_redis_queue_private_keys_are_the_ones_the_registry_lists() -> None:
    queue = _queue()
    expected = {
        "_active": f"saq:{QUEUE_NAME}:active",
        "_incomplete": f"saq:{QUEUE_NAME}:incomplete",
        "_sweep": f"saq:{QUEUE_NAME}:sweep",
        "_queued": f"saq:{QUEUE_NAME}:queued",
        "_schedule": f"saq:{QUEUE_NAME}:schedule",
        "_stats": f"saq:{QUEUE_NAME}:stats",
    }
    for attribute, key in expected.items():
        value = getattr(queue, attribute)
        assert isinstance(value, str) and value == key, (attribute, value)
        assert family_of(value) is not None, value
    assert queue.job_id("llm-x") == f"saq:job:{QUEUE_NAME}:llm-x"
    assert family_of(queue.job_id("llm-x")) is not None
    assert family_of(Job("f", key="llm-x").abort_id) is not None
    assert hasattr(queue, "_cleanup_script") and queue._cleanup_script is None
    assert isinstance(queue.redis, Redis)
    assert isinstance(queue.swept_error_message, str)


def _params(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


P, K = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
VAR_K, E = inspect.Parameter.VAR_KEYWORD, inspect.Parameter.empty


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("abort", [("self", P, E), ("job", P, E), ("error", P, E), ("ttl", P, 5)]),
        ("retry", [("self", P, E), ("job", P, E), ("error", P, E)]),
        (
            "finish",
            [
                ("self", P, E),
                ("job", P, E),
                ("status", P, E),
                ("result", K, None),
                ("error", K, None),
                ("kwargs", VAR_K, E),
            ],
        ),
        ("job", [("self", P, E), ("job_key", P, E)]),
        ("deserialize", [("self", P, E), ("payload", P, E), ("status", P, None)]),
        ("sweep", [("self", P, E), ("lock", P, 60), ("abort", P, 5.0)]),
        ("enqueue", [("self", P, E), ("job_or_func", P, E), ("kwargs", VAR_K, E)]),
        ("info", [("self", P, E), ("jobs", P, False), ("offset", P, 0), ("limit", P, 10)]),
    ],
)
def test_redis_queue_methods_we_call_keep_their_signatures(
    name: str, expected: list[tuple[str, Any, Any]]
) -> None:
    method = getattr(RedisQueue, name)
    assert _params(method) == expected, REVIEW.format(what=f"{name}()")
    assert inspect.iscoroutinefunction(method) == (name != "deserialize"), name


def test_our_sweep_overrides_saq_sweep_with_the_same_signature() -> None:
    assert TzurotQueue.sweep is not RedisQueue.sweep
    assert _params(TzurotQueue.sweep) == _params(RedisQueue.sweep)
    assert "_sweep_job" not in vars(RedisQueue), "SAQ now has a _sweep_job of its own"


def _lua(source: str) -> str:
    (script,) = re.findall(r'"""(.*?)"""', source, re.S)
    return "\n".join(line.strip() for line in script.strip().splitlines())


def test_saq_sweep_source_is_the_one_we_reimplemented() -> None:
    source = inspect.getsource(RedisQueue.sweep)
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == SWEEP_SOURCE_SHA256, REVIEW.format(what="RedisQueue.sweep") + f" ({digest})"


@pytest.mark.parametrize("name", sorted(REIMPLEMENTED_SHA256))
def test_the_saq_methods_we_reimplement_are_the_ones_we_read(name: str) -> None:
    source = inspect.getsource(getattr(RedisQueue, name))
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == REIMPLEMENTED_SHA256[name], (
        REVIEW.format(what=f"RedisQueue.{name}") + f" ({digest})"
    )


def test_our_enqueue_script_ends_with_saq_s_own() -> None:
    from tzurot.jobs.saq_queue import _ENQUEUE_CLAIMED

    theirs = _lua(inspect.getsource(RedisQueue._enqueue))
    for call in ("ZSCORE", "EXISTS", "'SET', KEYS[2]", "'ZADD', KEYS[1]", "RPUSH"):
        assert call.split(",")[0] in theirs
    for call in ("ZSCORE", "EXISTS", "'SET', job", "'ZADD', incomplete", "'RPUSH', queued"):
        assert call in _ENQUEUE_CLAIMED


def test_our_cleanup_script_is_saq_s_own() -> None:
    theirs = _lua(inspect.getsource(RedisQueue.sweep))
    digest = hashlib.sha256(theirs.encode()).hexdigest()
    assert digest == CLEANUP_LUA_SHA256, (
        REVIEW.format(what="the sweep's Lua script") + f" ({digest})"
    )
    assert _lua(inspect.getsource(TzurotQueue.sweep)) == theirs, (
        "TzurotQueue.sweep's cleanup script no longer matches SAQ's"
    )


def test_statuses_and_job_fields_we_read() -> None:
    assert set(_STATE) == set(Status), "a SAQ status tzurot/jobs/queue.py does not map"
    assert {Status.COMPLETE, Status.FAILED, Status.ABORTED} == TERMINAL_STATUSES
    fields = {f.name: f for f in dataclasses.fields(Job)}
    for name in ("worker_id", "meta", "ttl", "key", "kwargs", "attempts", "progress",
                 "scheduled", "status", "timeout", "heartbeat", "retries"):  # fmt: skip
        assert name in fields, name
    assert fields["worker_id"].default is None
    assert fields["meta"].default_factory is dict  # type: ignore[comparison-overlap]
    assert isinstance(Job.stuck, property) and isinstance(Job.retryable, property)
    assert _params(Job.info) == [("self", P, E), ("full", P, False)]
    assert _params(Job.update) == [("self", P, E), ("kwargs", VAR_K, E)]
    cron = {f.name for f in dataclasses.fields(CronJob)}
    assert {"function", "cron", "unique", "timeout"} <= cron


# -- the Worker --------------------------------------------------------------------------


def test_saq_worker_accepts_the_keyword_arguments_we_pass() -> None:
    parameters = inspect.signature(Worker.__init__).parameters
    for name in ("functions", "id", "concurrency", "cron_jobs", "after_process", "timers",
                 "dequeue_timeout", "shutdown_grace_period_s"):  # fmt: skip
        assert name in parameters, REVIEW.format(what=f"Worker(..., {name}=)")

    worker = _build(_queue(), concurrency=7, grace=12.4)
    assert worker.id == "contract-worker"
    assert worker.concurrency == 7
    assert worker.dequeue_timeout == DEQUEUE_TIMEOUT_SECONDS
    assert worker._shutdown_grace_period_s == 12
    assert worker.after_process is not None and len(worker.after_process) == 1
    # Every timer SAQ has is one we set (a new one would run at SAQ's default).
    assert set(worker.timers) == {"sweep", "schedule", "abort", "worker_info"}
    assert worker.timers["sweep"] == 5
    assert set(worker.functions) == {"generate", "cron_probe"}  # cron jobs named by qualname
    assert isinstance(worker.job_task_contexts, dict) and worker.running_jobs == 0
    assert isinstance(Worker.SIGNALS, list) and signal.SIGTERM in Worker.SIGNALS
    assert InProcessWorker.SIGNALS == []


def _build(queue: TzurotQueue, *, concurrency: int = 2, grace: float = 1) -> InProcessWorker:
    async def probe_tick(tick: int) -> None:
        return None

    redis = queue.redis
    job = GenerationJob(
        handler=None,  # type: ignore[arg-type]  # generation is not run here
        signer=PayloadSigner("contract-signing-key-0123456789abcdef"),
        results=ResultLog(redis),
        options=JobOptions(attempts=1, attempt_timeout=5, job_timeout=10),
        metrics=JobMetrics(),
    )
    cron = saq_cron_jobs([CronTask("probe", "0 0 1 1 *", probe_tick)], redis)
    return build_worker(
        queue, job, worker_id="contract-worker", concurrency=concurrency,
        grace_seconds=grace, cron_jobs=cron,
    )  # fmt: skip


@pytest.fixture
async def queue(redis_server: RedisServer) -> AsyncIterator[TzurotQueue]:
    client = Redis.from_url(redis_server.url)
    queue = TzurotQueue(client, name=QUEUE_NAME)
    await queue.connect()
    yield queue
    await client.aclose()


@asynccontextmanager
async def running(worker: Worker[Any]) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.start())
    try:
        yield task
    finally:
        await worker.stop()
        async with asyncio.timeout(10):
            await task


def _handlers() -> tuple[dict[int, Any], dict[signal.Signals, Any]]:
    loop = asyncio.get_running_loop()
    in_loop = dict(getattr(loop, "_signal_handlers", {}))
    in_process = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)}
    return in_loop, in_process


async def _run_probe(
    queue: TzurotQueue, worker: Worker[Any], probe: Callable[..., Awaitable[Any]], **job: Any
) -> Job:
    """Enqueue a `probe` job, let `worker` run it, and return it as SAQ stored it at the end."""
    worker.functions["probe"] = probe
    enqueued = await queue.enqueue(Job(function="probe", **job))
    assert enqueued is not None
    async with asyncio.timeout(15):
        while True:
            stored = await queue.job(enqueued.key)
            if stored is not None and stored.status in TERMINAL_STATUSES:
                return stored
            await asyncio.sleep(0.05)


async def test_saq_reads_signals_at_start_and_ours_installs_none(queue: TzurotQueue) -> None:
    class Signalling(Worker[Any]):
        SIGNALS = [signal.SIGUSR2]  # noqa: RUF012

    async def probe(ctx: Any) -> None:
        return None

    before = _handlers()
    loud = Signalling(queue, functions=[("probe", probe)], dequeue_timeout=0.5)
    async with running(loud):
        await _run_probe(queue, loud, probe, key="signals-saq")
        in_loop, _ = _handlers()
        assert signal.SIGUSR2 in in_loop, "SAQ no longer installs Worker.SIGNALS at start"
    assert _handlers() == before

    ours = _build(queue)
    async with running(ours):
        await _run_probe(queue, ours, probe, key="signals-ours")
        assert _handlers() == before, "starting InProcessWorker installed a signal handler"
    assert _handlers() == before


async def test_saq_finish_applies_job_ttl_as_the_key_expiry(
    queue: TzurotQueue, redis_server: RedisServer
) -> None:
    seen: dict[str, Any] = {}

    async def probe(ctx: Any) -> None:
        job: Job = ctx["job"]
        worker = ctx["worker"]
        seen["worker_id"] = job.worker_id
        seen["running"] = job in worker.job_task_contexts and worker.running_jobs == 1
        seen["active"] = [m.decode() for m in await queue.redis.lrange(queue._active, 0, -1)]
        seen["stored_status"] = (await queue.job(job.key)).status  # type: ignore[union-attr]

    worker = _build(queue)
    async with running(worker):
        finished = await _run_probe(queue, worker, probe, key="contract-ttl", ttl=123)

    assert finished.status == Status.COMPLETE
    # The running job: its id in the active list (what recover_own reads), its worker's id
    # on it, marked active in Redis, and known to the worker (what drain counts).
    assert seen == {
        "worker_id": "contract-worker",
        "running": True,
        "active": [queue.job_id("contract-ttl")],
        "stored_status": Status.ACTIVE,
    }
    client = redis_server.client()
    ttl = client.pttl(queue.job_id("contract-ttl"))
    client.close()
    assert 110_000 <= ttl <= 123_000, f"SAQ's _finish no longer applies Job.ttl (PTTL {ttl})"


async def test_after_process_sees_the_finished_job(queue: TzurotQueue) -> None:
    """build_worker's after_process answers jobs that failed for good: it needs ctx['job']
    with its final status."""
    calls: list[Status] = []

    async def fails(ctx: Any) -> None:
        raise RuntimeError("boom")

    worker = _build(queue)
    original = worker.after_process
    assert original is not None

    async def spy(ctx: Any) -> None:
        calls.append(ctx["job"].status)

    worker.after_process = [spy, *original]
    async with running(worker):
        finished = await _run_probe(queue, worker, fails, key="contract-fails", retries=1)
    assert finished.status == Status.FAILED
    assert calls == [Status.FAILED]
