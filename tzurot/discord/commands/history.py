"""/history clear."""

from __future__ import annotations

import lightbulb

from tzurot.discord.commands.common import CommandServices, Personalities


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    history = lightbulb.Group("history", "Conversation history")

    @history.register()
    class HistoryClear(
        lightbulb.SlashCommand, name="clear", description="Forget a character's conversation here"
    ):
        personality = lightbulb.string("personality", "Which character", autocomplete=known.suggest)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            found = await known.find(self.personality, str(ctx.user.id))
            if found is None:
                await ctx.edit_response(-1, "No such character.")
                return
            removed = await services.transcripts.clear(str(ctx.channel_id), found.slug)
            await ctx.edit_response(
                -1, f"Forgot {removed} messages with **{found.display_name}** in this channel."
            )

    client.register(history)
