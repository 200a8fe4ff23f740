"""A Discord message's whole path, top to bottom.

    message in  -> who is it for (triggers) -> a ticket in its channel's lane, then the job
    result in   -> the delivery runner (delivery/runner.py) reaches the ticket -> post it

Each step is a call into a small module that does only that step: `triggers` decides who is
addressed, `jobs` queues the generation (once), `delivery.lanes` keeps each channel's replies in
order, `typing` shows that someone is thinking, `delivery.sender` posts. Everything a later
step needs is in Redis, so any process may post any reply.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

import hikari

from tzurot.ai.contracts import Delivery, GenerationFailure, GenerationRequest, GenerationResult
from tzurot.ai.error_messages import in_voice
from tzurot.discord.activation import thread_parent_of
from tzurot.discord.delivery.errors import DeliveryError
from tzurot.discord.delivery.lanes import Lanes, Speaker, Ticket
from tzurot.discord.delivery.posting import ReplyPoster
from tzurot.discord.delivery.records import DeliveryRecord, DeliveryRecords
from tzurot.discord.delivery.render import failure_text, reply_chunks, reply_text
from tzurot.discord.delivery.sender import ReplySender, Target
from tzurot.discord.interactions import InteractionTokens
from tzurot.discord.pluralkit import PluralKitSpeakers
from tzurot.discord.replies import Replies, ReplyRecord
from tzurot.discord.state import ConversationState
from tzurot.discord.triggers import IncomingMessage, Trigger, TriggerResolver, visible_to
from tzurot.discord.typing import TypingBoard
from tzurot.jobs import JobQueue, job_id_for
from tzurot.logs import get_logger, log_context
from tzurot.memory.service import MemoryService
from tzurot.moderation.gate import Gate, limit_text
from tzurot.personalities.models import Personality
from tzurot.personalities.store import PersonalityDirectory
from tzurot.settings.resolver import SettingsResolver

log = get_logger(__name__)

MESSAGE_LIMIT = 2000


class MessagePath:
    def __init__(
        self,
        *,
        personalities: PersonalityDirectory,
        triggers: TriggerResolver,
        jobs: JobQueue,
        lanes: Lanes,
        records: DeliveryRecords,
        typing: TypingBoard,
        interactions: InteractionTokens,
        state: ConversationState,
        sender: ReplySender,
        job_timeout: float,
        gate: Gate,
        memory: MemoryService | None = None,
        replies: Replies | None = None,
        pluralkit: PluralKitSpeakers | None = None,
        settings: SettingsResolver | None = None,
    ) -> None:
        # (D) PluralKit's reposts (pluralkit.py); the cascade, for `group_replies`.
        self._pluralkit = pluralkit
        self._settings = settings
        self.replies = replies  # (C) the 24 h record of each delivered reply
        self._personalities = personalities
        self._triggers = triggers
        self._jobs = jobs
        self._lanes = lanes
        self._records = records
        self._typing = typing
        self._interactions = interactions
        self._state = state
        self._sender = sender
        self._job_timeout = job_timeout
        self._gate = gate
        self._memory = memory
        self.poster = ReplyPoster(sender, records)

    # -- 1. a message comes in ---------------------------------------------------------------

    async def on_message(self, message: IncomingMessage, bot_id: str) -> None:
        with log_context(channel_id=message.channel_id, user_id=message.author_id):
            trigger = await self._triggers.resolve(message, bot_id)
            if trigger is None:
                return
            if trigger.reason != "help" and not message.content.strip() and not message.attachments:
                return  # nothing to answer (a sticker, an embed-only message)
            if self._pluralkit is not None and not await self._pluralkit.goes_ahead(message):
                return  # (D) PluralKit reposted it: one of the two copies is answered
            # The denylist and the rate limits (moderation/gate.py).
            trigger = await self._admit(message, trigger)
            if trigger is None:
                return
            if self._pluralkit is not None and not await self._pluralkit.claim(message):
                return  # (D) the other copy (original or PluralKit's repost) was answered
            if trigger.reason == "help":
                await self._sender.post_plain(message.channel_id, await self.help_text())
                return
            # (D) group_replies: each character answers after the previous one, seeing it.
            grouped = len(trigger.personalities) > 1 and await self._group_replies(message)
            after: str | None = None
            for index, personality in enumerate(trigger.personalities):
                job_id = await self.start_turn(message, personality, index, after_job_id=after)
                after = job_id if grouped else None

    async def _group_replies(self, message: IncomingMessage) -> bool:
        """`group_replies` in the cascade of this user in this channel (no character level)."""
        if self._settings is None:
            return False
        resolved = await self._settings.resolve(
            None, user_id=message.author_id, channel_id=message.channel_id,
            parent_channel_id=message.thread_parent_id,
        )  # fmt: skip
        return resolved.group_replies

    async def _admit(self, message: IncomingMessage, trigger: Trigger) -> Trigger | None:
        admission = await self._gate.admit(
            user_id=message.author_id, guild_id=message.guild_id, channel_id=message.channel_id,
            parent_channel_id=message.thread_parent_id,
            slugs=[p.slug for p in trigger.personalities], request_id=f"msg-{message.id}",
        )  # fmt: skip
        notice = admission.notice
        if notice is not None:
            await self._gate.tell(message.author_id, message.channel_id, notice,
                                  reply_to=message.id)  # fmt: skip
        if admission.denied or admission.limited is not None:
            return None
        kept = [p for p in trigger.personalities if p.slug in admission.slugs]
        return Trigger(kept, trigger.reason)

    async def admit_chat(
        self, interaction: hikari.CommandInteraction, personality: Personality
    ) -> str | None:
        """For /chat, once deferred: None if it may go on, else what to tell the user
        privately (a denied user gets a bare refusal that says nothing more)."""
        admission = await self._gate.admit(
            user_id=str(interaction.user.id),
            guild_id=str(interaction.guild_id) if interaction.guild_id else None,
            channel_id=str(interaction.channel_id),
            parent_channel_id=thread_parent_of(interaction.channel),
            slugs=[personality.slug], request_id=f"chat-{interaction.id}",
        )  # fmt: skip
        if admission.denied:
            return "This isn't available here."
        if admission.limited is not None:
            return limit_text(admission.limited)
        return None

    # -- 2. a turn starts: ticket first, then the job -------------------------------------------

    async def start_turn(
        self,
        message: IncomingMessage,
        personality: Personality,
        index: int,
        *,
        after_job_id: str | None = None,
    ) -> str:
        """A character's reply to the message is under way; its job id."""
        in_thread = message.thread_parent_id is not None
        delivery = Delivery(
            kind="dm" if message.is_dm else "channel",
            channel_id=message.thread_parent_id if in_thread else message.channel_id,
            guild_id=message.guild_id,
            thread_id=message.channel_id if in_thread else None,
            reply_to_message_id=message.id,
        )
        request = GenerationRequest(
            request_id=request_id_for(message.id, personality),
            personality=personality,
            message=message.content,
            attachments=message.attachments,
            user_id=message.author_id,
            user_name=message.author_name,
            channel_id=message.channel_id,
            parent_channel_id=message.thread_parent_id,
            guild_id=message.guild_id,
            location="a direct message" if message.is_dm else None,
            source_message_id=message.id,
            delivery=delivery,
            after_job_id=after_job_id,
        )
        job_id = job_id_for(request.request_id)
        if await self._submit(request, order_of(message.created_at, index)):
            if message.is_dm:
                await self._state.set_dm_personality(message.author_id, personality.slug)
            await self._typing.start(
                job_id, kind="channel", channel_id=message.channel_id,
                guild_id=message.guild_id, lasts=self._job_timeout,
            )  # fmt: skip
        return job_id

    async def start_chat(
        self,
        interaction: hikari.CommandInteraction,
        personality: Personality,
        text: str,
        request_id: str,
    ) -> None:
        """/chat, after it was deferred: the answer replaces the "thinking…" message."""
        job_id = job_id_for(request_id)
        age = datetime.now(interaction.created_at.tzinfo) - interaction.created_at
        await self._interactions.put(job_id, interaction.token, age_seconds=age.total_seconds())
        member = interaction.member
        request = GenerationRequest(
            request_id=request_id,
            personality=personality,
            message=text,
            user_id=str(interaction.user.id),
            user_name=member.display_name if member else interaction.user.display_name,
            channel_id=str(interaction.channel_id),
            parent_channel_id=thread_parent_of(interaction.channel),
            guild_id=str(interaction.guild_id) if interaction.guild_id else None,
            delivery=Delivery(
                kind="interaction",
                channel_id=str(interaction.channel_id),
                guild_id=str(interaction.guild_id) if interaction.guild_id else None,
                interaction_id=str(interaction.id),
                application_id=str(interaction.application_id),
            ),
        )
        if await self._submit(request, order_of(interaction.created_at, 0)):
            await self._typing.start(
                job_id, kind="interaction", channel_id=str(interaction.channel_id),
                guild_id=request.guild_id, lasts=self._job_timeout,
                application_id=str(interaction.application_id),
            )  # fmt: skip

    async def start_chime_in(
        self, interaction: hikari.CommandInteraction, personality: Personality, request_id: str
    ) -> bool:
        """(D) /chime-in, once deferred: the character answers the channel's recent
        conversation, posted in the channel (webhook) as any reply; False if already under way."""
        channel_id = str(interaction.channel_id)
        guild_id = str(interaction.guild_id) if interaction.guild_id else None
        parent_id = thread_parent_of(interaction.channel)
        member = interaction.member
        request = GenerationRequest(
            request_id=request_id,
            personality=personality,
            message="",
            chime_in=True,
            user_id=str(interaction.user.id),
            user_name=member.display_name if member else interaction.user.display_name,
            channel_id=channel_id,
            parent_channel_id=parent_id,
            guild_id=guild_id,
            location="a direct message" if guild_id is None else None,
            delivery=Delivery(
                kind="dm" if guild_id is None else "channel",
                channel_id=parent_id or channel_id,
                guild_id=guild_id,
                thread_id=channel_id if parent_id else None,
            ),
        )
        if not await self._submit(request, order_of(interaction.created_at, 0)):
            return False
        await self._typing.start(
            job_id_for(request_id), kind="channel", channel_id=channel_id, guild_id=guild_id,
            lasts=self._job_timeout,
        )  # fmt: skip
        return True

    async def _submit(self, request: GenerationRequest, order: float) -> bool:
        """The ticket goes in first, so no result can ever arrive for a lane that does not
        expect it; a duplicate's ticket is the same ticket. True if a new job started."""
        job_id = job_id_for(request.request_id)
        personality = request.personality
        assert request.delivery is not None
        await self._lanes.add(
            Ticket(
                job_id=job_id,
                delivery=request.delivery,
                speaker=Speaker(display_name=personality.display_name,
                                avatar_url=personality.avatar_url),
                personality_slug=personality.slug,
                error_message=personality.error_message,
                order=order,  # Discord's clock orders; ours times (they may disagree)
                created_at=time.time(),
            )
        )  # fmt: skip
        submission = await self._jobs.submit(request)
        with log_context(job_id=job_id, personality=personality.slug):
            if submission.duplicate:
                log.info("message already handled; not starting another generation")
                return False
            log.debug("generation requested")
        return True

    # -- 2b. (C) a new reply to an earlier turn: Regenerate, an edited trigger ------------------

    async def regenerate(
        self, old: ReplyRecord, request_id: str, *, message: str | None = None
    ) -> str | None:
        """A new reply to the turn `old` answered (its message edited to `message`, if
        given), edited into `old`'s messages in place; the new job id, or None when it cannot
        be (a /chat answer whose interaction has expired) or is already under way."""
        job_id = job_id_for(request_id)
        delivery = old.delivery
        if delivery.kind == "interaction":
            token = await self._interactions.get(old.job_id)
            if token is None:
                return None
            await self._interactions.put(job_id, token, age_seconds=0.0)
        personality = await self._personalities.get(old.personality) or old.request.personality
        request = old.request.model_copy(
            update={
                "request_id": request_id,
                "personality": personality,
                "message": old.request.message if message is None else message,
                "regenerates": old.job_id,
                "created_at": datetime.now(UTC),
            }
        )
        await self._records.adopt(job_id, old.message_ids)
        if not await self._submit(request, order_of(datetime.now(UTC), 0)):
            return None
        await self._typing.start(
            job_id, kind="channel", channel_id=delivery.thread_id or delivery.channel_id,
            guild_id=delivery.guild_id, lasts=self._job_timeout,
        )  # fmt: skip
        return job_id

    async def admit_again(self, record: ReplyRecord, request_id: str) -> bool:
        """(C) Whether the requester may have `record`'s turn answered again (an edited
        trigger): the denylist and the rate limits, as for a new message; no notice."""
        admission = await self._gate.admit(
            user_id=record.requester_id, guild_id=record.guild_id,
            channel_id=record.channel_id or record.delivery.channel_id,
            parent_channel_id=record.request.parent_channel_id, slugs=[record.personality],
            request_id=request_id,
        )  # fmt: skip
        return (
            not admission.denied
            and admission.limited is None
            and record.personality in admission.slugs
        )

    async def delete_reply(self, record: ReplyRecord) -> None:
        """Delete reply: its messages removed from Discord (raises DeliveryError when Discord
        refuses: then nothing else is done), its turn dropped from history, its memory
        forgotten (also a write still pending), its record gone."""
        target = await self.target_of(record.job_id, record.delivery)
        for index, message_id in enumerate(record.message_ids):
            await self._sender.remove(target, message_id, index=index)
        if self.replies is not None:
            await self.replies.forget(record)

    async def target_of(self, job_id: str, delivery: Delivery) -> Target:
        """Where a delivered reply's messages are (to delete them)."""
        if delivery.kind == "interaction":
            token = await self._interactions.get(job_id)
            if token is not None and delivery.application_id:
                return Target("interaction", delivery.channel_id, interaction_token=token,
                              application_id=delivery.application_id)  # fmt: skip
            return Target("dm" if delivery.guild_id is None else "channel", delivery.channel_id)
        return Target(delivery.kind, delivery.channel_id, thread_id=delivery.thread_id)

    # -- 3. the result is in: post it ------------------------------------------------------------

    async def post_reply(
        self,
        ticket: Ticket,
        result: GenerationResult | None,
        failure: GenerationFailure | None,
        record: DeliveryRecord,
    ) -> None:
        """Post the reply (or the failure, in the personality's voice), resuming after the
        chunks already posted. Raises DeliveryError when Discord refuses."""
        if result is not None:
            text = reply_text(result)
        else:
            category = failure.category if failure is not None else "timeout"
            text = failure_text(in_voice(ticket.error_message, category), failure)
        # Each chunk posted (a streamed reply's messages edited to them: delivery/posting.py).
        chunks = reply_chunks(text, ticket.speaker.display_name)
        target = await self.poster.put_all(
            ticket, await self._target(ticket), record, chunks, fallback=_channel_target(ticket)
        )
        if result is not None and result.private_notice:
            await self._tell_privately(result.request.user_id, result.private_notice)
        if result is not None and result.remember and self._memory is not None:
            # Only a reply that is out is remembered; the write is a job of its own.
            exchange = self._memory.exchange_of(result, [str(m) for m in record.posted.values()])
            if exchange is not None:
                await self._memory.remember_later(exchange)
        if target.kind != "interaction":
            await self._state.remember_author(list(record.posted.values()), ticket.personality_slug)
        if result is not None and self.replies is not None:  # (C) Inspect, Regenerate, Delete
            posted = [record.posted[i] for i in sorted(record.posted)]
            await self.replies.delivered(result, ticket.delivery, posted)

    async def _tell_privately(self, user_id: str, notice: str) -> None:
        """A notice for the requester alone (e.g. their own API key was refused), by DM, after
        the reply is posted. Made once by the worker; a user who takes no DMs goes untold (the
        channel heard that their key failed), and delivery never retries for it."""
        try:
            await self._sender.post_dm(user_id, notice)
        except DeliveryError as error:
            log.info("could not send a private notice", category=error.category)

    async def settled(self, ticket: Ticket) -> None:
        """The reply is posted, or never will be: the typing indicator ends."""
        await self._typing.stop(ticket.job_id)

    async def target(self, ticket: Ticket) -> Target:
        """Where the ticket's reply goes (the live phase of a streamed reply posts there too)."""
        return await self._target(ticket)

    async def _target(self, ticket: Ticket) -> Target:
        delivery = ticket.delivery
        if delivery.kind == "interaction":
            token = await self._interactions.get(ticket.job_id)
            if token is not None and delivery.application_id:
                return Target("interaction", delivery.channel_id, interaction_token=token,
                              application_id=delivery.application_id)  # fmt: skip
            return _channel_target(ticket)
        return Target(delivery.kind, delivery.channel_id, thread_id=delivery.thread_id)

    async def help_text(self) -> str:
        return await help_text(self._personalities)


