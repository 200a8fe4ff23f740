"""Fitting a transcript into a token budget, and counting tokens without the network."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tzurot.conversations import ChatTurn, counted_text, fit_to_budget, litellm_counter

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def turns(*spoken: tuple[str, str]) -> list[ChatTurn]:
    return [
        ChatTurn(role="user", speaker=speaker, content=content, at=T0 + timedelta(minutes=n))
        for n, (speaker, content) in enumerate(spoken)
    ]


def by_chars(text: str) -> int:
    return len(text)


def test_keeps_the_newest_turns_oldest_first() -> None:
    log = turns(("ann", "one"), ("bob", "two"), ("cy", "three"))  # costs 8, 8, 9

    assert fit_to_budget(log, 17, by_chars) == log[1:]
    assert fit_to_budget(log, 16, by_chars) == log[2:]
    assert fit_to_budget(log, 25, by_chars) == log
    assert fit_to_budget(log, 1000, by_chars) == log


def test_stops_at_the_first_turn_that_does_not_fit() -> None:
    log = turns(("ann", "a"), ("bob", "a much longer message"), ("cy", "hi"))

    # "ann: a" would fit after the long turn is refused, but a gap would mislead the model.
    assert fit_to_budget(log, 12, by_chars) == log[2:]


def test_nothing_fits_an_empty_or_negative_budget() -> None:
    log = turns(("ann", "hi"))

    assert fit_to_budget(log, 0, by_chars) == []
    assert fit_to_budget(log, -5, by_chars) == []
    assert fit_to_budget([], 100, by_chars) == []


def test_each_turn_is_counted_once_with_its_speaker_named() -> None:
    log = turns(("ann", "one"), ("bob", "two"), ("ann", "three"))
    seen: list[str] = []

    def counter(text: str) -> int:
        seen.append(text)
        return 1

    assert fit_to_budget(log, 10, counter) == log
    assert seen == ["ann: three", "bob: two", "ann: one"]
    assert [counted_text(turn) for turn in log] == list(reversed(seen))


def test_the_speaker_label_is_paid_for() -> None:
    log = turns(("a very long display name", "hi"))

    assert fit_to_budget(log, len("hi"), by_chars) == []


def test_litellm_counts_an_unknown_model_locally() -> None:
    count = litellm_counter("openai/fake-model")

    assert 0 < count("Lilith: hello there, how are you? ✨ שלום") < 40
    assert count("") >= 0


def test_litellm_failure_falls_back_to_an_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    import litellm

    calls = 0

    def broken(**_: object) -> int:
        nonlocal calls
        calls += 1
        raise ValueError("unknown model")

    monkeypatch.setattr(litellm, "token_counter", broken)
    count = litellm_counter("no/such-model")

    assert count("x" * 40) == 11
    assert count("") == 1
    assert calls == 1  # litellm is not asked again once it has failed


def test_importing_conversations_does_not_import_litellm() -> None:
    code = "import sys, tzurot.conversations; sys.exit('litellm' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
