"""What long-term memory is made of: scopes, memories, facts and what recall returns.

A *scope* is one user with one character: everything remembered belongs to it. Inside a scope
every memory and fact carries its *venue* (`guild:{id}`, `dm`, or another front end's name),
so by default a memory made in one server is recalled only there; a user who turns sharing on
is recalled everything in the scope, wherever it was said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_MEMORY_CHARS = 4_000
MAX_FACT_CHARS = 300
# A user id and a character's slug (slugs may be any script's letters: "李白").
_SAFE = re.compile(r"^[\w.-]{1,80}$")
DM_VENUE = "dm"


def venue_of(guild_id: str | None, channel_id: str | None, *, discord: bool = True) -> str:
    """Where a conversation happens: its server, the user's DMs, the terminal
    (`python -m tzurot chat`), or the HTTP API."""
    if guild_id:
        return f"guild:{guild_id}"
    if discord:
        return DM_VENUE
    if channel_id and channel_id.startswith("terminal:"):
        return "terminal"
    return "api"


@dataclass(frozen=True)
class MemoryScope:
    """One user with one character."""

    user_id: str
    personality: str  # the character's slug

    def __post_init__(self) -> None:
        if not _SAFE.match(self.user_id) or not _SAFE.match(self.personality):
            raise ValueError("a memory scope is made of a user id and a character slug")

    @property
    def key(self) -> str:
        """`{user_id}:{slug}`: the part of every Redis key of this scope."""
        return f"{self.user_id}:{self.personality}"


class MemoryRecord(BaseModel):
    """One remembered exchange ("Sam: ... / Lilith: ...")."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    text: str = Field(min_length=1, max_length=MAX_MEMORY_CHARS)
    at: datetime
    venue: str = Field(min_length=1, max_length=80)
    locked: bool = False
    # Discord message ids the exchange came from (the user's message, the reply's messages):
    # recall leaves out what the history window already holds.
    sources: tuple[str, ...] = ()


class Recalled(BaseModel):
    model_config = ConfigDict(frozen=True)

    record: MemoryRecord
    similarity: float


class Fact(BaseModel):
    """A durable fact about the user, for one character. `key` names what it is about
    ("cat_name"): a newer fact with the same key replaces an older one, unless that is locked."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9_]+$")
    text: str = Field(min_length=1, max_length=MAX_FACT_CHARS)
    at: datetime
    venue: str = Field(min_length=1, max_length=80)
    locked: bool = False


class MemoryPrefs(BaseModel):
    """A user's own choices (/memory share, /memory incognito)."""

    model_config = ConfigDict(frozen=True)

    share: bool = False
    incognito: bool = False
