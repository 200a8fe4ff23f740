"""What a conversation is made of: turns, each with its speaker named."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict


class ChatTurn(BaseModel):
    """One message in a channel's transcript.

    `role` is "user" for people and "assistant" for a personality's replies; `speaker` is the
    display name the model sees (the author's, or the personality's). `user_id` is the author
    of a user turn, and for a reply the user it answers (what `/history clear` goes by).
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
    """Where a generation gets a channel's recent turns (oldest first) and leaves its own."""

    async def exchange(self, channel_id: str, turn: ChatTurn, limit: int) -> list[ChatTurn]:
        """The newest `limit` turns before `turn`, then `turn` stored."""
        ...

    async def append(self, channel_id: str, turn: ChatTurn) -> None: ...

    async def exchange_again(
        self, channel_id: str, replaced: str, turn: ChatTurn, limit: int
    ) -> list[ChatTurn]:
        """For a reply replacing the reply of job `replaced` (Regenerate, an edited trigger):
        the newest `limit` turns before `turn`, which is already stored; stores nothing."""
        ...

    async def replace(self, channel_id: str, replaced_message_id: str, turn: ChatTurn) -> bool:
        """`turn` in the place of the turn with `replaced_message_id` (appended if gone)."""
        ...


class NoHistory:
    """A history source that keeps nothing (benchmarks of the bare pipeline)."""

    async def exchange(self, channel_id: str, turn: ChatTurn, limit: int) -> list[ChatTurn]:
        return []

    async def append(self, channel_id: str, turn: ChatTurn) -> None:
        return None

    async def exchange_again(
        self, channel_id: str, replaced: str, turn: ChatTurn, limit: int
    ) -> list[ChatTurn]:
        return []

    async def replace(self, channel_id: str, replaced_message_id: str, turn: ChatTurn) -> bool:
        return False
