"""The in-process SAQ worker and the generation job it runs.

A model call that fails is retried inside the job, the way the seed's `withRetry` does it: 2 s
after the first failure, 4 s after the second, or the provider's Retry-After when that is longer,
within the job's deadline; an error that must not be retried ends the job at once. SAQ's own
retries only serve crash recovery (a run whose process died is taken up by another run), so
its full-jitter backoff never applies and no SAQ job object is steered from inside a job.

Every job ends with a recorded result, also when something unexpected happens: a run that fails
for good (a bug), a job swept after its last run died, and a payload that fails verification
(announced without a result) all tell delivery so that nobody waits in vain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from saq import CronJob, Job, Status, Worker
from saq.types import Context

from tzurot.ai.contracts import (
    Delivery,
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
from tzurot.jobs.saq_queue import TzurotQueue
from tzurot.jobs.signing import InvalidSignature, PayloadSigner
from tzurot.logs import get_logger, log_context

log = get_logger(__name__)

# How long an idle worker slot blocks on the queue before looking again.
DEQUEUE_TIMEOUT_SECONDS = 5.0
# A job's progress is written this long after it changes (a quick job never writes it).
PROGRESS_DELAY_SECONDS = 1.0


def retry_delay(failed_attempt: int, retry_after: float | None) -> float:
    """2 s after the first failed attempt, 4 s after the second, ...; Retry-After if longer."""
    delay = BACKOFF_BASE_SECONDS * 2.0 ** (failed_attempt - 1)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


class GenerationJob:
    """The body of a `generate` job: verify, generate (retrying), record the result once."""

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

    async def __call__(self, ctx: Context, *, payload: str, signature: str) -> None:
        job: Job = ctx["job"]
        with log_context(job_id=job.key, run=job.attempts):
            request = await self._trusted_request(job, payload, signature)
            if request is None:
                return
            with log_context(
                request_id=request.request_id,
                personality=request.personality_slug,
                channel_id=request.channel_id,
                user_id=request.user_id,
            ):
                result = await self._run(job, request)
                self._finished(await self._results.record(result))
        # The outcome lives in the result record; SAQ keeps no copy of the reply.

    async def _trusted_request(
        self, job: Job, payload: str, signature: str
    ) -> GenerationRequest | None:
        """The request, or None when the payload is refused: then the job ends (never retried)
        with the refusal in its metadata, and delivery hears of it, so the channel's next
        replies do not wait for it."""
        try:
            self._signer.verify(payload, signature)
            return GenerationRequest.model_validate_json(payload)
        except (InvalidSignature, ValidationError) as exc:
            log.error("job rejected: payload not trusted", reason=type(exc).__name__)
            failure = {"category": "invalid_job", "message": "the job's payload was refused"}
            await job.update(meta={**job.meta, "failure": failure}, status=Status.ACTIVE)
            await self._results.announce_without_result(job.key, _lane_hint(payload))
            return None

    async def _run(self, job: Job, request: GenerationRequest) -> GenerationResult:
        # Only a re-run (after a crash) can find a result already recorded.
        earlier = await self._results.get(job.key) if job.attempts > 1 else None
        if earlier is not None:
            log.info("job ran before this run finished; reusing its result")
            return earlier
        deadline = time.monotonic() + self._options.job_timeout - _age_seconds(request)
        calls = int(job.meta.get("model_calls", 0))  # made by runs that died
        async with _heartbeat(job) as beat:
            while True:
                calls += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or calls > self._options.attempts:
                    # Out of time, or out of attempts spent by runs that died mid-call.
                    failure = GenerationFailure(
                        category="timeout", message="the generation ran out of time"
                    )
                    return await self._fail(job, request, failure, calls - 1)
                started = time.monotonic()
                try:
                    result = await self._handler.generate(
                        request,
                        job_id=job.key,
                        attempt=calls,
                        timeout=min(self._options.attempt_timeout, remaining),
                        progress=beat.progress,
                    )
                except ProviderError as error:
                    elapsed = time.monotonic() - started
                    self._metrics.llm_duration.labels(error.category).observe(elapsed)
                    delay = retry_delay(calls, error.retry_after)
                    retry = (
                        error.retryable
                        and calls < self._options.attempts
                        and deadline - time.monotonic() - delay > 0
                    )
                    if not retry:
                        log.error(
                            "generation failed", category=error.category, reason=error.message
                        )
                        failure = GenerationFailure(
                            category=error.category,
                            message=error.message,
                            retryable=error.retryable,
                        )
                        return await self._fail(job, request, failure, calls)
                    log.warning("model call failed; retrying", category=error.category,
                                delay_s=round(delay, 2), attempt=calls)  # fmt: skip
                    self._metrics.retried.labels(error.category).inc()
                    await beat.remember(model_calls=calls)
                    await asyncio.sleep(delay)
                    continue
                self._metrics.llm_duration.labels("ok").observe(time.monotonic() - started)
                return result

    async def _fail(
        self, job: Job, request: GenerationRequest, failure: GenerationFailure, attempts: int
    ) -> GenerationResult:
        return await self._handler.failed(
            request, job_id=job.key, attempts=max(attempts, 1), failure=failure
        )

    def _finished(self, result: GenerationResult) -> None:
        self._metrics.finished.labels(result.status).inc()
        age = (result.finished_at - result.request.created_at).total_seconds()
        self._metrics.job_duration.labels(result.status).observe(max(age, 0.0))
        if result.failure is not None:
            self._metrics.failures.labels(result.failure.category).inc()
            log.warning(
                "generation finished with an error",
                category=result.failure.category,
                reference_id=result.failure.reference_id,
            )
        else:
            log.info("generation completed", attempts=result.attempts)

    async def abandoned(self, job: Job) -> None:
        """A job that SAQ ended without our result (it failed for good, or its last run died):
        record a failure for it, so the user is told and its channel moves on."""
        if not job.key.startswith(tuple(_OWN_PREFIXES)):
            return
        if await self._results.get(job.key) is not None:
            return
        kwargs = job.kwargs or {}
        payload, signature = str(kwargs.get("payload", "")), str(kwargs.get("signature", ""))
        try:
            self._signer.verify(payload, signature)
            request = GenerationRequest.model_validate_json(payload)
        except (InvalidSignature, ValidationError):
            return  # refused payloads were announced when they were refused
        failure = GenerationFailure(
            category="timeout", message="the generation stopped before it could finish"
        )
        result = await self._handler.failed(
            request, job_id=job.key, attempts=max(job.attempts, 1), failure=failure
        )
        self._finished(await self._results.record(result))
        log.warning("abandoned job answered with a failure", job_id=job.key,
                    reference_id=failure.reference_id, saq_status=job.status.value)  # fmt: skip


_OWN_PREFIXES = ("llm-",)


def _lane_hint(payload: str) -> str | None:
    """Where a refused job would have been delivered, so that lane does not wait for it. Only
    used to move that lane on: nothing is posted from an untrusted payload."""
    try:
        raw = json.loads(payload)
        return Delivery.model_validate(raw["delivery"]).lane
    except (ValueError, KeyError, TypeError, ValidationError):
        return None


def _age_seconds(request: GenerationRequest) -> float:
    return max((datetime.now(UTC) - request.created_at).total_seconds(), 0.0)


class _Beat:
    """What the heartbeat writes with its next touch of the job."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self._progress = 0.0
        self._meta: dict[str, Any] = {}
        self.changed = asyncio.Event()

    async def progress(self, percent: int) -> None:
        # Written a moment later by the heartbeat, not at once: a quick generation is done
        # before then and costs no write at all; a slow one shows its progress within a second.
        if percent < Progress.DONE and percent / 100 != self._progress:
            self._progress = percent / 100
            self.changed.set()

    async def remember(self, **meta: Any) -> None:
        self._meta.update(meta)
        await self.touch()

    async def touch(self) -> None:
        self.changed.clear()
        # Passing the (unchanged) status spares SAQ a read of the stored job.
        await self._job.update(
            progress=self._progress, meta={**self._job.meta, **self._meta}, status=Status.ACTIVE
        )


