"""Job id prefixes, queue names and the numbers the seed fixes. One place for all of them."""

from __future__ import annotations

from enum import StrEnum


class JobPrefix(StrEnum):
    """Job ids are `{prefix}{requestId}`."""

    LLM = "llm-"
    IMAGE = "image-"  # reserved: image description jobs
    AUDIO = "audio-"  # reserved: audio transcription jobs


QUEUE_NAME = "tzurot-ai"

# Attempts and backoff: 3 attempts, exponential from 2 s (2 s, then 4 s).
DEFAULT_ATTEMPTS = 3
BACKOFF_BASE_SECONDS = 2.0
MAX_RETRY_AFTER_SECONDS = 120.0

# A job whose process died is found by its stale heartbeat: touched every HEARTBEAT_EVERY
# seconds, considered dead after HEARTBEAT_TIMEOUT, swept every SWEEP_EVERY.
HEARTBEAT_EVERY_SECONDS = 5
HEARTBEAT_TIMEOUT_SECONDS = 15
SWEEP_EVERY_SECONDS = 5

# Retention of finished jobs: completed 24 h (the newest 10 kept regardless), failed 7 days
# (the newest 50 kept regardless).
COMPLETED_RETENTION_SECONDS = 24 * 3600
COMPLETED_KEEP_AT_LEAST = 10
FAILED_RETENTION_SECONDS = 7 * 24 * 3600
FAILED_KEEP_AT_LEAST = 50

# Idempotency windows.
REQUEST_DEDUP_SECONDS = 5
MESSAGE_LOCK_SECONDS = 3600

# The results stream that carries finished generations to delivery.
RESULTS_STREAM_MAX_AGE_SECONDS = 24 * 3600
