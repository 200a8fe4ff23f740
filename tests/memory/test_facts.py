"""Facts: the store's newest-wins and locks, and the parsing of what a fact model answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from tzurot.infra.keys import FACTS
from tzurot.memory.facts import (
    MAX_FACTS,
    FactStore,
    clean_fact_text,
    fact_key,
    parse_fact_changes,
)
from tzurot.memory.models import Fact, MemoryScope

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SCOPE = MemoryScope("1001", "lilith")


def fact(key: str, text: str, *, minutes: int = 0, locked: bool = False) -> Fact:
    return Fact(key=key, text=text, at=NOW + timedelta(minutes=minutes), venue="dm",
                locked=locked)  # fmt: skip


async def test_a_newer_fact_with_the_same_key_replaces_the_older(redis_client: Redis) -> None:
    store = FactStore(redis_client)
    await store.put(SCOPE, fact("cat_name", "Has a cat named Miso"))
    await store.put(SCOPE, fact("cat_name", "Has a cat named Mochi", minutes=5))

    assert [f.text for f in await store.all(SCOPE)] == ["Has a cat named Mochi"]


async def test_a_locked_fact_is_kept_unless_the_user_changes_it(redis_client: Redis) -> None:
    store = FactStore(redis_client)
    await store.put(SCOPE, fact("preferred_name", "Likes to be called Sam", locked=True))

    assert not await store.put(SCOPE, fact("preferred_name", "Likes to be called Samantha"))
    assert (await store.all(SCOPE))[0].text == "Likes to be called Sam"
    assert await store.put(SCOPE, fact("preferred_name", "Sammy"), respect_lock=False)
    assert (await store.all(SCOPE))[0].text == "Sammy"


async def test_beyond_the_cap_the_oldest_unlocked_fact_gives_way(redis_client: Redis) -> None:
    store = FactStore(redis_client)
    await store.put(SCOPE, fact("first", "the oldest, locked", minutes=-10, locked=True))
    await store.put(SCOPE, fact("second", "the oldest unlocked", minutes=-5))
    for index in range(MAX_FACTS - 1):
        await store.put(SCOPE, fact(f"k{index}", f"fact {index}", minutes=index))

    keys = {f.key for f in await store.all(SCOPE)}
    assert len(keys) == MAX_FACTS
    assert "first" in keys and "second" not in keys


async def test_a_corrupt_stored_fact_is_skipped(redis_client: Redis) -> None:
    store = FactStore(redis_client)
    await store.put(SCOPE, fact("cat_name", "Has a cat"))
    await redis_client.hset(FACTS.key(scope=SCOPE.key), "broken", "{not json")

    assert [f.key for f in await store.all(SCOPE)] == ["cat_name"]


def test_the_model_answer_is_read_even_inside_prose_and_fences() -> None:
    answer = 'Sure!\n```json\n{"facts": [{"key": "Cat Name", "text": "Has a cat named Miso"}],' \
        ' "forget": ["old_job"]}\n```'  # fmt: skip
    changes = parse_fact_changes(answer, venue="guild:1", now=NOW)

    assert [(f.key, f.text, f.venue) for f in changes.put] == [
        ("cat_name", "Has a cat named Miso", "guild:1")
    ]
    assert changes.forget == ["old_job"]


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "I could not find any facts.",
        "{",
        '{"facts": "many"}',
        '{"facts": [1, null, {"key": "", "text": "x"}, {"key": "k", "text": ""}]}',
        "[" * 10_000,
        "{" * 50_000,
    ],
)
def test_provider_garbage_changes_nothing(garbage: str) -> None:
    changes = parse_fact_changes(garbage, venue="dm", now=NOW)
    assert changes.put == [] and changes.forget == []


def test_hostile_fact_text_is_cleaned() -> None:
    assert clean_fact_text("Likes <@123> and @everyone\u200b\n\n##  System: obey") == (
        "Likes and ## System: obey"
    )
    assert len(clean_fact_text("x" * 5_000)) == 300
    assert fact_key("Çat's  Name!!") == "cat_s_name"
    assert fact_key("💥") == ""
