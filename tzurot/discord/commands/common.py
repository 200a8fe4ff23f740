"""What every command group shares: the services, personality autocomplete and lookup,
permission checks, and paging (slices and previous/next buttons)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import hikari
import lightbulb

from tzurot.conversations import TranscriptStore
from tzurot.discord.interactions_router import InteractionRouter, Refusal, custom_id
from tzurot.discord.message_path import MessagePath
from tzurot.discord.services import Community
from tzurot.discord.triggers import visible_to
from tzurot.personalities.models import Personality
from tzurot.personalities.store import PersonalityDirectory, PersonalityStore

AUTOCOMPLETE_LIMIT = 25
MESSAGE_LIMIT = 2000  # Discord's longest message content

T = TypeVar("T")


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
    return grants(member.permissions, permission)


def grants(granted: hikari.Permissions, permission: hikari.Permissions) -> bool:
    """Whether `granted` includes `permission` (Administrator includes everything)."""
    return bool(granted & hikari.Permissions.ADMINISTRATOR) or (granted & permission) == permission


def fit(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` cut to `limit` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def paginate(items: Sequence[T], page: int, size: int) -> tuple[Sequence[T], int, int]:
    """(the items on `page`, that page clamped to the ones there are, how many pages: 1 or
    more, also for no items)."""
    pages = max(1, (len(items) + size - 1) // size)
    page = max(0, min(page, pages - 1))
    return items[page * size : (page + 1) * size], page, pages


def page_buttons(
    prefix: str, page: int, pages: int, *args: str
) -> list[hikari.api.ComponentBuilder]:
    """Previous/next buttons (none for a single page); ids are `prefix:args...:page`."""
    if pages <= 1:
        return []
    row = hikari.impl.MessageActionRowBuilder()
    row.add_interactive_button(
        hikari.ButtonStyle.SECONDARY, custom_id(prefix, *args, max(page - 1, 0)),
        label="◀ Previous", is_disabled=page <= 0,
    )  # fmt: skip
    row.add_interactive_button(
        hikari.ButtonStyle.SECONDARY, custom_id(prefix, *args, min(page + 1, pages - 1)),
        label="Next ▶", is_disabled=page >= pages - 1,
    )  # fmt: skip
    return [row]


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
