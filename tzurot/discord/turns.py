"""A chat turn: from a triggering Discord message to a queued generation per personality."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from tzurot.ai.contracts import Delivery, GenerationRequest
from tzurot.conversations import ChatTurn, TranscriptStore
from tzurot.discord.sender import ReplySender
from tzurot.discord.state import DiscordState
from tzurot.discord.triggers import IncomingMessage, TriggerResolver
from tzurot.discord.typing import TypingKeeper
from tzurot.jobs import JobQueue
from tzurot.logs import get_logger, log_context
from tzurot.personalities.models import Personality
from tzurot.personalities.store import PersonalityDirectory

log = get_logger(__name__)

DISCORD_EPOCH_MS = 1_420_070_400_000


def snowflake_ms(snowflake: str) -> int:
    return (int(snowflake) >> 22) + DISCORD_EPOCH_MS


def order_score(message_id: str, index: int) -> float:
    """Orders replies by the time of their message, then by mention order within it."""
    return float(snowflake_ms(message_id) * 10 + min(index, 9))


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
        f"`/chat` works too.\nCharacters here: {listed}"
    )


class TurnStarter:
    def __init__(
        self,
        resolver: TriggerResolver,
        jobs: JobQueue,
        personalities: PersonalityDirectory,
        transcripts: TranscriptStore,
        state: DiscordState,
        typing: TypingKeeper,
        sender: ReplySender,
    ) -> None:
        self._resolver = resolver
        self._jobs = jobs
        self._personalities = personalities
        self._transcripts = transcripts
        self._state = state
        self._typing = typing
        self._sender = sender

    async def on_message(self, message: IncomingMessage, bot_id: str) -> None:
        with log_context(channel_id=message.channel_id, user_id=message.author_id):
            trigger = await self._resolver.resolve(message, bot_id)
            if trigger is None:
                return
            if trigger.reason == "help":
                await self._sender.post_plain(
                    message.channel_id, await help_text(self._personalities)
                )
                return
            for index, personality in enumerate(trigger.personalities):
                await self._start(message, personality, index)

    async def _start(self, message: IncomingMessage, personality: Personality, index: int) -> None:
        if index == 0:
            await self._transcripts.append(
                message.channel_id,
                ChatTurn(
                    role="user",
                    speaker=message.author_name,
                    content=message.content,
                    at=datetime.fromtimestamp(snowflake_ms(message.id) / 1000, UTC),
                    personality=personality.slug,
                    user_id=message.author_id,
                    message_id=message.id,
                ),
            )
        in_thread = message.thread_parent_id is not None
        delivery = Delivery(
            kind="dm" if message.is_dm else "channel",
            channel_id=message.thread_parent_id if in_thread else message.channel_id,
            thread_id=message.channel_id if in_thread else None,
            reply_to_message_id=message.id,
        )
        request = GenerationRequest(
            request_id=request_id_for(message.id, personality),
            personality=personality.slug,
            message=message.content,
            user_id=message.author_id,
            user_name=message.author_name,
            channel_id=message.channel_id,
            guild_id=message.guild_id,
            location="a direct message" if message.is_dm else None,
            source_message_id=message.id,
            delivery=delivery,
        )
        submission = await self._jobs.submit(request)
        with log_context(job_id=submission.job_id, personality=personality.slug):
            if submission.duplicate:
                log.info("message already handled; not starting another generation")
                return
            await self._state.expect_reply(
                message.channel_id, submission.job_id, order_score(message.id, index)
            )
            if message.is_dm:
                await self._state.set_dm_personality(message.author_id, personality.slug)
            self._typing.start(submission.job_id, message.channel_id)
