"""A reply as it is being written: one Redis stream per job, so any process can show it.

The generating process writes the reply's visible text (thinking already removed) into
`tzurot:stream:{jobId}` as pieces; the delivering process, which need not be the same one,
reads them and edits the reply's messages as they grow. A process that takes a delivery over
reads the stream from the start. Pieces, folded in order (`fold`):

    text     append `text`
    replace  the whole visible text is `text` (an attempt's first write; a compaction; a
             visible text that changed other than by growing)
    restart  the text starts over (empty)
    end      the attempt finished: its result is recorded next

Writes are coalesced to one XADD per `FLUSH_SECONDS` at most. A long reply's stream is
compacted (one `replace`, older entries trimmed) so it never holds more than about
`COMPACT_AFTER` entries. The stream expires an hour after its last write and is deleted once
its reply is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

from redis.asyncio import Redis

from tzurot.infra.keys import PREFILLED_THINKING, STREAM
from tzurot.infra.redis_client import as_text

PieceKind = Literal["text", "replace", "restart", "end"]
_KINDS: frozenset[str] = frozenset(("text", "replace", "restart", "end"))

FLUSH_SECONDS = 0.05
COMPACT_AFTER = 400
_TTL = STREAM.ttl_seconds or 3600

Announce = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True)
class StreamPiece:
    entry_id: str
    kind: PieceKind
    text: str = ""


def fold(text: str, pieces: Iterable[StreamPiece]) -> tuple[str, bool]:
    """The visible text after `pieces`, and whether an attempt ended among them (a later
    `restart` or `replace` from a new attempt clears that again)."""
    ended = False
    for piece in pieces:
        if piece.kind == "text":
            text += piece.text
        elif piece.kind == "replace":
            text, ended = piece.text, False
        elif piece.kind == "restart":
            text, ended = "", False
        else:
            ended = True
    return text, ended


class ReplyStreams:
    def __init__(self, redis: Redis, announce: Announce | None = None) -> None:
        self._redis = redis
        self._announce = announce

    def writer(self, job_id: str, lane: str) -> ReplyStreamWriter:
        return ReplyStreamWriter(self._redis, job_id, lane, self._announce)

    async def read(
        self, job_id: str, after: str = "0", *, block_ms: int | None = None, count: int = 1000
    ) -> list[StreamPiece]:
        """The pieces after entry id `after` ("0": from the start). With `block_ms`, waits that
        long for at least one when there are none yet."""
        response: Any = await self._redis.xread(
            {STREAM.key(job_id=job_id): after}, count=count, block=block_ms
        )
        if not response:
            return []
        return [_piece(entry_id, fields) for entry_id, fields in response[0][1]]

    async def exists(self, job_id: str) -> bool:
        return bool(await self._redis.exists(STREAM.key(job_id=job_id)))

    async def discard(self, job_id: str) -> None:
        await self._redis.delete(STREAM.key(job_id=job_id))

    async def prefills_thinking(self, model: str) -> bool:
        """Whether `model` was seen pre-filling `<think>` (its replies only close the tag)."""
        return bool(await self._redis.sismember(PREFILLED_THINKING.key(), model))

    async def note_prefilled_thinking(self, model: str) -> None:
        key = PREFILLED_THINKING.key()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, model)
            pipe.expire(key, PREFILLED_THINKING.ttl_seconds or 30 * 24 * 3600)
            await pipe.execute()


class ReplyStreamWriter:
    """Writes one attempt's visible text. `show()` may be called for every token: the text is
    written at most every FLUSH_SECONDS (the newest text wins), and once more by `end()`."""

    def __init__(self, redis: Redis, job_id: str, lane: str, announce: Announce | None) -> None:
        self._redis = redis
        self._key = STREAM.key(job_id=job_id)
        self._job_id = job_id
        self._lane = lane
        self._announce = announce
        self._written = ""  # what the stream holds for this attempt
        self._latest = ""  # the newest text shown to this writer
        self._fresh = True  # nothing written by this attempt yet: its first write replaces
        self._since_replace = 0
        self._last_write = 0.0
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None

    async def restart(self) -> None:
        """An attempt begins: whatever an earlier attempt (or run) wrote is void. Nothing is
        written until this attempt has text; its first write replaces the old text."""
        self._cancel_timer()
        self._written = self._latest = ""
        self._fresh = True

    async def show(self, visible: str) -> None:
        self._latest = visible
        wait = self._last_write + FLUSH_SECONDS - time.monotonic()
        if wait <= 0:
            await self._flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_after(wait), name="stream-flush")

    async def end(self) -> None:
        self._cancel_timer()
        await self._flush()
        await self._write("end", "")

    async def close(self) -> None:
        self._cancel_timer()
        await self._flush()

    async def _flush_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        # From here on it is not cancelled: a write cut off halfway might be in the stream
        # without `_written` knowing it, and the next piece would repeat its text.
        self._timer = None
        await self._flush()

    def _cancel_timer(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
        self._timer = None

    async def _flush(self) -> None:
        async with self._lock:
            latest = self._latest
            if not latest or (latest == self._written and not self._fresh):
                return
            first = self._fresh
            if (
                first
                or not latest.startswith(self._written)
                or (self._since_replace >= COMPACT_AFTER)
            ):
                await self._write("replace", latest)
            else:
                await self._write("text", latest[len(self._written) :])
            self._written, self._fresh = latest, False
        if first and self._announce is not None:
            await self._announce(self._job_id, self._lane)

    async def _write(self, kind: PieceKind, text: str) -> None:
        self._last_write = time.monotonic()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self._key, {"k": kind, "t": text})
            pipe.expire(self._key, _TTL)
            entry_id, _ = await pipe.execute()
        if kind == "replace":
            self._since_replace = 0
            # Everything before this entry is contained in it (or void: an earlier attempt's).
            with contextlib.suppress(Exception):
                await self._redis.xtrim(self._key, minid=as_text(entry_id))
        else:
            self._since_replace += 1


def _piece(entry_id: bytes | str, fields: dict[bytes, bytes]) -> StreamPiece:
    kind = as_text(fields.get(b"k", b"text"))
    text = as_text(fields.get(b"t", b""))
    if kind not in _KINDS:
        kind = "text"
    return StreamPiece(as_text(entry_id), cast(PieceKind, kind), text)
