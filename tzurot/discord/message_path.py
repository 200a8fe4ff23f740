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
from datetime import datetime

import hikari

from tzurot.ai.contracts import Delivery, GenerationFailure, GenerationRequest, GenerationResult
from tzurot.ai.error_messages import in_voice
from tzurot.discord.activation import thread_parent_of
from tzurot.discord.delivery.errors import DeliveryError
from tzurot.discord.delivery.lanes import Lanes, Speaker, Ticket
from tzurot.discord.delivery.records import DeliveryRecord, DeliveryRecords
from tzurot.discord.delivery.render import bot_prefix, failure_text, reply_text
from tzurot.discord.delivery.sender import ReplySender, Target
from tzurot.discord.delivery.splitting import split_message
from tzurot.discord.interactions import InteractionTokens
from tzurot.discord.state import ConversationState
from tzurot.discord.triggers import IncomingMessage, Trigger, TriggerResolver, visible_to
from tzurot.discord.typing import TypingBoard
from tzurot.jobs import JobQueue, job_id_for
from tzurot.logs import get_logger, log_context
from tzurot.memory.service import MemoryService
from tzurot.moderation.gate import Gate, limit_text
from tzurot.personalities.models import Personality
from tzurot.personalities.store import PersonalityDirectory

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
    ) -> None:
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

    # -- 1. a message comes in ---------------------------------------------------------------

    async def on_message(self, message: IncomingMessage, bot_id: str) -> None:
        with log_context(channel_id=message.channel_id, user_id=message.author_id):
            trigger = await self._triggers.resolve(message, bot_id)
            if trigger is None:
                return
            if trigger.reason != "help" and not message.content.strip() and not message.attachments:
                return  # nothing to answer (a sticker, an embed-only message)
            # The denylist and the rate limits (moderation/gate.py).
            trigger = await self._admit(message, trigger)
            if trigger is None:
                return
            if trigger.reason == "help":
                await self._sender.post_plain(message.channel_id, await self.help_text())
                return
            for index, personality in enumerate(trigger.personalities):
                await self.start_turn(message, personality, index)

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
        self, message: IncomingMessage, personality: Personality, index: int
    ) -> None:
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
        )
        if await self._submit(request, order_of(message.created_at, index)):
            if message.is_dm:
                await self._state.set_dm_personality(message.author_id, personality.slug)
            await self._typing.start(
                job_id_for(request.request_id), kind="channel", channel_id=message.channel_id,
                guild_id=message.guild_id, lasts=self._job_timeout,
            )  # fmt: skip

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
        speaker = ticket.speaker
        # Room for the name in front, so every chunk also fits when posted as the bot itself.
        chunks = split_message(text, limit=MESSAGE_LIMIT - len(bot_prefix(speaker.display_name)))
        target = await self._target(ticket)
        previous = ticket.delivery.reply_to_message_id
        for index, chunk in enumerate(chunks):
            if index in record.posted:
                previous = record.posted[index]
                continue
            message_id = None
            if record.resumed and not (target.kind == "interaction" and index == 0):
                message_id = await self._sender.find_posted(target, speaker, chunk, after=previous)
            if message_id is None:
                try:
                    message_id = await self._sender.post(target, speaker, chunk, index=index)
                except DeliveryError as error:
                    if target.kind != "interaction" or error.category != "interaction_expired":
                        raise
                    log.info("interaction expired; answering in the channel instead")
                    target = _channel_target(ticket)
                    message_id = await self._sender.post(target, speaker, chunk, index=index)
            await self._records.posted(ticket.job_id, index, message_id)
            record.posted[index] = previous = message_id
        if result is not None and result.private_notice:
            await self._tell_privately(result.request.user_id, result.private_notice)
        if result is not None and result.remember and self._memory is not None:
            # Only a reply that is out is remembered; the write is a job of its own.
            exchange = self._memory.exchange_of(result, [str(m) for m in record.posted.values()])
            if exchange is not None:
                await self._memory.remember_later(exchange)
        if target.kind != "interaction":
            await self._state.remember_author(list(record.posted.values()), ticket.personality_slug)

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
        f"`/chat` works too.\nCharacters here: {listed}\n"
        "Make your own with `/character create`, tune replies with `/settings` and `/preset`, "
        "bring your own API key with `/settings apikey set`, and forget what you said with "
        "`/history clear`. Moderators: `/channel activate` makes a character answer a whole "
        "channel; `/channel settings` and `/deny` keep it in bounds."
    )


__all__ = ["MessagePath", "help_text", "order_of", "request_id_for", "visible_to"]
