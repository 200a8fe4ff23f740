"""What a conversation is made of: turns, each with its speaker named."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict


class ChatTurn(BaseModel):
    """One message in a channel's transcript.

    `role` is "user" for people and "assistant" for a personality's replies; `speaker` is the
    display name the model sees (the author's, or the personality's).
    """

    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant"]
    speaker: str
    content: str
    at: datetime
    personality: str | None = None
    user_id: str | None = None
    message_id: str | None = None


class HistorySource(Protocol):
    """Where prompt assembly gets a channel's recent turns from (oldest first)."""

    async def recent(self, channel_id: str, limit: int) -> list[ChatTurn]: ...


class NoHistory:
    """A history source for callers without a channel (e.g. the bare HTTP API)."""

    async def recent(self, channel_id: str, limit: int) -> list[ChatTurn]:
        return []
