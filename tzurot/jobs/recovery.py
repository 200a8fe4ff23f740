"""Jobs that ended without a result (swept on their last attempt, or failed by a bug) still
owe the user an answer: record a failure for them, so delivery tells the user something."""

from __future__ import annotations

from pydantic import ValidationError
from saq import Status
from saq.queue.redis import RedisQueue

from tzurot.ai.contracts import GenerationFailure, GenerationRequest
from tzurot.jobs.constants import JobPrefix
from tzurot.jobs.models import GenerationHandler
from tzurot.jobs.results import ResultLog
from tzurot.jobs.signing import InvalidSignature, PayloadSigner
from tzurot.logs import get_logger

log = get_logger(__name__)


async def record_abandoned_jobs(
    queue: RedisQueue, results: ResultLog, signer: PayloadSigner, handler: GenerationHandler
) -> int:
    recorded = 0
    async for job in queue.iter_jobs([Status.ABORTED, Status.FAILED]):
        if not job.key.startswith(JobPrefix.LLM) or await results.get(job.key) is not None:
            continue
        payload = str((job.kwargs or {}).get("payload", ""))
        try:
            signer.verify(payload, str((job.kwargs or {}).get("signature", "")))
            request = GenerationRequest.model_validate_json(payload)
        except (InvalidSignature, ValidationError):
            continue  # untrusted: nobody to answer
        failure = GenerationFailure(
            category="timeout", message="the generation stopped before it could finish"
        )
        result = await handler.failed(
            request, job_id=job.key, attempts=job.attempts, failure=failure
        )
        await results.record(result)
        recorded += 1
        log.warning(
            "abandoned job answered with a failure",
            job_id=job.key,
            reference_id=failure.reference_id,
        )
    return recorded
