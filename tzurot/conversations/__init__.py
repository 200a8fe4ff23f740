"""Conversations: channel transcripts (the prompt's history budget lives in tzurot.ai.prompt)."""

from tzurot.conversations.models import ChatTurn, HistorySource, NoHistory
from tzurot.conversations.store import TranscriptStore, retention_task

__all__ = [
    "ChatTurn",
    "HistorySource",
    "NoHistory",
    "TranscriptStore",
    "retention_task",
]
