"""The job queue's view of a job, as the API and the Discord front end see it."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from tzurot.ai.contracts import (
    GenerationFailure,
    GenerationRequest,
    GenerationResult,
    ProgressCallback,
)

JobState = Literal["queued", "processing", "completed", "failed"]
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed"})


class Submission(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_id: str
    request_id: str
    status: JobState
    duplicate: bool = False


class JobView(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_id: str
    request_id: str
    status: JobState
    progress: int
    attempts: int
    result: GenerationResult | None = None
    # Set when the job failed before it could produce a result (e.g. an untrusted payload).
    error: GenerationFailure | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATES

    @property
    def content(self) -> str | None:
        return self.result.content if self.result else None

    @property
    def failure(self) -> GenerationFailure | None:
        return self.result.failure if self.result else self.error


class QueueCounts(BaseModel):
    waiting: int
    active: int
    completed: int
    failed: int
    scheduled: int


class GenerationHandler(Protocol):
    """The work a generation job does; implemented by the ai module, called by the worker."""

    async def generate(
        self,
        request: GenerationRequest,
        *,
        job_id: str,
        attempt: int,
        timeout: float,
        progress: ProgressCallback,
    ) -> GenerationResult:
        """Produce the reply. Raises `tzurot.ai.errors.ProviderError` when the provider fails."""
        ...

    async def failed(
        self, request: GenerationRequest, *, job_id: str, attempts: int, failure: GenerationFailure
    ) -> GenerationResult:
        """The failed result, in the personality's voice where one is known."""
        ...