@contextlib.asynccontextmanager
async def _heartbeat(job: Job) -> AsyncIterator[_Beat]:
    """Touch the job while it runs, so a sweep can tell a dead process from a slow model.

    The beat is stopped with an event, not cancelled, so a write in flight is never cut off.
    """
    beat = _Beat(job)
    done = asyncio.Event()

    async def keep_beating() -> None:
        while not done.is_set():
            await _any_of(done, beat.changed, timeout=HEARTBEAT_EVERY_SECONDS)
            if beat.changed.is_set():  # progress: written a moment later, unless done by then
                await _any_of(done, timeout=PROGRESS_DELAY_SECONDS)
            if done.is_set():
                return
            with contextlib.suppress(Exception):
                await beat.touch()

    task = asyncio.create_task(keep_beating(), name=f"heartbeat:{job.key}")
    try:
        yield beat
    finally:
        done.set()
        _, pending = await asyncio.wait({task}, timeout=5)
        for stuck in pending:
            stuck.cancel()


# Background jobs (tzurot/jobs/background.py) beat the same way.
job_heartbeat = _heartbeat


async def _any_of(*events: asyncio.Event, timeout: float) -> None:
    """Until one of `events` is set, or `timeout` seconds."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


class InProcessWorker(Worker[Context]):
    """A SAQ worker inside our process: no signal handlers of its own (the application owns
    SIGTERM), a stable id (the process's name), and a drain that stops taking work, lets
    running jobs finish within the grace period and leaves the rest queued."""

    SIGNALS: list[signal.Signals] = []  # noqa: RUF012 (SAQ reads this class attribute)

    @property
    def running_jobs(self) -> int:
        return len(self.job_task_contexts)

    async def drain(self) -> None:
        """Stop taking jobs; running ones get the grace period, then are requeued."""
        if self.job_task_contexts:
            log.info("waiting for running jobs", jobs=self.running_jobs)
        # Nothing waits out a timer: idle slots end their loop instead of taking another job,
        # their blocking pops are cut short, and the upkeep loops (sweep, schedule, worker
        # info: SAQ names its job slots "process") stop sleeping. Running jobs go on.
        self.event.set()
        queue = self.queue
        if isinstance(queue, TzurotQueue):
            queue.wake_idle()
        for task in list(self.tasks):
            if task.get_name() != "process":
                task.cancel()
        await self.stop()


def build_worker(
    queue: TzurotQueue,
    job: GenerationJob,
    *,
    worker_id: str,
    concurrency: int,
    grace_seconds: float,
    cron_jobs: Sequence[CronJob[Any]] = (),
) -> InProcessWorker:
    queue.on_abandoned = job.abandoned

    async def generate(ctx: Context, *, payload: str, signature: str) -> None:
        await job(ctx, payload=payload, signature=signature)

    async def after_process(ctx: Context) -> None:
        finished: Job | None = ctx.get("job")
        if finished is not None and finished.status == Status.FAILED:
            await job.abandoned(finished)

    return InProcessWorker(
        queue,
        functions=[(GENERATE_FUNCTION, generate)],
        id=worker_id,
        concurrency=concurrency,
        cron_jobs=list(cron_jobs),
        after_process=after_process,
        timers={"sweep": SWEEP_EVERY_SECONDS, "schedule": 1, "abort": 5, "worker_info": 5},
        dequeue_timeout=DEQUEUE_TIMEOUT_SECONDS,
        shutdown_grace_period_s=max(1, round(grace_seconds)),
    )
