"""The prompt's two variants for characters joining in (tzurot/ai/prompt.py): group_replies
(the other characters' replies to the message follow it) and /chime-in (no new message)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from tzurot.ai import ChatMessage, build_messages
from tzurot.ai.prompt import split_at
from tzurot.conversations.models import ChatTurn
from tzurot.personalities.models import Personality

NOW = datetime(2026, 3, 3, 14, 5, tzinfo=UTC)
BOB = Personality(name="Bob", display_name="Bob the Builder", system_prompt="You are Bob.")


def turn(role: str, speaker: str, content: str, minute: int, **extra: Any) -> ChatTurn:
    at = NOW + timedelta(minutes=minute)
    return ChatTurn(role=role, speaker=speaker, content=content, at=at, **extra)  # type: ignore[arg-type]


def build(history: list[ChatTurn], **kwargs: Any) -> list[ChatMessage]:
    args: dict[str, Any] = {
        "user_message": "hello both",
        "user_name": "Alice",
        "history": history,
        "participants": ["Alice"],
        "now": NOW,
        "location": None,
        "model": "openai/fake-model",
        "count_tokens": len,
    }
    return build_messages(BOB, **(args | kwargs))


def test_replies_to_the_message_follow_it() -> None:
    asked = NOW + timedelta(minutes=5)
    history = [
        turn("user", "Alice", "earlier", 0),
        turn("assistant", "Bob the Builder", "an earlier answer", 1, personality="bob"),
        turn("assistant", "Lilith the Wise", "Lilith says hello.", 6, personality="lilith"),
    ]
    before, after = split_at(history, asked)
    assert [t.content for t in before] == ["earlier", "an earlier answer"]
    assert [t.content for t in after] == ["Lilith says hello."]

    messages = build(before, following=after)
    assert [(m.role, m.content) for m in messages[1:]] == [
        ("user", "Alice: earlier"),
        ("assistant", "an earlier answer"),
        ("user", "Alice: hello both"),
        ("user", "Lilith the Wise: Lilith says hello."),
    ]


def test_the_replies_before_this_one_win_over_old_history_when_space_is_short() -> None:
    old = [turn("user", "Alice", "x" * 400, i) for i in range(3)]
    following = [turn("assistant", "Lilith the Wise", "Lilith says hello.", 9)]
    tight = Personality(
        name="Bob", display_name="Bob the Builder", system_prompt="You are Bob.",
        context_window=1024, max_tokens=1,
    )  # fmt: skip
    messages = build_messages(
        tight, user_message="hello both", user_name="Alice", history=old, participants=["Alice"],
        now=NOW, location=None, model="m", count_tokens=len, following=following,
    )  # fmt: skip
    contents = [m.content for m in messages]
    assert contents[-1] == "Lilith the Wise: Lilith says hello."
    assert contents[-2] == "Alice: hello both"
    assert len(contents) < len(old) + 3  # some old history gave way


def test_chime_in_has_no_new_message_and_asks_to_join_in() -> None:
    history = [
        turn("user", "Alice", "the weather is lovely", 0),
        turn("assistant", "Lilith the Wise", "The sun is out.", 1, personality="lilith"),
    ]
    messages = build(history, user_message="", chime_in=True, images=["http://x/y.png"])
    assert [m.content for m in messages[1:-1]] == [
        "Alice: the weather is lovely",
        "Lilith the Wise: The sun is out.",
    ]
    last = messages[-1]
    assert last.role == "user" and last.images == ()
    assert last.content.startswith("[Nobody has addressed Bob the Builder directly")
    assert "Alice: " not in last.content
