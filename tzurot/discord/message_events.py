"""Users editing or deleting a message that a character answered (MESSAGE_UPDATE/DELETE).

    trigger edited  -> its user turn in history says the new text; with `regenerate_on_edit`
                       on (the settings cascade of the user, character and channel), each reply
                       to it is regenerated in place, as Regenerate does
    trigger deleted -> its user turn leaves history; the replies stay

An edit that changes no text (Discord also sends MESSAGE_UPDATE when a link's embed appears) and
our own messages (bots, webhooks) change nothing. A replayed MESSAGE_UPDATE maps onto the same
new job: the request id comes from the message id, the edit's time and the character.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from tzurot.conversations import TranscriptStore
from tzurot.discord.message_path import MessagePath
from tzurot.discord.replies import Replies, ReplyRecord
from tzurot.logs import get_logger, log_context
from tzurot.personalities.store import PersonalityDirectory
from tzurot.settings.resolver import SettingsResolver

log = get_logger(__name__)


class MessageEvents:
    def __init__(
        self,
        *,
        path: MessagePath,
        replies: Replies,
        transcripts: TranscriptStore,
        resolver: SettingsResolver,
        personalities: PersonalityDirectory,
    ) -> None:
        self._path = path
        self._replies = replies
        self._transcripts = transcripts
        self._resolver = resolver
        self._personalities = personalities

    async def edited(
        self, *, channel_id: str, message_id: str, content: str, edited_at: datetime | None
    ) -> None:
        """A user's message now says `content`."""
        with log_context(channel_id=channel_id, message_id=message_id):
            records = await self._replies.of_trigger(message_id)
            if not records:
                # Not a trigger we still know of (or over 24 h old): its turn, if kept, changes.
                await self._transcripts.edit(channel_id, message_id, content)
                return
            history_channel = records[0].channel_id or channel_id
            before = records[0].request.message
            if content.strip() == before.strip():
                return  # no change of text (an embed appeared)
            turn = await self._transcripts.turn(history_channel, message_id)
            if turn is not None:
                await self._transcripts.edit(
                    history_channel, message_id, _edited_turn(turn.content, before, content)
                )
            for record in records:
                await self._after_edit(record, message_id, content, edited_at)

    async def _after_edit(
        self, record: ReplyRecord, message_id: str, content: str, edited_at: datetime | None
    ) -> None:
        request = record.request
        personality = await self._personalities.get(record.personality) or request.personality
        settings = await self._resolver.resolve(
            personality, user_id=request.user_id, channel_id=request.channel_id,
            parent_channel_id=request.parent_channel_id,
        )  # fmt: skip
        if not settings.regenerate_on_edit:
            # The record follows the edit, so a later Regenerate answers the new text.
            edited = request.model_copy(update={"message": content})
            await self._replies.save(record.model_copy(update={"request": edited}))
            return
        stamp = int(edited_at.timestamp() * 1000) if edited_at is not None else 0
        request_id = edit_request_id(message_id, stamp, record.personality)
        if not await self._path.admit_again(record, request_id):
            log.info("an edited trigger is not answered again (denied or rate limited)")
            return
        if not await self._replies.begin(record.job_id, "regenerate"):
            log.info("an edited trigger's reply is already being changed; not regenerated")
            return
        try:
            job_id = await self._path.regenerate(record, request_id, message=content)
        except Exception:
            await self._replies.end(record.job_id)
            raise
        if job_id is None:
            await self._replies.end(record.job_id)
        else:
            log.info("trigger edited; reply regenerated", job_id=job_id)

    async def deleted(self, *, channel_id: str, message_id: str) -> None:
        """A message was deleted: if it was a user's turn, it leaves history (replies stay)."""
        records = await self._replies.of_trigger(message_id)
        history_channel = records[0].channel_id if records and records[0].channel_id else None
        dropped = await self._transcripts.drop(history_channel or channel_id, message_id)
        if records:
            await self._replies.forget_trigger(message_id)
        if dropped:
            log.info("a user's message was deleted; its turn left history",
                     channel_id=channel_id)  # fmt: skip


def _edited_turn(stored: str, before: str, after: str) -> str:
    """The stored user turn with the message's old words replaced by the new ones (what
    follows them, the attachments as text, is kept)."""
    old = before.strip()
    if old and stored.startswith(old):
        rest = stored[len(old) :]
        return after.strip() + rest if after.strip() else rest.lstrip()
    return after


def edit_request_id(message_id: str, stamp: int, slug: str) -> str:
    digest = hashlib.sha256(slug.encode()).hexdigest()[:12]
    return f"edit-{message_id}-{stamp}-{digest}"


__all__ = ["MessageEvents", "edit_request_id"]
