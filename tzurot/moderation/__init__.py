"""Moderation: the denylist and the rate limits, and the gate that applies both."""

from tzurot.moderation.denylist import (
    SCOPES,
    DenyEntry,
    Denylist,
    DenylistFull,
    Scope,
    TargetKind,
    Verdict,
    new_entry,
)
from tzurot.moderation.gate import Admission, Gate, limit_text
from tzurot.moderation.rate_limits import Decision, RateLimiter

__all__ = [
    "SCOPES",
    "Admission",
    "Decision",
    "DenyEntry",
    "Denylist",
    "DenylistFull",
    "Gate",
    "RateLimiter",
    "Scope",
    "TargetKind",
    "Verdict",
    "limit_text",
    "new_entry",
]
