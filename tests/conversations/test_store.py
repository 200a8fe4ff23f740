"""The Redis transcript store, against a real redis-server."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter  # type: ignore[import-untyped]
from redis.asyncio import Redis
from structlog.testing import capture_logs

from tzurot.conversations import (
    ChatTurn,
    HistorySource,
    TranscriptStore,
    retention_task,
)
from tzurot.conversations.store import ACTIVE_KEY, MAX_CONTENT_CHARS, TRUNCATION_MARKER
from tzurot.infra.keys import TRANSCRIPT_UNDO

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CHANNEL = "111"


@pytest.fixture
def store(redis_client: Redis) -> TranscriptStore:
    return TranscriptStore(redis_client)


def turn(
    content: str,
    *,
    minute: int = 0,
    at: datetime | None = None,
    role: str = "user",
    speaker: str = "alice",
    personality: str | None = None,
    message_id: str | None = None,
) -> ChatTurn:
    return ChatTurn.model_validate(
        {
            "role": role,
            "speaker": speaker,
            "content": content,
            "at": at or T0 + timedelta(minutes=minute),
            "personality": personality,
            "user_id": "42" if role == "user" else None,
            "message_id": message_id,
        }
    )


def reply(content: str, personality: str, *, minute: int = 0) -> ChatTurn:
    return turn(
        content,
        minute=minute,
        role="assistant",
        speaker=personality.title(),
        personality=personality,
    )


def contents(turns: list[ChatTurn]) -> list[str]:
    return [t.content for t in turns]


async def test_is_a_history_source(store: TranscriptStore) -> None:
    source: HistorySource = store
    turn = ChatTurn(role="user", speaker="Ana", content="first", at=datetime.now(UTC))
    assert await source.exchange("nowhere", turn, 10) == []
    assert contents(await store.recent("nowhere", 10)) == ["first"]


async def test_exchange_returns_the_history_before_the_new_turn_and_stores_it(
    store: TranscriptStore,
) -> None:
    start = datetime.now(UTC)
    for i in range(4):
        await store.append(
            CHANNEL, ChatTurn(role="user", speaker="Ana", content=f"m{i}",
                              at=start + timedelta(seconds=i), message_id=f"id{i}")
        )  # fmt: skip
    new = ChatTurn(role="user", speaker="Bo", content="new", at=start + timedelta(seconds=9),
                   message_id="id9")  # fmt: skip
    assert contents(await store.exchange(CHANNEL, new, 2)) == ["m2", "m3"]
    # A replay of the same message (a second personality it mentions) does not see itself.
    assert contents(await store.exchange(CHANNEL, new, 2)) == ["m2", "m3"]
    assert contents(await store.recent(CHANNEL, 10)) == ["m0", "m1", "m2", "m3", "new"]
    assert await store.exchange(CHANNEL, new, 0) == []


async def test_recent_is_oldest_first_and_the_newest_n(store: TranscriptStore) -> None:
    for minute in range(6):
        await store.append(CHANNEL, turn(f"m{minute}", minute=minute))

    assert contents(await store.recent(CHANNEL, 10)) == ["m0", "m1", "m2", "m3", "m4", "m5"]
    assert contents(await store.recent(CHANNEL, 3)) == ["m3", "m4", "m5"]
    assert await store.recent(CHANNEL, 0) == []
    assert await store.recent(CHANNEL, -1) == []


async def test_turns_are_ordered_by_their_time_not_by_arrival(store: TranscriptStore) -> None:
    await store.append(CHANNEL, reply("the answer", "lilith", minute=2))
    await store.append(CHANNEL, turn("the question", minute=1))

    assert contents(await store.recent(CHANNEL, 10)) == ["the question", "the answer"]


async def test_a_turn_round_trips_whole(store: TranscriptStore) -> None:
    original = turn("hi", personality="lilith", message_id="900")
    await store.append(CHANNEL, original)

    assert await store.recent(CHANNEL, 1) == [original]


async def test_channels_are_separate(store: TranscriptStore) -> None:
    await store.append("a", turn("in a"))
    await store.append("b", turn("in b"))

    assert contents(await store.recent("a", 10)) == ["in a"]
    assert contents(await store.recent("b", 10)) == ["in b"]


async def test_the_transcript_is_capped_at_its_newest_turns(redis_client: Redis) -> None:
    store = TranscriptStore(redis_client, max_turns=5)
    for minute in range(8):
        await store.append(CHANNEL, turn(f"m{minute}", minute=minute))

    assert contents(await store.recent(CHANNEL, 100)) == ["m3", "m4", "m5", "m6", "m7"]
    # The dropped turns are gone from storage too, not just hidden.
    assert await redis_client.hlen(f"tzurot:transcript:{{{CHANNEL}}}:turns") == 5


async def test_a_replayed_message_is_stored_once(store: TranscriptStore) -> None:
    await store.append(CHANNEL, turn("hello", message_id="123"))
    await store.append(CHANNEL, turn("hello (replayed)", minute=1, message_id="123"))
    await store.append(CHANNEL, turn("no id", minute=2))
    await store.append(CHANNEL, turn("no id", minute=2))

    assert contents(await store.recent(CHANNEL, 10)) == ["hello", "no id", "no id"]


async def test_the_same_message_id_in_another_channel_is_another_message(
    store: TranscriptStore,
) -> None:
    await store.append("a", turn("x", message_id="123"))
    await store.append("b", turn("y", message_id="123"))

    assert contents(await store.recent("b", 10)) == ["y"]


async def test_clear_for_a_personality_removes_its_replies_and_what_was_said_to_it(
    store: TranscriptStore,
) -> None:
    await store.append(CHANNEL, turn("@lilith hi", minute=0, personality="lilith"))
    await store.append(CHANNEL, reply("hello", "lilith", minute=1))
    await store.append(CHANNEL, turn("@bambi hi", minute=2, personality="bambi"))
    await store.append(CHANNEL, reply("hey", "bambi", minute=3))
    await store.append(CHANNEL, turn("just chatting", minute=4))
    await store.append("elsewhere", turn("@lilith there", personality="lilith"))

    assert await store.clear(CHANNEL, "lilith") == 2

    assert contents(await store.recent(CHANNEL, 10)) == ["@bambi hi", "hey", "just chatting"]
    assert contents(await store.recent("elsewhere", 10)) == ["@lilith there"]
    assert await store.clear(CHANNEL, "lilith") == 0


async def test_clear_without_a_personality_empties_the_channel(store: TranscriptStore) -> None:
    await store.append(CHANNEL, turn("a", personality="lilith"))
    await store.append(CHANNEL, reply("b", "lilith", minute=1))
    await store.append(CHANNEL, turn("c", minute=2))
    await store.append("elsewhere", turn("kept"))

    assert await store.clear(CHANNEL) == 3

    assert await store.recent(CHANNEL, 10) == []
    assert contents(await store.recent("elsewhere", 10)) == ["kept"]
    assert await store.clear(CHANNEL) == 0
    await store.append(CHANNEL, turn("after", minute=3))
    assert contents(await store.recent(CHANNEL, 10)) == ["after"]


async def test_a_cleared_message_replayed_later_comes_back_once(store: TranscriptStore) -> None:
    await store.append(CHANNEL, turn("hi", message_id="7", personality="lilith"))
    await store.clear(CHANNEL, "lilith")
    await store.append(CHANNEL, turn("hi", message_id="7", personality="lilith"))
    await store.append(CHANNEL, turn("hi", message_id="7", personality="lilith"))

    assert contents(await store.recent(CHANNEL, 10)) == ["hi"]


async def test_prune_drops_old_turns_and_forgets_empty_channels(
    store: TranscriptStore, redis_client: Redis
) -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    await store.append("stale", turn("very old", at=now - timedelta(days=60)))
    await store.append("stale", turn("old", at=now - timedelta(days=31)))
    await store.append("mixed", turn("old", at=now - timedelta(days=45)))
    await store.append("mixed", turn("recent", at=now - timedelta(days=2)))
    await store.append("fresh", turn("new", at=now - timedelta(hours=1)))

    assert await store.prune(now - timedelta(days=30)) == 3

    assert await store.recent("stale", 10) == []
    assert contents(await store.recent("mixed", 10)) == ["recent"]
    assert contents(await store.recent("fresh", 10)) == ["new"]
    assert await redis_client.zscore(ACTIVE_KEY, "stale") is None
    assert await redis_client.zscore(ACTIVE_KEY, "mixed") is not None
    assert (
        await redis_client.exists(
            "tzurot:transcript:{stale}:order", "tzurot:transcript:{stale}:turns"
        )
        == 0
    )
    assert await store.prune(now - timedelta(days=30)) == 0


async def test_prune_forgets_a_cleared_channel_once_its_activity_is_old(
    store: TranscriptStore, redis_client: Redis
) -> None:
    await store.append(CHANNEL, turn("x", at=T0))
    await store.clear(CHANNEL)

    assert await store.prune(T0 - timedelta(days=1)) == 0
    assert await redis_client.zscore(ACTIVE_KEY, CHANNEL) is not None  # active since the cutoff
    assert await store.prune(T0 + timedelta(days=1)) == 0
    assert await redis_client.zscore(ACTIVE_KEY, CHANNEL) is None


async def test_prune_visits_many_channels(store: TranscriptStore, redis_client: Redis) -> None:
    old = T0 - timedelta(days=100)
    for n in range(450):  # more than one batch
        await store.append(f"c{n}", turn("old", at=old))
    await store.append("c0", turn("new", at=T0))

    assert await store.prune(T0 - timedelta(days=1)) == 450

    assert await redis_client.zcard(ACTIVE_KEY) == 1
    assert contents(await store.recent("c0", 10)) == ["new"]


async def test_retention_task_prunes_relative_to_the_tick(store: TranscriptStore) -> None:
    task = retention_task(store, days=30)
    assert task.name == "transcript-retention"
    assert croniter.is_valid(task.schedule)
    await store.append(CHANNEL, turn("too old", at=T0 - timedelta(days=31)))
    await store.append(CHANNEL, turn("kept", at=T0 - timedelta(days=29)))

    assert await task.run(int(T0.timestamp())) == 1

    assert contents(await store.recent(CHANNEL, 10)) == ["kept"]


def test_retention_needs_at_least_a_day(store: TranscriptStore) -> None:
    with pytest.raises(ValueError):
        retention_task(store, days=0)


async def test_a_corrupt_entry_is_skipped_and_logged(
    store: TranscriptStore, redis_client: Redis
) -> None:
    await store.append(CHANNEL, turn("before", minute=0, personality="lilith"))
    await store.append(CHANNEL, turn("after", minute=2, personality="lilith"))
    score = (T0 + timedelta(minutes=1)).timestamp()
    await redis_client.zadd(f"tzurot:transcript:{{{CHANNEL}}}:order", {"u:broken": score})
    await redis_client.hset(f"tzurot:transcript:{{{CHANNEL}}}:turns", "u:broken", b"\xff{not json")
    await redis_client.zadd(f"tzurot:transcript:{{{CHANNEL}}}:order", {"u:wrong": score})
    await redis_client.hset(
        f"tzurot:transcript:{{{CHANNEL}}}:turns", "u:wrong", '{"role": "robot"}'
    )

    with capture_logs() as logs:
        assert contents(await store.recent(CHANNEL, 10)) == ["before", "after"]
    skipped = [entry for entry in logs if entry["event"] == "unreadable transcript entry skipped"]
    assert {entry["entry"] for entry in skipped} == {"u:broken", "u:wrong"}
    assert all(entry["log_level"] == "warning" for entry in skipped)

    assert await store.clear(CHANNEL, "lilith") == 2
    assert await store.prune(T0 + timedelta(days=1)) == 2  # old corrupt entries go by age


async def test_odd_unicode_round_trips(store: TranscriptStore) -> None:
    text = '👩‍👩‍👧 שלום \u202eevil\u202c e\u0301 \x00 \u200b 𝕏 \n\t "quotes" \\ {}'
    await store.append(CHANNEL, turn(text, speaker="Zoë 🌸\u200d"))

    [stored] = await store.recent(CHANNEL, 1)
    assert stored.content == text
    assert stored.speaker == "Zoë 🌸\u200d"


async def test_lone_surrogates_are_replaced_not_rejected(store: TranscriptStore) -> None:
    await store.append(CHANNEL, turn("a\ud800b \ud83d\ude00", speaker="x\udfff"))

    [stored] = await store.recent(CHANNEL, 1)
    assert stored.content == "a\ufffdb 😀"
    assert stored.speaker == "x\ufffd"


async def test_huge_content_is_truncated_with_a_marker(store: TranscriptStore) -> None:
    await store.append(CHANNEL, turn("é" * 1_000_000))
    await store.append(CHANNEL, turn("x" * MAX_CONTENT_CHARS, minute=1))

    huge, exact = await store.recent(CHANNEL, 2)
    assert len(huge.content) == MAX_CONTENT_CHARS
    assert huge.content.endswith(TRUNCATION_MARKER)
    assert huge.content.startswith("é" * 100)
    assert exact.content == "x" * MAX_CONTENT_CHARS


async def test_naive_times_are_taken_as_utc(store: TranscriptStore) -> None:
    await store.append(CHANNEL, turn("naive", at=datetime(2025, 3, 1, 12, 30)))
    await store.append(CHANNEL, turn("aware", at=T0))

    first, second = await store.recent(CHANNEL, 2)
    assert (first.content, second.content) == ("aware", "naive")
    assert second.at == datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def test_limits_must_be_sensible(redis_client: Redis) -> None:
    with pytest.raises(ValueError):
        TranscriptStore(redis_client, max_turns=0)
    with pytest.raises(ValueError):
        TranscriptStore(redis_client, max_content_chars=5)


async def test_concurrent_replays_store_one_turn(store: TranscriptStore) -> None:
    await asyncio.gather(
        *(store.append(CHANNEL, turn(f"copy {n}", message_id="5")) for n in range(20))
    )

    assert len(await store.recent(CHANNEL, 100)) == 1


async def test_concurrent_appends_respect_the_cap(redis_client: Redis) -> None:
    store = TranscriptStore(redis_client, max_turns=10)
    await asyncio.gather(*(store.append(CHANNEL, turn(f"m{n}", minute=n)) for n in range(50)))

    assert contents(await store.recent(CHANNEL, 100)) == [f"m{n}" for n in range(40, 50)]
    assert await redis_client.hlen(f"tzurot:transcript:{{{CHANNEL}}}:turns") == 10


# -- a user's own history: clear, undo ------------------------------------------------------


def own(content: str, user: str, personality: str, *, minute: int, role: str = "user") -> ChatTurn:
    return ChatTurn.model_validate(
        {
            "role": role,
            "speaker": user if role == "user" else personality.title(),
            "content": content,
            "at": T0 + timedelta(minutes=minute),
            "personality": personality,
            "user_id": user,
            "message_id": f"{user}-{minute}" if role == "user" else None,
        }
    )


async def _conversation(store: TranscriptStore) -> None:
    await store.append(CHANNEL, own("a1 to lilith", "a", "lilith", minute=1))
    await store.append(CHANNEL, own("lilith to a", "a", "lilith", minute=2, role="assistant"))
    await store.append(CHANNEL, own("b1 to lilith", "b", "lilith", minute=3))
    await store.append(CHANNEL, own("lilith to b", "b", "lilith", minute=4, role="assistant"))
    await store.append(CHANNEL, own("a2 to nova", "a", "nova", minute=5))
    await store.append(CHANNEL, own("nova to a", "a", "nova", minute=6, role="assistant"))


async def test_clear_user_removes_only_their_turns_and_the_replies_to_them(
    store: TranscriptStore,
) -> None:
    await _conversation(store)
    assert await store.clear_user(CHANNEL, "a") == 4
    assert contents(await store.recent(CHANNEL, 50)) == ["b1 to lilith", "lilith to b"]
    assert await store.clear_user(CHANNEL, "a") == 0  # nothing left: the undo data is kept
    assert await store.undo(CHANNEL, "a") == 4
    assert contents(await store.recent(CHANNEL, 50)) == [
        "a1 to lilith", "lilith to a", "b1 to lilith", "lilith to b", "a2 to nova", "nova to a",
    ]  # fmt: skip
    assert await store.undo(CHANNEL, "a") is None  # undone once


async def test_clear_user_of_one_personality_and_undo_by_personality(
    store: TranscriptStore,
) -> None:
    await _conversation(store)
    assert await store.clear_user(CHANNEL, "a", "nova") == 2
    assert contents(await store.user_turns(CHANNEL, "a")) == ["a1 to lilith", "lilith to a"]
    assert await store.undo(CHANNEL, "a", "lilith") is None  # that clear held no lilith turns
    assert await store.undo(CHANNEL, "a", "nova") == 2
    assert contents(await store.user_turns(CHANNEL, "a", "nova")) == ["a2 to nova", "nova to a"]


async def test_a_new_clear_replaces_the_undo_and_users_are_separate(
    store: TranscriptStore,
) -> None:
    await _conversation(store)
    await store.clear_user(CHANNEL, "a", "lilith")
    await store.clear_user(CHANNEL, "a", "nova")
    await store.clear_user(CHANNEL, "b")
    assert await store.undo(CHANNEL, "a") == 2  # the last clear: nova's
    assert contents(await store.recent(CHANNEL, 50)) == ["a2 to nova", "nova to a"]
    assert await store.undo(CHANNEL, "b") == 2


async def test_undo_data_expires_and_a_reset_drops_it(
    store: TranscriptStore, redis_client: Redis
) -> None:
    await _conversation(store)
    await store.clear_user(CHANNEL, "a")
    undo_key = TRANSCRIPT_UNDO.key(channel=CHANNEL)
    assert 0 < await redis_client.ttl(undo_key) <= TRANSCRIPT_UNDO.ttl_seconds  # type: ignore[operator]
    assert await store.clear(CHANNEL) == 2  # /channel reset: everyone's turns...
    assert not await redis_client.exists(undo_key)  # ...and nobody can undo into it
    assert await store.undo(CHANNEL, "a") is None


async def test_a_stale_clear_is_not_restored(store: TranscriptStore, redis_client: Redis) -> None:
    await _conversation(store)
    await store.clear_user(CHANNEL, "a")
    undo_key = TRANSCRIPT_UNDO.key(channel=CHANNEL)
    raw = await redis_client.hget(undo_key, "a")
    assert raw is not None
    stale = json.loads(raw)
    stale["at"] -= 2 * 86400
    await redis_client.hset(undo_key, "a", json.dumps(stale))
    assert await store.undo(CHANNEL, "a") is None
    assert not await redis_client.hexists(undo_key, "a")


async def test_undo_keeps_the_cap_and_the_active_index(redis_client: Redis) -> None:
    store = TranscriptStore(redis_client, max_turns=3)
    await store.append(CHANNEL, own("a1", "a", "lilith", minute=1))
    await store.append(CHANNEL, own("a2", "a", "lilith", minute=2))
    await store.clear_user(CHANNEL, "a")
    await redis_client.zrem(ACTIVE_KEY, CHANNEL)  # as if a prune forgot the (then empty) channel
    for minute in (3, 4):
        await store.append(CHANNEL, own(f"b{minute}", "b", "lilith", minute=minute))
    assert await store.undo(CHANNEL, "a") == 2
    assert contents(await store.recent(CHANNEL, 10)) == ["a2", "b3", "b4"]  # capped at 3
    assert await redis_client.zscore(ACTIVE_KEY, CHANNEL) is not None


# -- replies replacing others, edits and deletions (Regenerate, Delete reply, edited triggers) --


def answer(content: str, job: str, *, minute: int) -> ChatTurn:
    return turn(content, minute=minute, role="assistant", speaker="Lilith", personality="lilith",
                message_id=f"reply:{job}")  # fmt: skip


async def test_exchange_again_reads_what_came_before_the_turn_and_stores_nothing(
    store: TranscriptStore,
) -> None:
    await store.append(CHANNEL, turn("earlier", minute=0, message_id="1"))
    await store.append(CHANNEL, answer("earlier answer", "job-0", minute=1))
    asked = turn("the question", minute=2, message_id="2")
    await store.append(CHANNEL, asked)
    await store.append(CHANNEL, turn("someone else meanwhile", minute=3, message_id="3"))
    await store.append(CHANNEL, answer("the old answer", "job-1", minute=4))
    await store.append(CHANNEL, turn("a later message", minute=5, message_id="4"))

    history = await store.exchange_again(CHANNEL, "job-1", asked, 10)
    assert contents(history) == ["earlier", "earlier answer"]
    assert contents(await store.exchange_again(CHANNEL, "job-1", asked, 1)) == ["earlier answer"]
    assert len(await store.recent(CHANNEL, 50)) == 6  # nothing stored


async def test_exchange_again_for_a_chat_turn_without_message_id(store: TranscriptStore) -> None:
    await store.append(CHANNEL, turn("before", minute=0, message_id="1"))
    chat = turn("hello via /chat", minute=1)  # /chat: no message id
    await store.append(CHANNEL, chat)
    await store.append(CHANNEL, answer("old", "job-1", minute=2))
    await store.append(CHANNEL, turn("after", minute=3, message_id="5"))
    assert contents(await store.exchange_again(CHANNEL, "job-1", chat, 10)) == ["before"]


async def test_replace_puts_the_new_reply_in_the_old_ones_place(store: TranscriptStore) -> None:
    await store.append(CHANNEL, turn("question", minute=0, message_id="1"))
    await store.append(CHANNEL, answer("old answer", "job-1", minute=1))
    await store.append(CHANNEL, turn("next", minute=2, message_id="2"))

    assert await store.replace(CHANNEL, "reply:job-1", answer("new answer", "job-2", minute=9))
    assert contents(await store.recent(CHANNEL, 10)) == ["question", "new answer", "next"]
    # A re-run of the same job leaves it where it is; a reply whose old one is gone is appended.
    assert not await store.replace(CHANNEL, "reply:job-1", answer("new answer", "job-2", minute=9))
    assert contents(await store.recent(CHANNEL, 10)) == ["question", "new answer", "next"]
    assert not await store.replace(CHANNEL, "reply:gone", answer("third", "job-3", minute=10))
    assert contents(await store.recent(CHANNEL, 10))[-1] == "third"


async def test_edit_and_drop_a_turn_by_message_id(store: TranscriptStore) -> None:
    await store.append(CHANNEL, turn("typo hre", minute=0, message_id="1"))
    await store.append(CHANNEL, answer("reply", "job-1", minute=1))
    assert await store.edit(CHANNEL, "1", "typo here")
    edited = await store.turn(CHANNEL, "1")
    assert edited is not None and edited.content == "typo here" and edited.user_id == "42"
    assert not await store.edit(CHANNEL, "404", "nothing")
    assert await store.turn(CHANNEL, "404") is None

    assert await store.drop(CHANNEL, "1")
    assert not await store.drop(CHANNEL, "1")
    assert contents(await store.recent(CHANNEL, 10)) == ["reply"]
    assert await store.drop(CHANNEL, "reply:job-1")
    assert await store.recent(CHANNEL, 10) == []
