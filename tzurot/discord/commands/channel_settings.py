"""/channel settings setting value [enforce]: a moderator's value for this channel (or thread).

Needs Manage Channels. A channel value sits above the character and below the users' own
values; with `enforce:true` it beats those too (the original let users silently outrank their
moderators). `value: default` removes the channel's value. A thread's own value replaces its
parent channel's; a thread without one inherits it.
"""

from __future__ import annotations

import hikari
import lightbulb

from tzurot.discord.commands.common import (
    CommandServices,
    Personalities,
    has_permission,
)
from tzurot.discord.commands.settings import (
    CLEAR_WORDS,
    SETTING_CHOICES,
    model_note,
    parse_value,
    value_autocomplete,
)
from tzurot.settings.catalog import SettingError, spec_for

NEEDED = hikari.Permissions.MANAGE_CHANNELS


def register(group: lightbulb.Group, services: CommandServices, known: Personalities) -> None:
    community = services.community

    @group.register()
    class ChannelSettings(
        lightbulb.SlashCommand,
        name="settings",
        description="Set a value for this channel (moderators)",
    ):
        setting = lightbulb.string("setting", "Which setting", choices=SETTING_CHOICES)
        value = lightbulb.string(
            "value", "The value, or `default` to remove the channel's value", max_length=200,
            autocomplete=value_autocomplete(community, clearable=True),
        )  # fmt: skip
        enforce = lightbulb.boolean("enforce", "Also override users' own values", default=False)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            store = community.settings
            if ctx.guild_id is None:
                await ctx.edit_response(-1, "Channel settings are for server channels, not DMs.")
                return
            if not has_permission(ctx, NEEDED):
                await ctx.edit_response(
                    -1,
                    "Only members with the Manage Channels permission can change channel settings.",
                )
                return
            channel_id = str(ctx.channel_id)
            try:
                spec = spec_for(self.setting)
                if self.value.strip().casefold() in CLEAR_WORDS:
                    removed = await store.reset_channel(channel_id, spec.key)
                    await ctx.edit_response(
                        -1,
                        f"Removed this channel's `{spec.key}`."
                        if removed
                        else f"This channel had no `{spec.key}` of its own; nothing changed.",
                    )
                    return
                value = await parse_value(community, spec, self.value, str(ctx.user.id))
            except SettingError as exc:
                await ctx.edit_response(-1, f"Not changed: {exc}")
                return
            await store.set_channel(channel_id, spec.key, value, enforce=bool(self.enforce))
            how = (
                ", enforced: it overrides everyone's own value"
                if self.enforce
                else "; users' own values still win"
            )
            text = f"Set `{spec.key}` to **{spec.format(value)}** in this channel{how}."
            text += await model_note(community, spec, value, str(ctx.user.id))
            await ctx.edit_response(-1, text)
