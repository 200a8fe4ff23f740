"""Slash commands (hikari-lightbulb): /chat, /character list|view, /history clear, /help.

Every handler that does I/O defers first, well inside Discord's 3 seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightbulb

from tzurot.ai.contracts import Delivery, GenerationRequest, new_request_id
from tzurot.conversations import TranscriptStore
from tzurot.discord.delivery import InteractionRegistry
from tzurot.discord.state import DiscordState
from tzurot.discord.turns import help_text
from tzurot.discord.typing import TypingKeeper
from tzurot.jobs import JobQueue
from tzurot.personalities.models import Personality
from tzurot.personalities.store import PersonalityDirectory

# How long /chat waits before saying the answer will come later (a deferred reply can be
# edited for 15 minutes; the delivery consumer edits it whenever the answer arrives).
CHAT_WAIT_SECONDS = 600.0
STILL_WORKING = "⏳ Still thinking… the answer will appear here when it's ready."


@dataclass
class CommandServices:
    jobs: JobQueue
    personalities: PersonalityDirectory
    transcripts: TranscriptStore
    state: DiscordState
    typing: TypingKeeper
    interactions: InteractionRegistry
    chat_wait_seconds: float = CHAT_WAIT_SECONDS


def _visible(p: Personality, user_id: str) -> bool:
    return p.public or p.owner_id == user_id


def register_commands(client: lightbulb.Client, services: CommandServices) -> None:
    async def suggest(ctx: lightbulb.AutocompleteContext[str]) -> None:
        typed = str(ctx.focused.value or "").casefold()
        user_id = str(ctx.interaction.user.id)
        names = [
            p.name
            for p in await services.personalities.list()
            if _visible(p, user_id)
            and (typed in p.name.casefold() or any(typed in a.casefold() for a in p.aliases))
        ]
        await ctx.respond(names[:25])

    async def find(ref: str, user_id: str) -> Personality | None:
        found = await services.personalities.get(ref)
        return found if found is not None and _visible(found, user_id) else None

    @client.register()
    class Chat(lightbulb.SlashCommand, name="chat", description="Talk to a personality"):
        personality = lightbulb.string("personality", "Who to talk to", autocomplete=suggest)
        message = lightbulb.string("message", "What to say", max_length=4000)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer()
            user_id = str(ctx.user.id)
            found = await find(self.personality, user_id)
            if found is None:
                await ctx.edit_response(-1, f"I don't know anyone called `{self.personality}`.")
                return
            request = GenerationRequest(
                request_id=new_request_id(),
                personality=found.slug,
                message=self.message,
                user_id=user_id,
                user_name=ctx.member.display_name if ctx.member else ctx.user.display_name,
                channel_id=str(ctx.channel_id),
                guild_id=str(ctx.guild_id) if ctx.guild_id else None,
                delivery=Delivery(
                    kind="interaction",
                    channel_id=str(ctx.channel_id),
                    interaction_id=str(ctx.interaction.id),
                ),
            )
            services.interactions.application_id = str(ctx.interaction.application_id)
            job_id = services.jobs.job_id_for(request.request_id)
            # Registered before the job exists, so delivery can never miss it.
            services.interactions.add(job_id, ctx.interaction.token)
            await services.jobs.submit(request)
            view = await services.jobs.wait(job_id, services.chat_wait_seconds)
            still_pending = job_id in services.interactions.tokens
            if (view is None or not view.done) and still_pending:
                await ctx.edit_response(-1, STILL_WORKING)

    character = lightbulb.Group("character", "The characters you can talk to")

    @character.register()
    class CharacterList(lightbulb.SlashCommand, name="list", description="List characters"):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            user_id = str(ctx.user.id)
            shown = [p for p in await services.personalities.list() if _visible(p, user_id)]
            lines = [f"• **{p.display_name}** (`{p.slug}`)" for p in shown[:50]]
            await ctx.edit_response(-1, "\n".join(lines) or "No characters yet.")

    @character.register()
    class CharacterView(lightbulb.SlashCommand, name="view", description="Show a character"):
        name = lightbulb.string("name", "Which character", autocomplete=suggest)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            found = await find(self.name, str(ctx.user.id))
            await ctx.edit_response(-1, describe(found) if found else "No such character.")

    client.register(character)

    history = lightbulb.Group("history", "Conversation history")

    @history.register()
    class HistoryClear(
        lightbulb.SlashCommand, name="clear", description="Forget a character's conversation here"
    ):
        personality = lightbulb.string("personality", "Which character", autocomplete=suggest)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            found = await find(self.personality, str(ctx.user.id))
            if found is None:
                await ctx.edit_response(-1, "No such character.")
                return
            removed = await services.transcripts.clear(str(ctx.channel_id), found.slug)
            await ctx.edit_response(
                -1, f"Forgot {removed} messages with **{found.display_name}** in this channel."
            )

    client.register(history)

    @client.register()
    class Help(lightbulb.SlashCommand, name="help", description="How to talk to the characters"):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            await ctx.edit_response(-1, await help_text(services.personalities))


def describe(p: Personality) -> str:
    aka = f" (aka {', '.join(p.aliases)})" if p.aliases else ""
    parts: list[str] = [f"**{p.display_name}**{aka}"]
    card: dict[str, Any] = p.card.model_dump()
    for field, value in card.items():
        if value:
            parts.append(f"**{field.replace('_', ' ').capitalize()}:** {value[:300]}")
    text = "\n".join(parts)
    return text if len(text) <= 2000 else text[:1999] + "…"
