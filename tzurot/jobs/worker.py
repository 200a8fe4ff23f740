"""The in-process SAQ worker and the generation job it runs.

Retries are ours: SAQ's `retry_backoff` is full jitter, so a failed attempt sets the delay
itself (2 s, 4 s, ... or the provider's Retry-After, whichever is longer) before SAQ reschedules
it, and an error that must not be retried ends the job at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from saq import CronJob, Job, Status, Worker
from saq.queue.redis import RedisQueue
from saq.types import Context

from tzurot.ai.contracts import (
    GenerationFailure,
    GenerationRequest,
    GenerationResult,
    Progress,
)
from tzurot.ai.errors import ProviderError
from tzurot.jobs.constants import (
    BACKOFF_BASE_SECONDS,
    HEARTBEAT_EVERY_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    SWEEP_EVERY_SECONDS,
)
from tzurot.jobs.metrics import JobMetrics
from tzurot.jobs.models import GenerationHandler
from tzurot.jobs.queue import GENERATE_FUNCTION, JobOptions
from tzurot.jobs.results import ResultLog
from tzurot.jobs.signing import InvalidSignature, PayloadSigner
from tzurot.logs import get_logger, log_context

log = get_logger(__name__)


def retry_delay(failed_attempt: int, retry_after: float | None) -> float:
    """2 s after the first failed attempt, 4 s after the second, ...; Retry-After if longer."""
    delay = BACKOFF_BASE_SECONDS * 2.0 ** (failed_attempt - 1)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


class RetryLater(Exception):
    """Raised out of a job to make SAQ schedule the next attempt (delay already set)."""


class JobFailed(Exception):
    """Raised out of a job that failed for good, so SAQ records it as failed."""


class _QuietExpectedFailures(logging.Filter):
    """SAQ logs every exception out of a job with a traceback; ours are expected outcomes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], RetryLater | JobFailed):
            record.exc_info = None
            record.msg = "job attempt ended: %s"
            record.args = (record.args[0] if isinstance(record.args, tuple) else record.args,)
        return True


class GenerationJob:
    """The body of a `generate` job: verify, generate, record the result once."""

    def __init__(
        self,
        handler: GenerationHandler,
        signer: PayloadSigner,
        results: ResultLog,
        options: JobOptions,
        metrics: JobMetrics,
    ) -> None:
        self._handler = handler
        self._signer = signer
        self._results = results
        self._options = options
        self._metrics = metrics

    async def __call__(self, ctx: Context, *, payload: str, signature: str) -> Any:
        job = ctx["job"]
        with log_context(job_id=job.key, attempt=job.attempts):
            try:
                self._signer.verify(payload, signature)
                request = GenerationRequest.model_validate_json(payload)
            except (InvalidSignature, ValidationError) as exc:
                log.error("job rejected: payload not trusted", reason=type(exc).__name__)
                job.retries = job.attempts
                job.meta["failure"] = {"category": "invalid_job", "message": str(exc)[:200]}
                raise JobFailed("payload rejected") from None
            with log_context(
                request_id=request.request_id,
                personality=request.personality,
                channel_id=request.channel_id,
                user_id=request.user_id,
            ):
                result = await self._run(job, request)
                stored = await self._results.record(result)
                self._finished(stored)
                if stored.status == "failed":
                    job.retries = job.attempts
                    job.meta["failure"] = stored.failure.model_dump() if stored.failure else {}
                    raise JobFailed(stored.failure.category if stored.failure else "failed")
                return stored.model_dump(mode="json", include={"content", "status", "job_id"})

    async def _run(self, job: Job, request: GenerationRequest) -> GenerationResult:
        # Only a re-run (after a crash or a retry) can find a result already recorded.
        earlier = await self._results.get(job.key) if job.attempts > 1 else None
        if earlier is not None:
            log.info("job ran before this attempt finished; reusing its result")
            return earlier
        remaining = self._options.job_timeout - _age_seconds(request)
        if remaining <= 0:
            failure = GenerationFailure(category="timeout", message="the job ran out of time")
            return await self._fail(job, request, failure)

        async def progress(percent: int) -> None:
            # 100 % is written by SAQ when the job finishes. Passing the (unchanged) status
            # spares SAQ a read of the stored job before each write.
            if percent < Progress.DONE:
                await job.update(progress=percent / 100, status=Status.ACTIVE)

        started = time.monotonic()
        try:
            async with _heartbeat(job):
                result = await self._handler.generate(
                    request,
                    job_id=job.key,
                    attempt=job.attempts,
                    timeout=min(self._options.attempt_timeout, remaining),
                    progress=progress,
                )
        except ProviderError as error:
            self._metrics.llm_duration.labels(error.category).observe(time.monotonic() - started)
            failure = GenerationFailure(
                category=error.category, message=error.message, retryable=error.retryable
            )
            delay = retry_delay(job.attempts, error.retry_after)
            time_left = remaining - (time.monotonic() - started) - delay
            if error.retryable and job.attempts < job.retries and time_left > 0:
                log.warning(
                    "attempt failed; retrying", category=error.category, delay_s=round(delay, 2)
                )
                self._metrics.retried.labels(error.category).inc()
                job.retry_delay = delay
                job.retry_backoff = False
                raise RetryLater(f"{error.category}: retry in {delay:.1f}s") from None
            log.error("generation failed", category=error.category, reason=error.message)
            return await self._fail(job, request, failure)
        self._metrics.llm_duration.labels("ok").observe(time.monotonic() - started)
        return result

    async def _fail(
        self, job: Job, request: GenerationRequest, failure: GenerationFailure
    ) -> GenerationResult:
        return await self._handler.failed(
            request, job_id=job.key, attempts=job.attempts, failure=failure
        )

    def _finished(self, result: GenerationResult) -> None:
        self._metrics.finished.labels(result.status).inc()
        age = (result.finished_at - result.request.created_at).total_seconds()
        self._metrics.job_duration.labels(result.status).observe(max(age, 0.0))
        if result.failure is not None:
            log.warning(
                "generation finished with an error",
                category=result.failure.category,
                reference_id=result.failure.reference_id,
            )
        else:
            log.info("generation completed", attempts=result.attempts)


