"""The live phase of a streamed reply: its messages posted and edited while it is written.

The generating process writes the reply's visible text into the job's stream (jobs/streams.py);
the process holding the reply's lane follows it here, until the job's result is in and the
normal post path (posting.py) puts the final text in place:

- the first message goes up as soon as a sentence is there, or `FIRST_POST_AFTER` after the
  first text, whichever comes first;
- then each message is edited at most once per `EDIT_EVERY` seconds, always to the newest text
  (a rate limit slows the edits down; text is never lost, as the next edit carries it all);
- the text is laid out exactly as the final reply will be (`reply_chunks`): a message that
  fills up is closed (fences repaired as the splitter does) and a new one continues;
- a `restart` piece (a new attempt, or the job run again) starts the text over in the same
  messages.

Every message is recorded as it is posted (with an intent first, see records.py), so a process
that takes the lane over after a crash reads the stream from the start and goes on editing the
same messages: it never posts them twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tzurot.discord.delivery.errors import DeliveryError
from tzurot.discord.delivery.lanes import Ticket
from tzurot.discord.delivery.posting import ReplyPoster
from tzurot.discord.delivery.records import DeliveryRecord, DeliveryRecords, digest
from tzurot.discord.delivery.render import reply_chunks
from tzurot.discord.delivery.sender import Target
from tzurot.jobs.streams import ReplyStreams, StreamPiece, fold
from tzurot.logs import get_logger

log = get_logger(__name__)

# The first message waits for a sentence, but never longer than this after the first text.
FIRST_POST_AFTER = 0.2
# Each message is edited at most this often.
EDIT_EVERY = 1.0
# How long one stream read waits for new text; the result is looked for between reads.
READ_BLOCK_MS = 250
# The stream is read at most this often until the reply shows, then at most READ_EVERY.
READ_FIRST_EVERY = 0.05
READ_EVERY = 0.2
# With no new text, whether the job finished is checked this often.
CHECK_EVERY = 1.0
# A painter still busy (a long rate limit) when the result is in is given this long.
_PAINTER_GRACE = 2.0
_SENTENCE = re.compile(r"[.!?…。！？][)\]\"'’”»*_~]*(\s|$)|\n")

Finished = Callable[[], Awaitable[bool]]


@dataclass
class LiveStats:
    """What the live phase did (for the benchmark and logs)."""

    posts: int = 0
    edits: int = 0
    first_text_at: float | None = None  # monotonic: the first text read from the stream
    first_visible_at: float | None = None  # monotonic: the first message posted
    rate_limited: int = 0
    # Epoch ms: the stream entry that held the first text was written (its id), and read.
    first_written_ms: int | None = None
    first_read_ms: int | None = None

    def summary(self) -> dict[str, int | None]:
        """For the log line: counts, and where the time to the first visible text went."""
        shown = None
        if self.first_visible_at is not None and self.first_text_at is not None:
            shown = round(1000 * (self.first_visible_at - self.first_text_at))
        read = None
        if self.first_read_ms is not None and self.first_written_ms is not None:
            read = self.first_read_ms - self.first_written_ms
        return {
            "posts": self.posts, "edits": self.edits, "rate_limited": self.rate_limited,
            "first_read_ms": read, "first_shown_ms": shown,
        }  # fmt: skip


@dataclass
class _Live:
    ticket: Ticket
    target: Target
    record: DeliveryRecord
    text: str = ""
    ended: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    stats: LiveStats = field(default_factory=LiveStats)


class LiveReplies:
    def __init__(
        self,
        *,
        streams: ReplyStreams,
        records: DeliveryRecords,
        poster: ReplyPoster,
        target: Callable[[Ticket], Awaitable[Target]],
        visible: Callable[[Ticket], Awaitable[None]],
    ) -> None:
        self._streams = streams
        self._records = records
        self._poster = poster
        self._target = target
        self._visible = visible  # the reply is showing: typing ends
        self.last_stats: LiveStats | None = None

    async def exists(self, job_id: str) -> bool:
        return await self._streams.exists(job_id)

    async def discard(self, job_id: str) -> None:
        await self._streams.discard(job_id)

    async def follow(
        self,
        ticket: Ticket,
        *,
        finished: Finished,
        wake: asyncio.Event,
        stop: Callable[[], bool],
    ) -> bool:
        """Show the reply as it is written until `finished()` says its job is done (True), or
        `stop()` says this process must let go (False). `wake` is set when the job's result may
        have come in."""
        record = await self._records.streaming(ticket.job_id)
        live = _Live(ticket, await self._target(ticket), record)
        painter = asyncio.create_task(self._paint(live), name=f"live:{ticket.job_id}")
        finished_here = False
        try:
            finished_here = await self._read(live, finished, wake, stop)
            return finished_here
        finally:
            live.done = True
            live.changed.set()
            live.stopped.set()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                async with asyncio.timeout(_PAINTER_GRACE):
                    await asyncio.shield(painter)
            if not painter.done():
                # Cancelled mid-post at worst: the intent recorded lets the final pass find it.
                painter.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await painter
            if not finished_here:
                self._poster.forget(ticket.job_id)  # another process may finish it
            self.last_stats = live.stats
            log.info("streamed reply shown", **live.stats.summary())

    async def _read(
        self, live: _Live, finished: Finished, wake: asyncio.Event, stop: Callable[[], bool]
    ) -> bool:
        after = "0"  # from the start, always: a takeover must see everything
        checked = time.monotonic()
        last_read = 0.0  # when a read last brought text
        while not stop():
            if live.text:
                # Once the reply shows, new text is only needed for the next edit: reading it
                # a few times a second instead of at every write saves the process work.
                every = READ_EVERY if live.stats.first_visible_at is not None else READ_FIRST_EVERY
                await asyncio.sleep(max(last_read + every - time.monotonic(), 0.0))
            # After an `end`, the result is due any moment: looked for more often.
            block = READ_BLOCK_MS if not live.ended else READ_BLOCK_MS // 5
            pieces = await self._streams.read(live.ticket.job_id, after, block_ms=block)
            if pieces:
                last_read = time.monotonic()
                after = pieces[-1].entry_id
                live.text, ended = fold(live.text, pieces)
                live.ended = ended or (live.ended and not _restarted(pieces))
                if live.text and live.stats.first_text_at is None:
                    live.stats.first_text_at = time.monotonic()
                    live.stats.first_read_ms = int(time.time() * 1000)
                    written = next(p.entry_id for p in pieces if p.text)
                    live.stats.first_written_ms = int(written.partition("-")[0] or 0)
                live.changed.set()
            now = time.monotonic()
            if wake.is_set() or live.ended or now - checked >= CHECK_EVERY:
                wake.clear()
                checked = now
                if await finished():
                    return True
        return False

    async def _paint(self, live: _Live) -> None:
        """Put the newest text in place, each message at most once per EDIT_EVERY."""
        last_put: dict[int, float] = {}
        pause_until = 0.0
        while not live.done:
            wait = _next_due(live, last_put, pause_until)
            live.changed.clear()
            if wait is None or wait > 0:
                # Before the first post, new text may make it due (a sentence); after it, only
                # the clock does (the layout is worked out again when an edit falls due).
                woken = live.changed if wait is None or not live.record.posted else live.stopped
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await woken.wait()
                continue
            try:
                if not await self._put_due(live, last_put):
                    await asyncio.sleep(0.05)  # due by a hair's breadth: not quite yet
            except DeliveryError as error:
                if error.permanent:
                    log.warning("discord refused a streamed message; the final pass will try",
                                error=str(error))  # fmt: skip
                    return
                live.stats.rate_limited += error.category == "rate_limited"
                pause_until = time.monotonic() + max(error.retry_after or 0.0, EDIT_EVERY)
                live.changed.set()

    async def _put_due(self, live: _Live, last_put: dict[int, float]) -> bool:
        """Put the first message that is due; whether one was."""
        chunks = reply_chunks(live.text, live.ticket.speaker.display_name)
        now = time.monotonic()
        for index, chunk in enumerate(chunks):
            if live.record.shown.get(index) == digest(chunk):
                continue
            if now < last_put.get(index, 0.0) + EDIT_EVERY:
                continue
            if index not in live.record.posted and not _may_post(live, index, now):
                break
            fresh = index not in live.record.posted
            await self._poster.put(live.ticket, live.target, live.record, index, chunk)
            last_put[index] = time.monotonic()
            if fresh:
                live.stats.posts += 1
            else:
                live.stats.edits += 1
            if live.stats.first_visible_at is None:
                live.stats.first_visible_at = last_put[index]
                try:
                    await self._visible(live.ticket)
                except Exception:
                    log.warning("could not end the typing indicator", exc_info=True)
            # The text may have grown meanwhile: the layout is worked out again.
            return True
        return False


def _next_due(live: _Live, last_put: dict[int, float], pause_until: float) -> float | None:
    """Seconds until a message is due to be put (0: now), or None while nothing is."""
    if not live.text:
        return None
    now = time.monotonic()
    soonest: float | None = None
    chunks = reply_chunks(live.text, live.ticket.speaker.display_name)
    for index, chunk in enumerate(chunks):
        if live.record.shown.get(index) == digest(chunk):
            continue
        due = max(last_put.get(index, 0.0) + EDIT_EVERY, pause_until)
        if index not in live.record.posted:
            due = max(due, _post_due(live, index))
        soonest = due if soonest is None else min(soonest, due)
        if index not in live.record.posted:
            break  # the messages after a missing one wait for it
    return None if soonest is None else max(soonest - now, 0.0)


def _post_due(live: _Live, index: int) -> float:
    """When message `index` may first be posted: the first at a sentence (or a moment after
    the first text), the others as soon as the text reaches them."""
    if index > 0 or live.ended or _SENTENCE.search(live.text):
        return 0.0
    first = live.stats.first_text_at or time.monotonic()
    return first + FIRST_POST_AFTER


def _may_post(live: _Live, index: int, now: float) -> bool:
    return now >= _post_due(live, index)


def _restarted(pieces: list[StreamPiece]) -> bool:
    return any(p.kind in ("restart", "replace") for p in pieces)
