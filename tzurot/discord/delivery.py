"""Delivery: finished generations from the results stream, posted once and in order.

The consumer reads the jobs module's results stream in a consumer group, posts each reply
(resuming a half-posted multi-part reply where it stopped), records it, and only then
acknowledges the entry. A restart between generation and delivery therefore loses nothing,
and a reply is never posted twice. Within a channel, a reply waits until every reply to an
earlier message is posted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from tzurot.ai.contracts import GenerationResult
from tzurot.conversations import ChatTurn, TranscriptStore
from tzurot.discord.render import reply_text
from tzurot.discord.sender import ReplySender, SendFailed, Speaker, Target
from tzurot.discord.state import DiscordState
from tzurot.discord.typing import TypingKeeper
from tzurot.jobs import ResultLog, StreamEntry
from tzurot.logs import get_logger, log_context

log = get_logger(__name__)

GROUP = "discord-delivery"
_RECLAIM_IDLE_MS = 60_000
_READ_BLOCK_MS = 1000
# Longer than one blocking read plus a batch of deliveries.
_STOP_WAIT_SECONDS = 10.0


@dataclass
class InteractionRegistry:
    """Deferred /chat interactions waiting for their job, by job id (this process only:
    interaction tokens never go to Redis)."""

    application_id: str = ""
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)

    def add(self, job_id: str, token: str) -> None:
        self.tokens[job_id] = (token, time.monotonic())

    def take(self, job_id: str) -> str | None:
        token, created = self.tokens.pop(job_id, (None, 0.0))
        if token is None or time.monotonic() - created > 14 * 60:
            return None
        return token


class DeliveryConsumer:
    def __init__(
        self,
        results: ResultLog,
        sender: ReplySender,
        state: DiscordState,
        transcripts: TranscriptStore,
        typing: TypingKeeper,
        interactions: InteractionRegistry,
        *,
        consumer: str,
        stale_after_seconds: float,
    ) -> None:
        self._results = results
        self._sender = sender
        self._state = state
        self._transcripts = transcripts
        self._typing = typing
        self._interactions = interactions
        self._consumer = consumer
        self._stale_after = stale_after_seconds
        self._held: dict[str, StreamEntry] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        await self._results.ensure_group(GROUP)
        self._task = asyncio.create_task(self._run(), name="discord-delivery")

    async def stop(self) -> None:
        """Finish the current batch and stop; never cancel a blocking read mid-flight (a
        cancelled XREADGROUP leaves its connection hanging). Unacked entries are re-read on
        the next start, so nothing is lost either way."""
        self._stopping.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=_STOP_WAIT_SECONDS)
        if not done:
            log.warning("delivery loop did not stop in time; cancelling it")
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=1.0)
        elif not self._task.cancelled() and self._task.exception() is not None:
            log.error("delivery loop had failed", error=repr(self._task.exception()))

    async def _run(self) -> None:
        # What this consumer read before a restart but never acknowledged comes first.
        backlog = await self._results.read_pending(GROUP, self._consumer)
        await self._handle_all(backlog)
        while not self._stopping.is_set():
            try:
                entries = await self._results.read(GROUP, self._consumer, block_ms=_READ_BLOCK_MS)
                if not entries:
                    entries = await self._results.reclaim(
                        GROUP, self._consumer, idle_ms=_RECLAIM_IDLE_MS
                    )
                await self._handle_all(entries)
            except Exception:
                log.exception("delivery loop error; continuing")
                await asyncio.sleep(1)

    async def _handle_all(self, entries: list[StreamEntry]) -> None:
        for entry in entries:
            self._held[entry.result.job_id] = entry
        progress = True
        while progress:
            progress = False
            for job_id, entry in list(self._held.items()):
                if await self._try_deliver(entry):
                    self._held.pop(job_id, None)
                    progress = True

    async def _try_deliver(self, entry: StreamEntry) -> bool:
        result = entry.result
        delivery = result.request.delivery
        with log_context(
            job_id=result.job_id, channel_id=delivery.channel_id if delivery else None
        ):
            if delivery is None or await self._state.is_delivered(result.job_id):
                await self._results.ack(GROUP, entry.entry_id)
                return True
            order_key = delivery.thread_id or delivery.channel_id
            stale = (time.time() - self._stale_after) * 1000 * 10
            head = await self._state.first_expected(order_key, stale_before=stale)
            if head is not None and head != result.job_id:
                return False  # an earlier message's reply is not posted yet
            try:
                await self._deliver(result)
            except SendFailed:
                log.error("reply could not be posted; will retry")
                return False
            await self._state.reply_done(order_key, result.job_id)
            await self._results.ack(GROUP, entry.entry_id)
            return True

    async def _deliver(self, result: GenerationResult) -> None:
        delivery = result.request.delivery
        assert delivery is not None
        token = self._interactions.take(result.job_id) if delivery.kind == "interaction" else None
        target = Target(
            kind="interaction" if token else ("dm" if delivery.kind == "dm" else "channel"),
            channel_id=delivery.channel_id,
            thread_id=delivery.thread_id,
            interaction_token=token,
            application_id=self._interactions.application_id or None,
        )
        speaker = Speaker(result.display_name or "Tzurot", result.avatar_url)
        done = await self._state.delivered_chunks(result.job_id)

        async def sent(index: int, message_id: str) -> None:
            await self._state.mark_chunks(result.job_id, index + 1)
            if result.personality_slug:
                await self._state.remember_message(message_id, result.personality_slug)

        await self._sender.send(target, speaker, reply_text(result), skip=done, on_sent=sent)
        await self._state.mark_delivered(result.job_id)
        await self._typing.stop(result.job_id)
        if result.status == "completed" and result.content and result.request.channel_id:
            await self._transcripts.append(
                result.request.channel_id,
                ChatTurn(
                    role="assistant",
                    speaker=result.display_name or "assistant",
                    content=result.content,
                    at=result.finished_at,
                    personality=result.personality_slug,
                    message_id=f"reply:{result.job_id}",
                ),
            )
        log.info("reply delivered", kind=target.kind)
