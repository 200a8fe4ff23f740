"""/channel activate | deactivate | browse | reset: a channel's character, and its history.

- `activate personality` (Manage Messages): the character answers every message in this channel
  (and its threads, unless a thread is set itself). Mentions of another character and replies
  to another character's message still go to that one; bots and webhooks are never answered.
- `deactivate` (Manage Messages): stop. In a thread whose parent is activated, the thread is
  marked "deactivated here" so it stops inheriting.
- `browse`: the activated channels of this server.
- `reset` (Manage Messages): clears the channel's history for everyone, after a typed
  confirmation: a modal asking for the channel's name or RESET (routed by custom id
  `channel-reset:{channel}`, so any process can take the submit).
"""

from __future__ import annotations

import hikari
import lightbulb

from tzurot.discord.activation import TooManyActivations, thread_parent_of
from tzurot.discord.commands.common import (
    CommandServices,
    Personalities,
    fit,
    grants,
    has_permission,
)
from tzurot.discord.interactions_router import Refusal, Routed, custom_id

RESET_PREFIX = "channel-reset"
CONFIRM_FIELD = "confirm"
NEEDS_MANAGE_MESSAGES = "You need the Manage Messages permission in this channel for that."
ONLY_IN_SERVERS = "Channel commands work in a server's channels, not in DMs."
_MAX_LISTED = 40


def register(group: lightbulb.Group, services: CommandServices, known: Personalities) -> None:
    activations = services.community.activations

    @group.register()
    class ChannelActivate(
        lightbulb.SlashCommand,
        name="activate",
        description="Have a character answer every message in this channel",
    ):
        personality = lightbulb.string("personality", "Which character", autocomplete=known.suggest)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            if (refusal := moderator_refusal(ctx)) is not None:
                await ctx.edit_response(-1, refusal)
                return
            found = await known.find(self.personality, str(ctx.user.id))
            if found is None:
                await ctx.edit_response(
                    -1, f"I don't know anyone called `{self.personality[:80]}`."
                )
                return
            try:
                await activations.activate(
                    str(ctx.guild_id), str(ctx.channel_id), found.slug, str(ctx.user.id)
                )
            except TooManyActivations as error:
                await ctx.edit_response(-1, f"{error}; deactivate one first.")
                return
            await ctx.edit_response(
                -1,
                f"**{found.display_name}** now answers every message in <#{ctx.channel_id}>. "
                "Mentions of other characters still go to them; `/channel deactivate` stops it.",
            )

    @group.register()
    class ChannelDeactivate(
        lightbulb.SlashCommand,
        name="deactivate",
        description="Stop a character answering every message in this channel",
    ):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            if (refusal := moderator_refusal(ctx)) is not None:
                await ctx.edit_response(-1, refusal)
                return
            stopped = await activations.deactivate(
                str(ctx.guild_id), str(ctx.channel_id), str(ctx.user.id),
                parent_id=thread_parent_of(ctx.interaction.channel),
            )  # fmt: skip
            await ctx.edit_response(
                -1,
                "No character answers every message here any more."
                if stopped
                else "No character was answering every message here.",
            )

    @group.register()
    class ChannelBrowse(
        lightbulb.SlashCommand, name="browse", description="The activated channels of this server"
    ):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            if ctx.guild_id is None:
                await ctx.edit_response(-1, ONLY_IN_SERVERS)
                return
            entries = await activations.browse(str(ctx.guild_id))
            if not entries:
                await ctx.edit_response(-1, "No channel of this server is activated.")
                return
            found = await services.personalities.find_many(
                [e.slug for e in entries if e.slug is not None]
            )
            lines = []
            for entry in entries[:_MAX_LISTED]:
                if entry.slug is None:
                    lines.append(f"• <#{entry.channel_id}>: deactivated here (not inherited)")
                    continue
                who = found.get(entry.slug)
                name = who.display_name if who is not None else f"{entry.slug} (gone)"
                lines.append(
                    f"• <#{entry.channel_id}>: **{name}** (by <@{entry.by}>, <t:{int(entry.at)}:R>)"
                )
            if len(entries) > _MAX_LISTED:
                lines.append(f"…and {len(entries) - _MAX_LISTED} more.")
            await ctx.edit_response(-1, fit("\n".join(lines)))

    @group.register()
    class ChannelReset(
        lightbulb.SlashCommand,
        name="reset",
        description="Clear this channel's conversation history for everyone",
    ):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            # The modal must be the first answer: no defer, and only fast checks before it.
            if (refusal := moderator_refusal(ctx)) is not None:
                await ctx.respond(refusal, ephemeral=True)
                return
            name = getattr(ctx.interaction.channel, "name", None) or "this channel"
            row = hikari.impl.ModalActionRowBuilder().add_text_input(
                CONFIRM_FIELD,
                f"Type {_expected_name(name)} or RESET to confirm"[:45],
                placeholder="RESET",
                required=True,
                max_length=100,
            )
            await ctx.respond_with_modal(
                "Reset this channel's history",
                custom_id(RESET_PREFIX, ctx.channel_id),
                components=[row],
            )

    async def on_reset(routed: Routed) -> None:
        interaction = routed.interaction
        if not routed.is_modal or not routed.args:
            raise Refusal("That confirmation is not valid.")
        channel_id = routed.args[0]
        if str(interaction.channel_id) != channel_id or interaction.guild_id is None:
            raise Refusal("That confirmation belongs to another channel.")
        if not grants(routed.member_permissions, hikari.Permissions.MANAGE_MESSAGES):
            raise Refusal(NEEDS_MANAGE_MESSAGES)
        typed = (routed.values.get(CONFIRM_FIELD) or "").strip()
        name = getattr(interaction.channel, "name", None) or ""
        if not _confirmed(typed, name):
            raise Refusal("Not reset: the confirmation did not match. Nothing was cleared.")
        await routed.defer(ephemeral=True)
        removed = await services.transcripts.clear(channel_id)
        await routed.reply(f"Reset: forgot {removed} messages of this channel, for everyone.")

    services.router.register(RESET_PREFIX, on_reset)


def moderator_refusal(ctx: lightbulb.Context) -> str | None:
    """Why the invoker may not change this channel's character or history (None: they may)."""
    if ctx.guild_id is None:
        return ONLY_IN_SERVERS
    if not has_permission(ctx, hikari.Permissions.MANAGE_MESSAGES):
        return NEEDS_MANAGE_MESSAGES
    return None


def _expected_name(name: str) -> str:
    return name if name.startswith("#") or name == "this channel" else f"#{name}"


def _confirmed(typed: str, channel_name: str) -> bool:
    if typed == "RESET":
        return True
    bare = typed.removeprefix("#").strip()
    return bool(channel_name) and bare.casefold() == channel_name.casefold()
