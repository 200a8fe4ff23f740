"""Conversations: channel transcripts and the context budget for prompts."""

from tzurot.conversations.models import ChatTurn, HistorySource, NoHistory

__all__ = ["ChatTurn", "HistorySource", "NoHistory"]
