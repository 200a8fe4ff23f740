"""Reply streams (tzurot/jobs/streams.py) on a real redis-server: what a reader folds from the
pieces is always the newest text the writer was shown, whichever process reads it."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from tzurot.infra.keys import STREAM
from tzurot.jobs.streams import COMPACT_AFTER, FLUSH_SECONDS, ReplyStreams, fold


async def _folded(streams: ReplyStreams, job_id: str) -> tuple[str, bool]:
    return fold("", await streams.read(job_id))


async def test_a_reader_folds_the_newest_text_and_the_end(redis_client: Redis) -> None:
    announced: list[tuple[str, str]] = []

    async def announce(job_id: str, lane: str) -> None:
        announced.append((job_id, lane))

    streams = ReplyStreams(redis_client, announce=announce)
    writer = streams.writer("llm-1", "chan-1")
    await writer.restart()
    text = ""
    for word in ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog."]:
        text += word + " "
        await writer.show(text)
    await writer.end()
    assert await _folded(streams, "llm-1") == (text, True)
    assert announced == [("llm-1", "chan-1")]  # once per attempt, at its first write
    ttl = await redis_client.ttl(STREAM.key(job_id="llm-1"))
    assert 0 < ttl <= (STREAM.ttl_seconds or 0)


async def test_writes_are_coalesced(redis_client: Redis) -> None:
    streams = ReplyStreams(redis_client)
    writer = streams.writer("llm-2", "c")
    await writer.restart()
    text = ""
    for i in range(200):  # 200 tokens in well under FLUSH_SECONDS * 200
        text += f"t{i} "
        await writer.show(text)
    await writer.end()
    pieces = await streams.read("llm-2")
    assert len(pieces) < 20
    assert fold("", pieces) == (text, True)


async def test_the_trailing_text_is_written_without_end(redis_client: Redis) -> None:
    streams = ReplyStreams(redis_client)
    writer = streams.writer("llm-3", "c")
    await writer.restart()
    await writer.show("Hello")
    await writer.show("Hello there")  # within the flush window: written by the timer
    await asyncio.sleep(FLUSH_SECONDS * 4)
    assert await _folded(streams, "llm-3") == ("Hello there", False)


async def test_a_new_attempt_replaces_what_the_last_one_wrote(redis_client: Redis) -> None:
    streams = ReplyStreams(redis_client)
    first = streams.writer("llm-4", "c")
    await first.restart()
    await first.show("A half-written answer that")
    await first.close()
    second = streams.writer("llm-4", "c")  # e.g. the job's re-run on another process
    await second.restart()
    await second.show("Another")
    await second.end()
    assert await _folded(streams, "llm-4") == ("Another", True)


async def test_text_that_shrinks_is_replaced(redis_client: Redis) -> None:
    streams = ReplyStreams(redis_client)
    writer = streams.writer("llm-5", "c")
    await writer.restart()
    await writer.show("Hello <")
    await asyncio.sleep(FLUSH_SECONDS * 2)
    await writer.show("Hello world")
    await writer.end()
    assert await _folded(streams, "llm-5") == ("Hello world", True)


async def test_a_long_stream_is_compacted_and_reads_the_same(redis_client: Redis) -> None:
    streams = ReplyStreams(redis_client)
    writer = streams.writer("llm-6", "c")
    await writer.restart()
    text = ""
    reader_text, after = "", "0"
    for i in range(COMPACT_AFTER + 50):
        text += f"w{i} "
        await writer.show(text)
        await writer._flush()  # one piece per word, as a slow model would give them
        if i % 97 == 0:  # a reader following along
            pieces = await streams.read("llm-6", after)
            reader_text, _ = fold(reader_text, pieces)
            after = pieces[-1].entry_id if pieces else after
    await writer.end()
    length = await redis_client.xlen(STREAM.key(job_id="llm-6"))
    assert length <= COMPACT_AFTER + 2
    assert await _folded(streams, "llm-6") == (text, True)
    rest = await streams.read("llm-6", after)
    assert fold(reader_text, rest) == (text, True)


async def test_a_blocking_read_waits_for_the_first_piece(redis_client: Redis) -> None:
    streams = ReplyStreams(redis_client)
    assert await streams.read("llm-7", block_ms=50) == []
    assert not await streams.exists("llm-7")

    async def write_soon() -> None:
        await asyncio.sleep(0.05)
        writer = streams.writer("llm-7", "c")
        await writer.restart()
        await writer.show("Hi")

    task = asyncio.create_task(write_soon())
    pieces = await streams.read("llm-7", block_ms=2000)
    await task
    assert fold("", pieces)[0] == "Hi"
    await streams.discard("llm-7")
    assert not await streams.exists("llm-7")


async def test_a_model_that_prefills_thinking_is_known_to_every_process(
    redis_client: Redis, redis_url: str
) -> None:
    other = Redis.from_url(redis_url)
    try:
        assert not await ReplyStreams(other).prefills_thinking("openai/r1-distill")
        await ReplyStreams(redis_client).note_prefilled_thinking("openai/r1-distill")
        assert await ReplyStreams(other).prefills_thinking("openai/r1-distill")
        assert not await ReplyStreams(other).prefills_thinking("openai/gpt-4o")
    finally:
        await other.aclose()
