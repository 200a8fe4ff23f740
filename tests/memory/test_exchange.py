"""What a finished reply makes of a memory: which replies are remembered, where, and as what."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tzurot.ai.contracts import Delivery, GenerationRequest, GenerationResult
from tzurot.memory.models import MAX_MEMORY_CHARS, MemoryScope, venue_of
from tzurot.memory.service import Exchange, MemoryConfig, MemoryService
from tzurot.personalities.models import Personality

LILITH = Personality(name="Lilith", display_name="Lilith the Wise", system_prompt="You are Lilith.")


def result(**overrides: Any) -> GenerationResult:
    request = GenerationRequest(
        request_id="msg-1-abc",
        personality=LILITH,
        message="my cat is called Miso",
        user_id="1001",
        user_name="alice",
        channel_id="2002",
        guild_id="3003",
        source_message_id="1",
        delivery=Delivery(kind="channel", channel_id="2002", guild_id="3003"),
        created_at=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
    )
    fields: dict[str, Any] = {
        "job_id": "llm-msg-1-abc",
        "request": request,
        "status": "completed",
        "content": "What a lovely name.",
        "target_model": "openai/fake-model",
        "remember": True,
        "user_turn": "my cat is called Miso\n\n[image cat.png, described: a grey cat]",
    }
    return GenerationResult(**(fields | overrides))


def service() -> MemoryService:
    # exchange_of reads nothing: no Redis, store or embedder is reached.
    none: Any = None
    return MemoryService(none, none, none, none, none, MemoryConfig())


def test_a_delivered_reply_becomes_an_exchange_with_its_sources_and_venue() -> None:
    exchange = service().exchange_of(result(), posted=["9001", "9002"])

    assert exchange is not None
    assert exchange.venue == "guild:3003"
    assert exchange.sources == ("1", "reply:llm-msg-1-abc", "9001", "9002")
    assert exchange.model == "openai/fake-model"  # the facts' model: what was called
    assert exchange.text() == (
        "alice: my cat is called Miso [image cat.png, described: a grey cat]\n"
        "Lilith the Wise: What a lovely name."
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"remember": False},  # memory off, or the user incognito
        {"status": "failed", "content": None},
        {"content": ""},
    ],
)
def test_what_is_not_remembered(overrides: dict[str, Any]) -> None:
    assert service().exchange_of(result(**overrides)) is None


def test_a_long_exchange_is_capped_and_keeps_room_for_the_reply() -> None:
    exchange = Exchange(
        job_id="llm-x", user_id="1", user_name="alice", personality="lilith",
        personality_name="Lilith", venue="dm", user_text="word " * 5_000,
        reply_text="answer " * 5_000, at=datetime.now(UTC),
    )  # fmt: skip

    text = exchange.text()
    assert len(text) <= MAX_MEMORY_CHARS
    assert "\nLilith: answer answer" in text


def test_venues_and_scopes() -> None:
    assert venue_of("3003", "2002") == "guild:3003"
    assert venue_of(None, "2002") == "dm"
    assert venue_of(None, "terminal:me", discord=False) == "terminal"
    assert venue_of(None, None, discord=False) == "api"
    assert MemoryScope("1001", "李白").key == "1001:李白"
    with pytest.raises(ValueError):
        MemoryScope("1001", "lil ith}{")
