"""What every command group shares: the services, personality autocomplete and lookup."""

from __future__ import annotations

from dataclasses import dataclass

import lightbulb

from tzurot.conversations import TranscriptStore
from tzurot.discord.message_path import MessagePath
from tzurot.discord.triggers import visible_to
from tzurot.personalities.models import Personality
from tzurot.personalities.store import PersonalityDirectory

AUTOCOMPLETE_LIMIT = 25


@dataclass
class CommandServices:
    personalities: PersonalityDirectory
    transcripts: TranscriptStore
    path: MessagePath


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
