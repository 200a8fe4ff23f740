"""The generation queue: submit, look up, wait. What the API and the Discord front end call."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from saq import Job, Status

from tzurot.ai.contracts import GenerationFailure, GenerationRequest, GenerationResult, Progress
from tzurot.jobs.claims import CLAIM_SECONDS, claim_keys
from tzurot.jobs.constants import (
    HEARTBEAT_TIMEOUT_SECONDS,
    JOB_RUNS,
    SAQ_JOB_TTL_SECONDS,
    JobPrefix,
)
from tzurot.jobs.metrics import JobMetrics
from tzurot.jobs.models import JobState, JobView, QueueCounts, Submission
from tzurot.jobs.results import ResultLog
from tzurot.jobs.saq_queue import TzurotQueue
from tzurot.jobs.signing import PayloadSigner
from tzurot.jobs.waiter import CompletionWaiter
from tzurot.logs import get_logger

log = get_logger(__name__)

GENERATE_FUNCTION = "generate"
# How often a waiter re-reads a job in case an announcement was lost.
_WAIT_RECHECK_SECONDS = 5.0
# SAQ's own cap on a run, beyond the job's deadline, which the job enforces itself.
_SAQ_TIMEOUT_MARGIN_SECONDS = 60

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
    attempts: int  # model calls per generation
    attempt_timeout: float  # seconds per model call
    job_timeout: float  # seconds per generation, from the request's creation


def job_id_for(request_id: str, prefix: JobPrefix = JobPrefix.LLM) -> str:
    return f"{prefix}{request_id}"


class JobQueue:
    def __init__(
        self,
        saq_queue: TzurotQueue,
        signer: PayloadSigner,
        results: ResultLog,
        options: JobOptions,
        metrics: JobMetrics,
    ) -> None:
        self.saq = saq_queue
        self._signer = signer
        self._results = results
        self._options = options
        self._metrics = metrics
        self._waiter = CompletionWaiter(saq_queue.redis)

    async def start(self) -> None:
        await self.saq.connect()
        await self._waiter.start()

    async def stop(self) -> None:
        await self._waiter.stop()

    async def submit(self, request: GenerationRequest) -> Submission:
        """Enqueue a generation once. Duplicates get the job that already exists."""
        job_id = job_id_for(request.request_id)
        payload = request.model_dump_json()
        claims = claim_keys(request)
        for _ in range(2):
            job = Job(
                function=GENERATE_FUNCTION,
                kwargs={"payload": payload, "signature": self._signer.sign(payload)},
                key=job_id,
                timeout=int(self._options.job_timeout) + _SAQ_TIMEOUT_MARGIN_SECONDS,
                heartbeat=HEARTBEAT_TIMEOUT_SECONDS,
                retries=JOB_RUNS,
                ttl=SAQ_JOB_TTL_SECONDS,
            )
            answer = await self.saq.enqueue_claimed(job, claims, CLAIM_SECONDS)
            if answer is True:
                self._metrics.submitted.labels("enqueued").inc()
                return Submission(job_id=job_id, request_id=request.request_id, status="queued")
            holder = answer if isinstance(answer, str) else job_id
            view = await self.status(holder)
            if view is not None:
                return self._duplicate(view)
            # The claim's job has vanished (its Redis data was lost): claim again, for ours.
            log.warning("a claimed job has vanished; enqueuing again", job_id=holder)
            await self.saq.redis.delete(*claims)
        raise RuntimeError(f"could not enqueue {job_id}")

    def _duplicate(self, view: JobView) -> Submission:
        self._metrics.submitted.labels("duplicate").inc()
        return Submission(
            job_id=view.job_id, request_id=view.request_id, status=view.status, duplicate=True
        )

    async def status(self, job_id: str) -> JobView | None:
        result = await self._results.get(job_id)
        if result is not None:
            return _view_of(result)
        job = await self.saq.job(job_id)
        if job is None:
            return None
        state = _STATE[job.status]
        error = None
        refused = "failure" in job.meta  # its payload was refused: it will never have a result
        if state in {"failed", "completed"} and not refused:
            # Its result may have been recorded between the two reads above.
            result = await self._results.get(job_id)
            if result is not None:
                return _view_of(result)
        if refused or state in {"failed", "completed"}:
            # Finished (or about to) without a result: the payload was refused, or the job was
            # lost. The failure recorded for it (if any) is in its metadata.
            state = "failed"
            meta = job.meta.get("failure") or {}
            error = GenerationFailure(
                category=str(meta.get("category", "timeout")),
                message=str(meta.get("message", "the job stopped before it finished")),
            )
        progress = round(job.progress * 100)
        if state == "processing":
            progress = max(progress, Progress.STARTED)
        return JobView(
            job_id=job_id,
            request_id=job_id.removeprefix(JobPrefix.LLM),
            status=state,
            progress=progress,
            attempts=job.attempts,
            error=error,
        )

    async def wait(self, job_id: str, timeout: float) -> JobView | None:
        """The job once it is finished, or as it stands when `timeout` runs out. (Made for
        jobs just submitted: one unknown to the queue is reported only at the timeout.)"""
        deadline = time.monotonic() + timeout
        async with self._waiter.watch(job_id) as finished:
            result = await self._results.get(job_id)
            if result is not None:
                return _view_of(result)
            view: JobView | None = None
            while view is None or not view.done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                announced = False
                try:
                    async with asyncio.timeout(min(remaining, _WAIT_RECHECK_SECONDS)):
                        announced = await finished.wait()
                except TimeoutError:
                    pass
                finished.clear()
                # Announced: the result is there (one read). Else look at the whole job, in
                # case an announcement was lost or the job ended without a result.
                result = await self._results.get(job_id) if announced else None
                view = _view_of(result) if result is not None else await self.status(job_id)
        return view if view is not None else await self.status(job_id)

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


def _view_of(result: GenerationResult) -> JobView:
    return JobView(
        job_id=result.job_id,
        request_id=result.request.request_id,
        status=result.status,
        progress=Progress.DONE,
        attempts=result.attempts,
        result=result,
    )
