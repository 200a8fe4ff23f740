"""/help."""

from __future__ import annotations

import lightbulb

from tzurot.discord.commands.common import CommandServices, Personalities


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    @client.register()
    class Help(lightbulb.SlashCommand, name="help", description="How to talk to the characters"):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            await ctx.edit_response(-1, await services.path.help_text())
