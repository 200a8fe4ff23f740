"""What every command group shares: the services, personality autocomplete and lookup."""

from __future__ import annotations

from dataclasses import dataclass, field

import hikari
import lightbulb

from tzurot.conversations import TranscriptStore
from tzurot.discord.interactions_router import InteractionRouter, Refusal
from tzurot.discord.message_path import MessagePath
from tzurot.discord.services import Community
from tzurot.discord.triggers import visible_to
from tzurot.personalities.models import Personality
from tzurot.personalities.store import PersonalityDirectory, PersonalityStore

AUTOCOMPLETE_LIMIT = 25


@dataclass
class CommandServices:
    community: Community
    path: MessagePath
    # Modal submits and component clicks: `router.register(prefix, handler)` (see its module).
    router: InteractionRouter = field(default_factory=InteractionRouter)

    @property
    def personalities(self) -> PersonalityStore:
        return self.community.personalities

    @property
    def transcripts(self) -> TranscriptStore:
        return self.community.transcripts


class CommandRefusal(Refusal):
    """A refusal or bad input, answered to the user as this specific ephemeral message (also
    when raised from a modal or button handler: the interaction router answers it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_bot_owner(services: CommandServices, user_id: str) -> bool:
    """Whether `user_id` is BOT_OWNER_ID (no owner configured: nobody is)."""
    owner = services.community.owner_id
    return owner is not None and owner == user_id


def has_permission(ctx: lightbulb.Context, permission: hikari.Permissions) -> bool:
    """Whether the invoking member has `permission` in this channel (Administrator counts;
    outside a server: never)."""
    member = ctx.interaction.member
    if member is None:
        return False
    granted = member.permissions
    return bool(granted & hikari.Permissions.ADMINISTRATOR) or (granted & permission) == permission


class Personalities:
    """Autocomplete and lookup of the personalities a user may see (public, or their own)."""

    def __init__(self, directory: PersonalityDirectory) -> None:
        self._directory = directory

    async def suggest(self, ctx: lightbulb.AutocompleteContext[str]) -> None:
        typed = str(ctx.focused.value or "").casefold()
        user_id = str(ctx.interaction.user.id)
        names = [
            p.name
            for p in await self._directory.list()
            if visible_to(p, user_id)
            and (typed in p.name.casefold() or any(typed in a.casefold() for a in p.aliases))
        ]
        await ctx.respond(names[:AUTOCOMPLETE_LIMIT])

    async def find(self, ref: str, user_id: str) -> Personality | None:
        found = await self._directory.get(ref)
        return found if found is not None and visible_to(found, user_id) else None
