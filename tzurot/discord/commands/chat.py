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
            # Acknowledged first, whatever follows: Discord allows 3 s, and in a burst even a
            # few Redis round trips before the answer add up (bench.discord, row 5).
            await ctx.defer()
            found = await known.find(self.personality, str(ctx.user.id))
            if found is None:
                await ctx.edit_response(-1, f"I don't know anyone called `{self.personality}`.")
                return
            refusal = await services.path.admit_chat(ctx.interaction, found)
            if refusal is not None:
                # Private, as the denylist and the rate limits must be: the public "thinking…"
                # goes, and the refusal is an ephemeral follow-up only this user sees.
                await ctx.delete_response(-1)
                await ctx.respond(refusal, ephemeral=True)
                return
            await services.path.start_chat(ctx.interaction, found, self.message, new_request_id())
