"""The generation queue: submit, look up, wait. What the API and the Discord front end call."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from saq import Job, Status
from saq.queue.redis import RedisQueue

from tzurot.ai.contracts import GenerationFailure, GenerationRequest, GenerationResult
from tzurot.jobs.constants import HEARTBEAT_TIMEOUT_SECONDS, JobPrefix
from tzurot.jobs.idempotency import DuplicateGuard
from tzurot.jobs.metrics import JobMetrics
from tzurot.jobs.models import JobState, JobView, QueueCounts, Submission
from tzurot.jobs.results import ResultLog
from tzurot.jobs.signing import PayloadSigner
from tzurot.jobs.waiter import CompletionWaiter
from tzurot.logs import get_logger

log = get_logger(__name__)

GENERATE_FUNCTION = "generate"
# How often a waiter re-reads a job in case a notification was lost.
_WAIT_RECHECK_SECONDS = 5.0

_STATE: dict[Status, JobState] = {
    Status.NEW: "queued",
    Status.QUEUED: "queued",
    Status.ACTIVE: "processing",
    Status.ABORTING: "processing",
    Status.COMPLETE: "completed",
    Status.FAILED: "failed",
    Status.ABORTED: "failed",
}


@dataclass(frozen=True)
class JobOptions:
    attempts: int
    attempt_timeout: float
    job_timeout: float
    first_retry_delay: float = 2.0


class JobQueue:
    def __init__(
        self,
        saq_queue: RedisQueue,
        redis: Redis,
        signer: PayloadSigner,
        results: ResultLog,
        options: JobOptions,
        metrics: JobMetrics,
    ) -> None:
        self.saq = saq_queue
        self._redis = redis
        self._signer = signer
        self._results = results
        self._guard = DuplicateGuard(redis)
        self._options = options
        self._metrics = metrics
        self._waiter = CompletionWaiter(redis, channel_prefix=saq_queue.job_id(""))

    async def start(self) -> None:
        await self.saq.connect()
        await self._waiter.start()

    async def stop(self) -> None:
        await self._waiter.stop()

    @staticmethod
    def job_id_for(request_id: str, prefix: JobPrefix = JobPrefix.LLM) -> str:
        return f"{prefix}{request_id}"

    async def submit(self, request: GenerationRequest) -> Submission:
        """Enqueue a generation once. Duplicates get the job that already exists.

        `request.personality` must be the resolved personality's id (its slug): the
        per-message lock is keyed on it.
        """
        job_id = self.job_id_for(request.request_id)
        earlier = await self._guard.claim_request(request.request_id, job_id)
        if earlier is not None:
            return await self._duplicate(earlier)
        if request.source_message_id is not None:
            earlier = await self._guard.claim_message(
                request.source_message_id, request.personality, job_id
            )
            if earlier is not None:
                return await self._duplicate(earlier)
        if await self.saq.job(job_id) is not None:
            return await self._duplicate(job_id)

        payload = request.model_dump_json()
        options = self._options
        job = await self.saq.enqueue(
            Job(
                function=GENERATE_FUNCTION,
                kwargs={"payload": payload, "signature": self._signer.sign(payload)},
                key=job_id,
                timeout=int(options.attempt_timeout) + 30,
                heartbeat=HEARTBEAT_TIMEOUT_SECONDS,
                retries=options.attempts,
                retry_delay=options.first_retry_delay,
                ttl=0,  # kept until the retention cron removes it
            )
        )
        if job is None:
            return await self._duplicate(job_id)
        self._metrics.submitted.labels("enqueued").inc()
        log.info("generation enqueued", job_id=job_id, personality=request.personality)
        return Submission(job_id=job_id, request_id=request.request_id, status="queued")

    async def _duplicate(self, job_id: str) -> Submission:
        self._metrics.submitted.labels("duplicate").inc()
        view = await self.status(job_id)
        request_id = job_id.removeprefix(JobPrefix.LLM)
        status: JobState = view.status if view else "queued"
        return Submission(job_id=job_id, request_id=request_id, status=status, duplicate=True)

    async def status(self, job_id: str) -> JobView | None:
        result = await self._results.get(job_id)
        if result is not None:
            return JobView(
                job_id=job_id,
                request_id=result.request.request_id,
                status=result.status,
                progress=100,
                attempts=result.attempts,
                result=result,
            )
        job = await self.saq.job(job_id)
        if job is None:
            return None
        state = _STATE[job.status]
        error = None
        if state == "failed":
            meta = job.meta.get("failure") or {}
            error = GenerationFailure(
                category=str(meta.get("category", "timeout")),
                message=str(meta.get("message", "the job stopped before it finished")),
            )
        return JobView(
            job_id=job_id,
            request_id=job_id.removeprefix(JobPrefix.LLM),
            status=state,
            progress=round(job.progress * 100),
            attempts=job.attempts,
            error=error,
        )

    async def wait(self, job_id: str, timeout: float) -> JobView | None:
        """The job once it is finished, or as it stands when `timeout` runs out."""
        deadline = time.monotonic() + timeout
        async with self._waiter.watch(job_id) as finished:
            view = await self.status(job_id)
            while view is not None and not view.done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(min(remaining, _WAIT_RECHECK_SECONDS)):
                        await finished.wait()
                except TimeoutError:
                    pass
                finished.clear()
                view = await self.status(job_id)
        return view

    async def result(self, job_id: str) -> GenerationResult | None:
        return await self._results.get(job_id)

    async def counts(self) -> QueueCounts:
        info = await self.saq.info()
        totals = await self._results.totals()
        return QueueCounts(
            waiting=info["queued"],
            active=info["active"],
            completed=totals.get("completed", 0),
            failed=totals.get("failed", 0),
            scheduled=max(info["scheduled"], 0),
        )

    async def workers_alive(self) -> int:
        info = await self.saq.info()
        return len(info["workers"])
