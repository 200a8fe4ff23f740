"""/chime-in personality: a character joins the channel's conversation, with no new message.

The reply is posted in the channel under the character's name (its webhook), as any reply is;
the command itself is answered privately. The same gate as /chat applies: the character must be
visible to the user (a private one is its owner's alone), and the denylist and rate limits hold.
"""

from __future__ import annotations

import lightbulb

from tzurot.discord.commands.common import CommandServices, Personalities


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    @client.register()
    class ChimeIn(
        lightbulb.SlashCommand,
        name="chime-in",
        description="A character joins the conversation in this channel",
    ):
        personality = lightbulb.string("personality", "Who joins in", autocomplete=known.suggest)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            found = await known.find(self.personality, str(ctx.user.id))
            if found is None:
                await ctx.edit_response(-1, f"I don't know anyone called `{self.personality}`.")
                return
            refusal = await services.path.admit_chat(ctx.interaction, found)
            if refusal is not None:
                await ctx.edit_response(-1, refusal)
                return
            started = await services.path.start_chime_in(
                ctx.interaction, found, f"chime-{ctx.interaction.id}"
            )
            text = (
                f"**{found.display_name}** is joining the conversation…"
                if started
                else f"**{found.display_name}** is already on it."
            )
            await ctx.edit_response(-1, text)
