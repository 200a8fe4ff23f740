"""The live phase of a streamed reply, and the final pass over its messages, against a fake
Discord sender (a real Redis for the stream and the records)."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from tzurot.ai.contracts import Delivery
from tzurot.discord.delivery import live as live_module
from tzurot.discord.delivery.errors import DeliveryError
from tzurot.discord.delivery.lanes import Speaker, Ticket
from tzurot.discord.delivery.live import LiveReplies
from tzurot.discord.delivery.posting import ReplyPoster
from tzurot.discord.delivery.records import DeliveryRecords
from tzurot.discord.delivery.render import reply_chunks
from tzurot.discord.delivery.runner import _entry_order
from tzurot.discord.delivery.sender import Target
from tzurot.jobs.streams import ReplyStreams

TARGET = Target("channel", "c1")


@dataclass
class Posted:
    id: str
    versions: list[tuple[float, str]]
    deleted: bool = False

    @property
    def content(self) -> str:
        return self.versions[-1][1]


@dataclass
class FakeSender:
    """Discord as the sender sees it: messages by id, each with its edit history."""

    messages: dict[str, Posted] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    edit_failures: list[DeliveryError] = field(default_factory=list)
    die_at_post: int | None = None  # the process dies right after this post (1: the first)

    def live(self) -> list[Posted]:
        return [m for m in self.messages.values() if not m.deleted]

    async def post(self, target: Target, speaker: Speaker, chunk: str, *, index: int) -> str:
        assert len(chunk) <= 2000
        message_id = str(next(self.ids))
        self.messages[message_id] = Posted(message_id, [(time.monotonic(), chunk)])
        if self.die_at_post == len(self.messages):
            raise asyncio.CancelledError  # the process died before it heard back
        return message_id

    async def edit(
        self, target: Target, speaker: Speaker, message_id: str, chunk: str, *, index: int
    ) -> None:
        assert len(chunk) <= 2000
        if self.edit_failures:
            raise self.edit_failures.pop(0)
        message = self.messages[message_id]
        if message.deleted:
            raise DeliveryError(True, "message_gone")
        message.versions.append((time.monotonic(), chunk))

    async def remove(self, target: Target, message_id: str, *, index: int) -> None:
        self.messages[message_id].deleted = True

    async def find_own(self, target: Target, speaker: Speaker, *, after: str | None) -> str | None:
        later = [m for m in self.live() if after is None or int(m.id) > int(after)]
        return min(later, key=lambda m: int(m.id)).id if later else None

    async def find_posted(
        self, target: Target, speaker: Speaker, chunk: str, *, after: str | None
    ) -> str | None:
        return next((m.id for m in self.live() if m.content == chunk), None)


def ticket(job: str = "llm-1") -> Ticket:
    return Ticket(
        job_id=job, delivery=Delivery(kind="channel", channel_id="c1", reply_to_message_id="1"),
        speaker=Speaker(display_name="Lilith"), personality_slug="lilith", error_message=None,
        order=1.0, created_at=time.time(),
    )  # fmt: skip


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_module, "EDIT_EVERY", 0.3)
    monkeypatch.setattr(live_module, "CHECK_EVERY", 0.2)


class Harness:
    def __init__(self, redis: Redis, sender: FakeSender) -> None:
        self.streams = ReplyStreams(redis)
        self.records = DeliveryRecords(redis)
        self.sender = sender
        self.poster = ReplyPoster(sender, self.records, spacing=0.3)  # type: ignore[arg-type]
        self.visible: list[float] = []
        self.done = asyncio.Event()

    def live(self) -> LiveReplies:
        async def target(_: Ticket) -> Target:
            return TARGET

        async def visible(_: Ticket) -> None:
            self.visible.append(time.monotonic())

        return LiveReplies(streams=self.streams, records=self.records, poster=self.poster,
                           target=target, visible=visible)  # fmt: skip

    async def follow(self, t: Ticket, live: LiveReplies | None = None) -> bool:
        async def finished() -> bool:
            return self.done.is_set()

        return await (live or self.live()).follow(
            t, finished=finished, wake=asyncio.Event(), stop=lambda: False
        )

    async def final(self, t: Ticket, text: str) -> None:
        record = await self.records.begin(t.job_id)
        await self.poster.put_all(t, TARGET, record, reply_chunks(text, "Lilith"))


async def write(redis: Redis, job: str, text: str, *, step: int = 40, delay: float = 0.01) -> None:
    writer = ReplyStreams(redis).writer(job, "c1")
    await writer.restart()
    for end in range(step, len(text) + step, step):
        await writer.show(text[:end])
        await asyncio.sleep(delay)
    await writer.end()


def words(count: int) -> str:
    return " ".join(f"word{i:04d}" for i in range(count))


async def test_a_streamed_reply_shows_early_edits_slowly_and_ends_as_the_plain_reply(
    redis_client: Redis,
) -> None:
    h = Harness(redis_client, FakeSender())
    t = ticket()
    text = "Hello there. " + words(556)  # over 5,000 characters: three messages
    writing = asyncio.create_task(write(redis_client, t.job_id, text, step=60, delay=0.01))
    following = asyncio.create_task(h.follow(t))
    async with asyncio.timeout(10):
        while not h.sender.messages:
            await asyncio.sleep(0.01)
    assert not writing.done()  # the first text is up while the model is still writing
    await writing
    await asyncio.sleep(1.0)
    h.done.set()
    assert await following
    await h.final(t, text)

    posted = h.sender.live()
    assert [m.content for m in posted] == reply_chunks(text, "Lilith")
    assert len(h.visible) == 1
    for message in posted:
        times = [at for at, _ in message.versions]
        assert all(b - a >= 0.29 for a, b in itertools.pairwise(times)), times
        assert all(len(content) <= 2000 for _, content in message.versions)


async def test_a_restart_starts_the_text_over_in_the_same_messages(redis_client: Redis) -> None:
    h = Harness(redis_client, FakeSender())
    t = ticket()
    following = asyncio.create_task(h.follow(t))
    first = ReplyStreams(redis_client).writer(t.job_id, "c1")
    await first.restart()
    await first.show("An attempt that fails " + words(300))  # two messages' worth
    await first.close()
    async with asyncio.timeout(10):
        while len(h.sender.live()) < 2:
            await asyncio.sleep(0.01)
    first_message = h.sender.live()[0].id
    await write(redis_client, t.job_id, "The second attempt. All better.")
    async with asyncio.timeout(10):
        while h.sender.live()[0].content != "The second attempt. All better.":
            await asyncio.sleep(0.01)
    h.done.set()
    await following
    await h.final(t, "The second attempt. All better.")

    posted = h.sender.live()
    assert [m.content for m in posted] == ["The second attempt. All better."]
    assert posted[0].id == first_message
    assert len(h.sender.messages) == 2  # the second message went, no third came


async def test_rate_limited_edits_slow_down_and_lose_no_text(redis_client: Redis) -> None:
    sender = FakeSender(edit_failures=[DeliveryError(False, "rate_limited", 429, None, 0.5)] * 3)
    h = Harness(redis_client, sender)
    t = ticket()
    text = "First sentence. " + words(100)
    following = asyncio.create_task(h.follow(t))
    await write(redis_client, t.job_id, text, step=20, delay=0.02)
    async with asyncio.timeout(10):
        while sender.live()[0].content != reply_chunks(text, "Lilith")[0]:
            await asyncio.sleep(0.02)
    h.done.set()
    await following

    assert not sender.edit_failures  # every 429 was met, and the text still arrived whole
    assert live_module.LiveReplies is type(h.live())


async def test_a_takeover_edits_the_same_messages_and_adopts_one_posted_unrecorded(
    redis_client: Redis,
) -> None:
    sender = FakeSender()
    h = Harness(redis_client, sender)
    t = ticket()
    text = "One. " + words(400)
    await write(redis_client, t.job_id, text[:2500], step=200, delay=0.0)
    # The first process posts message 0, then dies posting message 1 (posted, not recorded).
    sender.die_at_post = 2
    first = asyncio.create_task(h.follow(t))
    async with asyncio.timeout(10):
        while len(sender.messages) < 2:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    sender.die_at_post = None
    record = await h.records.get(t.job_id)
    assert record.streamed and set(record.posted) == {0} and 1 in record.intents

    # Another process takes over, reads the stream from the start, and finishes the reply.
    second = asyncio.create_task(h.follow(t, h.live()))
    await write(redis_client, t.job_id, text, step=500, delay=0.0)
    await asyncio.sleep(0.8)
    h.done.set()
    await second
    await h.final(t, text)

    assert [m.content for m in sender.live()] == reply_chunks(text, "Lilith")
    assert len(sender.messages) == len(reply_chunks(text, "Lilith"))  # nothing posted twice


async def test_a_failure_after_streaming_edits_the_first_message_and_deletes_the_rest(
    redis_client: Redis,
) -> None:
    sender = FakeSender()
    h = Harness(redis_client, sender)
    t = ticket()
    for index in range(3):
        message_id = await sender.post(TARGET, t.speaker, f"partial {index}", index=index)
        await h.records.posted(t.job_id, index, message_id, text=f"partial {index}")
    await h.records.streaming(t.job_id)

    await h.final(t, "Lilith frowns.\n||(error: timeout; ref: abc)||")

    assert [m.content for m in sender.live()] == ["Lilith frowns.\n||(error: timeout; ref: abc)||"]
    assert len(sender.messages) == 3


async def test_adopted_messages_are_edited_in_place(redis_client: Redis) -> None:
    sender = FakeSender()
    h = Harness(redis_client, sender)
    old = [await sender.post(TARGET, Speaker(display_name="Lilith"), "old", index=i)
           for i in range(2)]  # fmt: skip
    t = ticket("llm-new")
    await h.records.adopt(t.job_id, old)

    await h.final(t, "a new reply")

    assert [m.content for m in sender.live()] == ["a new reply"]
    assert sender.messages[old[0]].content == "a new reply" and sender.messages[old[1]].deleted


def test_stream_entry_ids_order_by_time_then_sequence() -> None:
    assert _entry_order("1700000000000-2") > _entry_order("1700000000000-1")
    assert _entry_order("1700000000001-0") > _entry_order("1700000000000-9")
