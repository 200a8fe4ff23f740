"""Putting one reply's messages in place: each chunk posted, or its message edited to it.

A reply that was not streamed is posted chunk by chunk, resuming after the chunks recorded (a
chunk possibly posted but not recorded is looked for by its text first). A streamed reply
(`record.streamed`) already has messages holding provisional text: each recorded message is
edited to its final chunk (unless it holds it already), a message posted but never recorded is
found by its sender and adopted, missing ones are posted, and recorded messages past the last
chunk are deleted. The live phase (live.py) puts its provisional text in place the same way.
"""

from __future__ import annotations

import asyncio
import time

from tzurot.discord.delivery.errors import DeliveryError
from tzurot.discord.delivery.lanes import Ticket
from tzurot.discord.delivery.records import DeliveryRecord, DeliveryRecords, digest
from tzurot.discord.delivery.sender import ReplySender, Target
from tzurot.logs import get_logger

log = get_logger(__name__)


# One message is edited at most this often (the live phase's edits and the final pass's).
EDIT_SPACING = 1.0


class ReplyPoster:
    def __init__(
        self, sender: ReplySender, records: DeliveryRecords, *, spacing: float = EDIT_SPACING
    ) -> None:
        self._sender = sender
        self._records = records
        self._spacing = spacing
        # (job id, index) -> when this process last put that message (monotonic).
        self._last_put: dict[tuple[str, int], float] = {}

    async def put(
        self, ticket: Ticket, target: Target, record: DeliveryRecord, index: int, chunk: str
    ) -> str:
        """Make message `index` of the reply read `chunk`; its message id."""
        job_id, speaker = ticket.job_id, ticket.speaker
        message_id = record.posted.get(index)
        if message_id is None and record.streamed and index in record.intents:
            message_id = await self._sender.find_own(
                target, speaker, after=record.intents[index] or None
            )
            if message_id is not None:
                log.info("found a streamed message posted but not recorded", index=index)
                await self._records.posted(job_id, index, message_id)
                record.posted[index] = message_id
        if message_id is not None:
            if not record.streamed or record.shown.get(index) == digest(chunk):
                return message_id  # a chunk posted as final, or already holding this text
            wait = self._last_put.get((job_id, index), -EDIT_SPACING) + self._spacing
            if (wait := wait - time.monotonic()) > 0:
                await asyncio.sleep(wait)  # the message was put a moment ago
            try:
                await self._sender.edit(target, speaker, message_id, chunk, index=index)
            except DeliveryError as error:
                if error.category != "message_gone":
                    raise
                log.warning("a reply message can no longer be edited; posting it again",
                            index=index)  # fmt: skip
                record.posted.pop(index, None)
            else:
                self._last_put[(job_id, index)] = time.monotonic()
                await self._records.shown(job_id, index, chunk)
                record.shown[index] = digest(chunk)
                return message_id
        return await self._post(ticket, target, record, index, chunk)

    async def _post(
        self, ticket: Ticket, target: Target, record: DeliveryRecord, index: int, chunk: str
    ) -> str:
        job_id, speaker = ticket.job_id, ticket.speaker
        previous = self.previous(ticket, record, index)
        message_id = None
        if (
            record.resumed
            and not record.streamed
            and not (target.kind == "interaction" and index == 0)
        ):
            message_id = await self._sender.find_posted(target, speaker, chunk, after=previous)
        if message_id is None:
            if record.streamed and not (target.kind == "interaction" and index == 0):
                after = await self._records.intend(job_id, index, previous, lane=ticket.lane)
                record.intents[index] = after
            message_id = await self._sender.post(target, speaker, chunk, index=index)
            self._last_put[(job_id, index)] = time.monotonic()
        await self._records.posted(job_id, index, message_id, text=chunk, lane=ticket.lane)
        record.posted[index] = message_id
        record.shown[index] = digest(chunk)
        return message_id

    @staticmethod
    def previous(ticket: Ticket, record: DeliveryRecord, index: int) -> str | None:
        """The message that message `index` comes after."""
        for earlier in range(index - 1, -1, -1):
            if earlier in record.posted:
                return record.posted[earlier]
        return ticket.delivery.reply_to_message_id

    async def trim(
        self, ticket: Ticket, target: Target, record: DeliveryRecord, count: int
    ) -> None:
        """Delete the reply's messages past the first `count` (a streamed reply's surplus)."""
        surplus = sorted(i for i in {*record.posted, *record.intents} if i >= count)
        for index in reversed(surplus):
            message_id = record.posted.get(index)
            if message_id is None and index in record.intents:
                message_id = await self._sender.find_own(
                    target, ticket.speaker, after=record.intents[index] or None
                )
            if message_id is not None:
                await self._sender.remove(target, message_id, index=index)
            await self._records.unpost(ticket.job_id, index)
            record.posted.pop(index, None)
            record.intents.pop(index, None)
            record.shown.pop(index, None)

    async def put_all(
        self,
        ticket: Ticket,
        target: Target,
        record: DeliveryRecord,
        chunks: list[str],
        *,
        fallback: Target | None = None,
    ) -> Target:
        """The whole reply in place: every chunk, then (streamed) no message past the last.
        An interaction that can no longer be answered is answered at `fallback` instead; the
        target used in the end is returned."""
        for index, chunk in enumerate(chunks):
            try:
                await self.put(ticket, target, record, index, chunk)
            except DeliveryError as error:
                if target.kind != "interaction" or error.category != "interaction_expired":
                    raise
                if fallback is None:
                    raise
                log.info("interaction expired; answering in the channel instead")
                target = fallback
                record.posted.pop(index, None)
                await self.put(ticket, target, record, index, chunk)
        if record.streamed:
            await self.trim(ticket, target, record, len(chunks))
        self.forget(ticket.job_id)
        return target

    def forget(self, job_id: str) -> None:
        """The reply is in place: its messages' last edit times are no longer needed."""
        for key in [k for k in self._last_put if k[0] == job_id]:
            del self._last_put[key]