def _channel_target(ticket: Ticket) -> Target:
    """Where an interaction's answer goes once the interaction can no longer be answered."""
    delivery = ticket.delivery
    return Target("dm" if delivery.guild_id is None else "channel", delivery.channel_id)


def order_of(created_at: datetime, index: int) -> float:
    """Orders replies by the time of their message, then by mention order within it."""
    return float(int(created_at.timestamp() * 1000) * 10 + min(index, 9))


def request_id_for(message_id: str, personality: Personality) -> str:
    """Deterministic, so a replayed MESSAGE_CREATE maps onto the job that already exists."""
    digest = hashlib.sha256(personality.slug.encode()).hexdigest()[:12]
    return f"msg-{message_id}-{digest}"


async def help_text(personalities: PersonalityDirectory) -> str:
    names = [p.display_name for p in await personalities.list() if p.public][:25]
    listed = ", ".join(f"**{name}**" for name in names) or "(none yet)"
    return (
        "Hi! I host AI characters. Talk to one by writing `@Name` in a message, reply to "
        "one of their messages to keep going, or DM me after talking to one. "
        f"`/chat` works too, and `/chime-in` has one join the conversation.\n"
        f"Characters here: {listed}\n"
        "Right-click a reply > Apps to regenerate, delete or inspect it. "
        "Make your own with `/character create`, tune replies with `/settings` and `/preset`, "
        "bring your own API key with `/settings apikey set`, and forget what you said with "
        "`/history clear`. Moderators: `/channel activate` makes a character answer a whole "
        "channel; `/channel settings` and `/deny` keep it in bounds."
    )


__all__ = ["MessagePath", "help_text", "order_of", "request_id_for", "visible_to"]
