"""Background jobs: image descriptions, audio transcripts and memory writes, on their own queue.

They run on a second SAQ queue (`tzurot-background`) with slots of their own, so a burst of
replies can never starve them, and a generation that waits for an image's description (its
`image-` child job) never waits behind other generations for a slot.

Every job is signed like a generation's (a worker runs only what this program enqueued) and has
a key made of its prefix and a stable suffix (`image-{digest of the URL}`, `memory-{job id}`), so
a second submit of the same work joins the first instead of doing it twice. A failing run is
retried by SAQ after a fixed delay (never SAQ's full-jitter backoff, whose first retry may come
at once); the handler is told when a run is its last, so it can park what must not be lost.
What a handler raises reaches SAQ's log only as a short message naming the error's type: never
its text, which may carry a URL with a token or a provider's echo of a key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from saq import Job, Status
from saq.types import Context

from tzurot.infra.keys import DONE_CHANNEL
from tzurot.jobs.constants import HEARTBEAT_TIMEOUT_SECONDS, JobPrefix
from tzurot.jobs.saq_queue import TzurotQueue
from tzurot.jobs.signing import InvalidSignature, PayloadSigner
from tzurot.jobs.waiter import CompletionWaiter
from tzurot.jobs.worker import InProcessWorker, job_heartbeat
from tzurot.logs import get_logger, log_context

log = get_logger(__name__)

BACKGROUND_QUEUE_NAME = "tzurot-background"
# How often a waiter re-reads a job in case its announcement was missed.
_RECHECK_SECONDS = 0.5


@dataclass(frozen=True)
class TaskSpec:
    """One kind of background job."""

    function: str  # the handler's name on the worker
    prefix: JobPrefix
    timeout: int  # seconds per run
    runs: int = 3  # SAQ retries: runs in all
    retry_delay: float = 2.0  # seconds between runs (fixed)
    keep_seconds: int = 3600  # how long the finished job (and its result) is kept


@dataclass(frozen=True)
class TaskRun:
    """What a handler knows about its run."""

    key: str
    attempt: int
    last: bool  # no run follows this one if it fails


TaskHandler = Callable[[str, TaskRun], Awaitable[str | None]]


class BackgroundFailed(Exception):
    """A background job failed for good (or did not finish in time)."""


class _RunFailed(Exception):
    """What SAQ records of a failed run: the error's type, never its text."""


class BackgroundJobs:
    """Submit background jobs, and wait for one's result."""

    def __init__(self, queue: TzurotQueue, signer: PayloadSigner) -> None:
        self.queue = queue
        self._signer = signer
        self._waiter = CompletionWaiter(queue.redis)
        self._started = False

    async def start(self) -> None:
        await self.queue.connect()
        await self._waiter.start()
        self._started = True

    async def stop(self) -> None:
        if self._started:
            await self._waiter.stop()
            self._started = False

    async def submit(self, spec: TaskSpec, suffix: str, payload: str) -> str:
        """Enqueue the job `{prefix}{suffix}` unless it is already queued or running. Returns
        its key. (A finished job with this key is kept `keep_seconds`; until it expires, a new
        submit is a no-op and `result()` answers from it.)"""
        key = f"{spec.prefix}{suffix}"
        await self.queue.enqueue(
            Job(
                function=spec.function,
                kwargs={"payload": payload, "signature": self._signer.sign(payload)},
                key=key,
                timeout=spec.timeout,
                heartbeat=HEARTBEAT_TIMEOUT_SECONDS,
                retries=spec.runs,
                retry_delay=spec.retry_delay,
                retry_backoff=False,
                ttl=spec.keep_seconds,
            )
        )
        return key

    async def run(self, spec: TaskSpec, suffix: str, payload: str, timeout: float) -> str | None:
        """Submit (or join) the job and wait for its result. Raises `BackgroundFailed`."""
        key = f"{spec.prefix}{suffix}"
        async with self._waiter.watch(key) as finished:
            earlier = await self.queue.job(key)
            # A job that failed before is not the answer to this request: it runs again.
            if earlier is None or earlier.status in {Status.FAILED, Status.ABORTED}:
                await self.submit(spec, suffix, payload)
            deadline = time.monotonic() + timeout
            while True:
                job = await self.queue.job(key)
                if job is None:
                    raise BackgroundFailed(f"{key} vanished")
                if job.status == Status.COMPLETE:
                    return None if job.result is None else str(job.result)
                if job.status in {Status.FAILED, Status.ABORTED}:
                    raise BackgroundFailed(f"{key} failed")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BackgroundFailed(f"{key} did not finish in {timeout:g} s")
                try:
                    async with asyncio.timeout(min(remaining, _RECHECK_SECONDS)):
                        await finished.wait()
                except TimeoutError:
                    pass
                finished.clear()


def build_background_worker(
    queue: TzurotQueue,
    handlers: Mapping[str, TaskHandler],
    signer: PayloadSigner,
    *,
    worker_id: str,
    concurrency: int,
    grace_seconds: float,
) -> InProcessWorker:
    redis = queue.redis

    def wrap(name: str, handler: TaskHandler) -> Callable[..., Awaitable[str | None]]:
        async def run(ctx: Context, *, payload: str, signature: str) -> str | None:
            job: Job = ctx["job"]
            with log_context(job_id=job.key, run=job.attempts):
                try:
                    signer.verify(payload, signature)
                except InvalidSignature:
                    log.error("background job rejected: payload not trusted")
                    return None
                this_run = TaskRun(job.key, job.attempts, last=job.attempts >= job.retries)
                try:
                    async with job_heartbeat(job):
                        return await handler(payload, this_run)
                except Exception as error:
                    log.warning("background job failed", error=type(error).__name__,
                                last_run=this_run.last)  # fmt: skip
                    raise _RunFailed(type(error).__name__) from None

        run.__qualname__ = run.__name__ = name
        return run

    async def announce(ctx: Context) -> None:
        finished: Job | None = ctx.get("job")
        if finished is not None and finished.status in {Status.COMPLETE, Status.FAILED}:
            await redis.publish(DONE_CHANNEL.key(), finished.key)

    return InProcessWorker(
        queue,
        functions=[(name, wrap(name, handler)) for name, handler in handlers.items()],
        id=worker_id,
        concurrency=concurrency,
        after_process=announce,
        timers={"sweep": 5, "schedule": 1, "abort": 5, "worker_info": 5},
        dequeue_timeout=5.0,
        shutdown_grace_period_s=max(1, round(grace_seconds)),
    )