def _age_seconds(request: GenerationRequest) -> float:
    return (datetime.now(UTC) - request.created_at).total_seconds()


@contextlib.asynccontextmanager
async def _heartbeat(job: Job) -> AsyncIterator[None]:
    """Touch the job while it runs, so a sweep can tell a dead process from a slow model.

    The beat is stopped with an event, not cancelled, so a write in flight is never cut off.
    """
    done = asyncio.Event()

    async def beat() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEARTBEAT_EVERY_SECONDS):
                    await done.wait()
            if not done.is_set():
                with contextlib.suppress(Exception):
                    await job.update()

    task = asyncio.create_task(beat(), name=f"heartbeat:{job.key}")
    try:
        yield
    finally:
        done.set()
        _, pending = await asyncio.wait({task}, timeout=5)
        for stuck in pending:
            stuck.cancel()


class InProcessWorker(Worker[Context]):
    """A SAQ worker that lives inside our process: no signal handlers of its own, and a drain
    that stops taking work, lets running jobs finish within a grace period, and leaves the
    rest queued for the next start."""

    SIGNALS: list[signal.Signals] = []  # noqa: RUF012 (SAQ reads this class attribute)

    _upkeep_tasks: list[asyncio.Task[None]]

    async def upkeep(self) -> list[asyncio.Task[None]]:
        self._upkeep_tasks = await super().upkeep()
        return self._upkeep_tasks

    @property
    def running_jobs(self) -> int:
        return len(self.job_task_contexts)

    async def drain(self, grace_seconds: float) -> None:
        """Stop taking jobs; give running ones `grace_seconds`; cancel and requeue the rest."""
        for task in getattr(self, "_upkeep_tasks", []):
            task.cancel()
        if self.job_task_contexts:
            log.info("waiting for running jobs", jobs=self.running_jobs, grace_s=grace_seconds)
        # Idle slots return within the dequeue timeout; busy ones when their job is done.
        self._shutdown_grace_period_s = max(1, round(grace_seconds))
        await self.stop()


def build_worker(
    queue: RedisQueue,
    job: GenerationJob,
    *,
    concurrency: int,
    cron_jobs: Sequence[CronJob[Any]] = (),
) -> InProcessWorker:
    logging.getLogger("saq").addFilter(_QuietExpectedFailures())

    async def generate(ctx: Context, *, payload: str, signature: str) -> Any:
        return await job(ctx, payload=payload, signature=signature)

    return InProcessWorker(
        queue,
        functions=[(GENERATE_FUNCTION, generate)],
        concurrency=concurrency,
        cron_jobs=list(cron_jobs),
        timers={"sweep": SWEEP_EVERY_SECONDS, "schedule": 1, "abort": 5, "worker_info": 5},
        dequeue_timeout=2.0,
    )
