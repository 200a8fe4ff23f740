"""What crosses the line between the front ends, the job queue and the generation worker."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from enum import IntEnum
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tzurot.attachments.models import AttachmentRef
from tzurot.personalities.models import Personality

# Request ids end up in Redis keys and job ids: keep them to a safe alphabet.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
MAX_MESSAGE_CHARS_HARD = 100_000
MAX_ATTACHMENTS = 10


class Progress(IntEnum):
    """The milestones a generation reports through its job's progress (percent)."""

    STARTED = 10
    CALLING_MODEL = 50
    DONE = 100


class ProgressCallback(Protocol):
    async def __call__(self, percent: int) -> None: ...


def new_request_id() -> str:
    return secrets.token_hex(12)


def new_reference_id() -> str:
    """A short id a user can quote and an operator can find in the logs."""
    return secrets.token_hex(4)


class Delivery(BaseModel):
    """Where the Discord front end must post the reply (absent for HTTP API callers)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["channel", "dm", "interaction"]
    channel_id: str  # for a thread: its parent channel (whose webhook posts into the thread)
    guild_id: str | None = None
    thread_id: str | None = None
    reply_to_message_id: str | None = None
    interaction_id: str | None = None
    application_id: str | None = None

    @property
    def lane(self) -> str:
        """Replies in one lane are posted in order; lanes never wait for each other. An
        interaction has a lane of its own, so it never waits behind mentions."""
        if self.kind == "interaction":
            return f"interaction-{self.interaction_id}"
        return self.thread_id or self.channel_id


class GenerationRequest(BaseModel):
    """One generation: who asked, which personality, what they said."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    # Resolved once, by whoever accepted the request, and carried in the job.
    personality: Personality
    # May be empty when the message is only attachments (an image, a voice message).
    message: str = Field(max_length=MAX_MESSAGE_CHARS_HARD)
    attachments: tuple[AttachmentRef, ...] = Field(default=(), max_length=MAX_ATTACHMENTS)
    user_id: str = Field(min_length=1, max_length=64)
    user_name: str | None = Field(default=None, max_length=200)
    channel_id: str | None = Field(default=None, max_length=64)
    # For a thread: the channel it belongs to (channel settings and activation are inherited).
    parent_channel_id: str | None = Field(default=None, max_length=64)
    guild_id: str | None = Field(default=None, max_length=64)
    location: str | None = Field(default=None, max_length=300)
    source_message_id: str | None = Field(default=None, max_length=64)
    delivery: Delivery | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # A reply that replaces an earlier one (Regenerate, an edited trigger): the earlier reply's
    # job id; its turn in history and its memory give way to this one.
    regenerates: str | None = Field(default=None, max_length=200)
    # group_replies: another character's reply to the same message that this one answers after,
    # with it in the context (its job id).
    after_job_id: str | None = Field(default=None, max_length=200)
    # /chime-in: the character joins the channel's conversation; there is no new message.
    chime_in: bool = False

    @property
    def personality_slug(self) -> str:
        return self.personality.slug

    @field_validator("request_id")
    @classmethod
    def _safe_request_id(cls, value: str) -> str:
        if not REQUEST_ID_PATTERN.match(value):
            raise ValueError("requestId: 1-128 characters of A-Z a-z 0-9 . _ : -")
        return value

    @model_validator(mode="after")
    def _says_something(self) -> GenerationRequest:
        if not self.message and not self.attachments and not self.chime_in:
            raise ValueError("message: a request needs a message or an attachment")
        return self


class GenerationFailure(BaseModel):
    model_config = ConfigDict(frozen=True)

    category: str
    message: str
    reference_id: str = Field(default_factory=new_reference_id)
    retryable: bool = False


class GenerationResult(BaseModel):
    """A finished generation, successful or not: what delivery needs to tell the user."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    request: GenerationRequest
    status: Literal["completed", "failed"]
    error_message: str | None = None  # the personality's words for a failure
    content: str | None = None
    thinking: str | None = None
    model: str | None = None  # as the provider names it
    target_model: str | None = None  # the litellm model string that was called
    attempts: int = 1
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    failure: GenerationFailure | None = None
    # Told to request.user_id alone, once, by DM (e.g. "the provider refused your API key").
    private_notice: str | None = Field(default=None, max_length=2000)
    # The user's turn as the character read it (attachments as text), and whether the
    # exchange is to be remembered (memory on, the user not incognito).
    user_turn: str | None = None
    remember: bool = False
    # What Inspect shows: the provider, how long the model took (all attempts), whether it
    # streamed, each setting's effective value and the level it came from, the memories used.
    provider: str | None = None
    latency_ms: int | None = None
    streamed: bool = False
    settings_used: dict[str, str] = Field(default_factory=dict)
    settings_sources: dict[str, str] = Field(default_factory=dict)
    memories_used: tuple[str, ...] = ()
    finished_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def personality_slug(self) -> str:
        return self.request.personality.slug

    @property
    def display_name(self) -> str:
        return self.request.personality.display_name

    @property
    def avatar_url(self) -> str | None:
        return self.request.personality.avatar_url
