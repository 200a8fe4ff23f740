"""/chat personality message: deferred at once, answered by delivery when the reply is ready."""

from __future__ import annotations

import lightbulb

from tzurot.ai.contracts import new_request_id
from tzurot.discord.commands.common import CommandServices, Personalities


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    @client.register()
    class Chat(lightbulb.SlashCommand, name="chat", description="Talk to a personality"):
        personality = lightbulb.string("personality", "Who to talk to", autocomplete=known.suggest)
        message = lightbulb.string("message", "What to say", max_length=4000)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            # Denylist and rate limits first (two fast Redis calls), so a refusal can still be
            # the ephemeral first answer rather than a public "thinking…".
            found = await known.find(self.personality, str(ctx.user.id))
            refusal = await services.path.admit_chat(ctx.interaction, found) if found else None
            if refusal is not None:
                await ctx.respond(refusal, ephemeral=True)
                return
            await ctx.defer()
            if found is None:
                await ctx.edit_response(-1, f"I don't know anyone called `{self.personality}`.")
                return
            await services.path.start_chat(ctx.interaction, found, self.message, new_request_id())
