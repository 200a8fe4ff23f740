"""Conversations: channel transcripts and the context budget for prompts."""

from tzurot.conversations.budget import (
    TokenCounter,
    approximate_tokens,
    counted_text,
    fit_to_budget,
    litellm_counter,
)
from tzurot.conversations.models import ChatTurn, HistorySource, NoHistory
from tzurot.conversations.store import TranscriptStore, retention_task

__all__ = [
    "ChatTurn",
    "HistorySource",
    "NoHistory",
    "TokenCounter",
    "TranscriptStore",
    "approximate_tokens",
    "counted_text",
    "fit_to_budget",
    "litellm_counter",
    "retention_task",
]
