"""The one duplicate guard: one job per request id, and one per (source message, personality).

A request claims its keys in the same script that enqueues its job (`TzurotQueue.
enqueue_claimed`); when a claim is already held, its job id comes back and the caller answers
with that job instead of starting another. A claim lasts as long as any trace of its job.
"""

from __future__ import annotations

from tzurot.ai.contracts import GenerationRequest
from tzurot.infra.keys import CLAIM
from tzurot.jobs.constants import CLAIM_SECONDS

__all__ = ["CLAIM_SECONDS", "claim_keys"]


def claim_keys(request: GenerationRequest) -> list[str]:
    keys = [CLAIM.key(request=f"request:{request.request_id}")]
    # A reply replacing another (Regenerate, an edited trigger) answers the same message again
    # on purpose: its own request id (one per click or edit) is its guard.
    if request.source_message_id is not None and request.regenerates is None:
        message = f"message:{request.source_message_id}:{request.personality_slug}"
        keys.append(CLAIM.key(request=message))
    return keys
