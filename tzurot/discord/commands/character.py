"""/character list | view."""

from __future__ import annotations

from typing import Any

import lightbulb

from tzurot.discord.commands.common import CommandServices, Personalities
from tzurot.discord.triggers import visible_to
from tzurot.personalities.models import Personality


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    character = lightbulb.Group("character", "The characters you can talk to")

    @character.register()
    class CharacterList(lightbulb.SlashCommand, name="list", description="List characters"):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            user_id = str(ctx.user.id)
            shown = [p for p in await services.personalities.list() if visible_to(p, user_id)]
            lines = [f"• **{p.display_name}** (`{p.slug}`)" for p in shown[:50]]
            await ctx.edit_response(-1, "\n".join(lines) or "No characters yet.")

    @character.register()
    class CharacterView(lightbulb.SlashCommand, name="view", description="Show a character"):
        personality = lightbulb.string("personality", "Which character", autocomplete=known.suggest)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            found = await known.find(self.personality, str(ctx.user.id))
            await ctx.edit_response(-1, describe(found) if found else "No such character.")

    client.register(character)


def describe(p: Personality) -> str:
    aka = f" (aka {', '.join(p.aliases)})" if p.aliases else ""
    parts: list[str] = [f"**{p.display_name}**{aka}"]
    card: dict[str, Any] = p.card.model_dump()
    for field, value in card.items():
        if value:
            parts.append(f"**{field.replace('_', ' ').capitalize()}:** {value[:300]}")
    text = "\n".join(parts)
    return text if len(text) <= 2000 else text[:1999] + "…"
