"""Which personalities a Discord message is addressed to: @mentions, replies, DMs."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tzurot.attachments.models import AttachmentRef
from tzurot.discord.activation import Activations
from tzurot.discord.mentions import resolve_mentions
from tzurot.discord.state import ConversationState
from tzurot.personalities.models import Personality

# A private character is its owner's alone: every lookup below (mentions, the reply-to author,
# the DM sticky character) goes through this, and so do autocomplete and /chat.
from tzurot.personalities.service import visible_to
from tzurot.personalities.store import PersonalityDirectory

_REPLY_MAP_GRACE_SECONDS = 0.5


@dataclass(frozen=True)
class IncomingMessage:
    """What the trigger logic needs to know about a Discord message."""

    id: str
    channel_id: str
    guild_id: str | None
    author_id: str
    author_name: str
    content: str
    created_at: datetime
    from_bot: bool = False
    from_webhook: bool = False
    reply_to_id: str | None = None
    reply_to_webhook: bool = False  # the replied-to message was posted by a webhook
    thread_parent_id: str | None = None
    mentions_bot: bool = False
    attachments: tuple[AttachmentRef, ...] = ()
    # A PluralKit member's message (its webhook's, the author its sender): the id of the
    # sender's original message that PluralKit deleted and reposted (tzurot/discord/pluralkit.py).
    proxy_of: str | None = None

    @property
    def is_dm(self) -> bool:
        return self.guild_id is None


@dataclass(frozen=True)
class Trigger:
    personalities: list[Personality]
    reason: str  # "mention", "reply", "dm", "activation" or "help"


class TriggerResolver:
    def __init__(
        self,
        personalities: PersonalityDirectory,
        state: ConversationState,
        *,
        max_mentions: int,
        activations: Activations,
    ) -> None:
        self._personalities = personalities
        self._state = state
        self._max_mentions = max_mentions
        self._activations = activations

    async def resolve(self, message: IncomingMessage, bot_id: str) -> Trigger | None:
        if message.from_bot or message.from_webhook:
            return None  # never answer bots (or ourselves): no loops
        return await self._resolve(message, bot_id, lambda p: visible_to(p, message.author_id))

    async def could_trigger(self, message: IncomingMessage, bot_id: str) -> bool:
        """Whether the message would be answered if a person wrote it, whoever they are
        (private characters count): worth asking PluralKit about a webhook message."""
        if message.is_dm:
            return False
        return await self._resolve(message, bot_id, lambda _p: True) is not None

    async def _resolve(
        self, message: IncomingMessage, bot_id: str, shown: Callable[[Personality], bool]
    ) -> Trigger | None:
        async def visible_many(refs: Sequence[str]) -> dict[str, Personality]:
            found = await self._personalities.find_many(refs)
            return {ref: p for ref, p in found.items() if shown(p)}

        async def visible(ref: str) -> Personality | None:
            return (await visible_many([ref])).get(ref)

        content = _without_bot_mention(message.content, bot_id)
        mentioned = await resolve_mentions(
            content, visible_many, key=lambda p: p.slug, limit=self._max_mentions
        )
        if mentioned:
            return Trigger(mentioned, "mention")
        if message.reply_to_id is not None:
            slug = await self._state.author_of(message.reply_to_id)
            if slug is None and message.reply_to_webhook:
                # A reply can race the delivery that records who wrote the message.
                await asyncio.sleep(_REPLY_MAP_GRACE_SECONDS)
                slug = await self._state.author_of(message.reply_to_id)
            replied = await visible(slug) if slug else None
            if replied is not None:
                return Trigger([replied], "reply")
        if message.is_dm:
            slug = await self._state.dm_personality(message.author_id)
            sticky = await visible(slug) if slug else None
            return Trigger([sticky], "dm") if sticky else Trigger([], "help")
        if message.mentions_bot and not content.strip():
            return Trigger([], "help")
        # An activated channel (or its thread): no other trigger applied, so it answers.
        slug = await self._activations.active_slug(
            message.guild_id, message.channel_id, message.thread_parent_id
        )
        active = await visible(slug) if slug else None
        if active is not None:
            return Trigger([active], "activation")
        return None


def _without_bot_mention(content: str, bot_id: str) -> str:
    return re.sub(rf"<@!?{re.escape(bot_id)}>", "", content)


__all__ = ["IncomingMessage", "Trigger", "TriggerResolver", "visible_to"]
