"""Job id prefixes, the queue's name and the numbers the seed fixes. One place for all of them."""

from __future__ import annotations

from enum import StrEnum

from tzurot.infra.keys import DAY


class JobPrefix(StrEnum):
    """Job ids are `{prefix}{requestId}`."""

    LLM = "llm-"
    IMAGE = "image-"  # reserved: image description jobs
    AUDIO = "audio-"  # reserved: audio transcription jobs
    MEMORY = "memory-"  # reserved: memory writes


QUEUE_NAME = "tzurot"

# Model calls per generation (retryable errors only), with exponential backoff from 2 s.
DEFAULT_ATTEMPTS = 3
BACKOFF_BASE_SECONDS = 2.0
MAX_RETRY_AFTER_SECONDS = 120.0
# Runs of one job: a process that dies mid-job hands it to another run (crash recovery only;
# a model call that fails is retried inside the run, see worker.py).
JOB_RUNS = 3

# A job whose process died is found by its stale heartbeat: touched every HEARTBEAT_EVERY
# seconds, suspect after HEARTBEAT_TIMEOUT (three missed beats), looked at every SWEEP_EVERY and
# swept after watching it one more beat: taken up again within 12 + 5 + 5 = 22 s of the death.
HEARTBEAT_EVERY_SECONDS = 4
HEARTBEAT_TIMEOUT_SECONDS = 12
SWEEP_EVERY_SECONDS = 5

# Retention, as BullMQ reads the seed's removeOnComplete/removeOnFail ages: completed jobs at
# most 24 h, failed ones at most 7 days. SAQ's job records expire after the shorter of the two
# (every job ends "complete" in SAQ's eyes; its outcome is our result record's).
COMPLETED_RETENTION_SECONDS = DAY
FAILED_RETENTION_SECONDS = 7 * DAY
# A minute shorter than the result record, so a finished job never outlives its result.
SAQ_JOB_TTL_SECONDS = COMPLETED_RETENTION_SECONDS - 60

# The one duplicate guard: a request id (and a source message with its personality) maps to
# one job for as long as any trace of that job is kept. It contains the seed's 5 s request and
# 1 h message windows.
CLAIM_SECONDS = FAILED_RETENTION_SECONDS

# The results stream that carries finished generations to delivery keeps a day.
RESULTS_STREAM_MAX_AGE_SECONDS = DAY
