"""/deny add | remove | browse: who may not talk to the characters.

`target` is a user (a mention or an id) or a server (its id); `scope` is one of:

- `bot`: denied everywhere. Only the bot owner (BOT_OWNER_ID) may add or remove these; the
  target may be a user or a server.
- `server`: a user denied in this server. Members with Manage Server.
- `channel`: a user denied in this channel (and its threads, when run in the parent channel).
  Members with Manage Channels or Manage Messages in it.
- `personality`: a user (or a whole server) denied one character, everywhere. That
  character's owner.

The bot owner may do all of these anywhere, and can never be denied. `remove` follows the rules
of `add` for the same scope and place. `browse` lists what the caller may manage: everything
for the bot owner; in a server, its server and channel entries to its moderators; the entries
of their own characters to character owners. A denied user's messages get no answer, no error
and no job (tzurot/moderation/gate.py); a denied user's /chat gets a bare ephemeral refusal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import hikari
import lightbulb

from tzurot.discord.commands.common import (
    CommandRefusal,
    CommandServices,
    Personalities,
    fit,
    has_permission,
    is_bot_owner,
)
from tzurot.moderation import SCOPES, DenyEntry, DenylistFull, Scope, new_entry
from tzurot.personalities.models import Personality

_TARGET = re.compile(r"^(?:<@!?(\d{15,22})>|(\d{15,22}))$")
_MAX_LISTED = 30
_MODERATE_CHANNEL = (hikari.Permissions.MANAGE_CHANNELS, hikari.Permissions.MANAGE_MESSAGES)


@dataclass(frozen=True)
class Place:
    scope: Scope
    place: str
    guild_id: str | None
    where: str  # for the answer: "everywhere", "in this server", ...


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    deny = lightbulb.Group("deny", "Keep a user or a server from talking to the characters")
    scope_choices: list[lightbulb.Choice[str]] = [lightbulb.Choice(s, str(s)) for s in SCOPES]

    denylist = services.community.denylist

    async def place_for(
        ctx: lightbulb.Context, scope: str, personality_ref: str | None, kind: str
    ) -> Place:
        """Where an entry of `scope` applies for this invocation, if the caller may manage it."""
        user_id = str(ctx.user.id)
        owner = is_bot_owner(services, user_id)
        guild = str(ctx.guild_id) if ctx.guild_id else None
        if scope == "bot":
            if not owner:
                raise CommandRefusal("Only the bot's owner can deny at bot scope.")
            return Place("bot", "", None, "everywhere")
        if scope == "personality":
            if not personality_ref:
                raise CommandRefusal("Say which character: the `personality` option.")
            found = await services.personalities.get(personality_ref)
            if found is None or not (owner or _owns(found, user_id)):
                raise CommandRefusal("Only a character's owner can deny people that character.")
            return Place("personality", found.slug, None, f"from **{found.display_name}**")
        if kind == "server":
            raise CommandRefusal("A server can only be denied at bot or personality scope.")
        if guild is None:
            raise CommandRefusal(f"Scope {scope} works in a server, not in DMs.")
        if scope == "server":
            if not (owner or has_permission(ctx, hikari.Permissions.MANAGE_GUILD)):
                raise CommandRefusal("You need the Manage Server permission for scope server.")
            return Place("server", guild, guild, "in this server")
        if scope == "channel":
            if not (owner or any(has_permission(ctx, p) for p in _MODERATE_CHANNEL)):
                raise CommandRefusal(
                    "You need Manage Channels or Manage Messages in this channel for scope channel."
                )
            return Place("channel", str(ctx.channel_id), guild, f"in <#{ctx.channel_id}>")
        raise CommandRefusal(f"Unknown scope `{scope[:20]}`: bot, server, channel or personality.")

    def parse_target(ctx: lightbulb.Context, raw: str) -> tuple[str, str]:
        match = _TARGET.match(raw.strip())
        if match is None:
            raise CommandRefusal("The target must be a user (a mention or an id) or a server id.")
        target = match.group(1) or match.group(2)
        if match.group(1):
            return target, "user"
        cache = getattr(ctx.client.app, "cache", None)
        is_guild = str(ctx.guild_id) == target or (
            cache is not None and cache.get_guild(hikari.Snowflake(target)) is not None
        )
        return target, "server" if is_guild else "user"

    @deny.register()
    class DenyAdd(lightbulb.SlashCommand, name="add", description="Deny a user or a server"):
        target = lightbulb.string("target", "A user (mention or id) or a server id", max_length=40)
        scope = lightbulb.string("scope", "Where the denial applies", choices=scope_choices)
        personality = lightbulb.string(
            "personality", "The character (scope personality)", autocomplete=known.suggest,
            default=None,
        )  # fmt: skip
        reason = lightbulb.string("reason", "Why (kept with the entry)", max_length=200,
                                  default=None)  # fmt: skip

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            try:
                target, kind = parse_target(ctx, self.target)
                if services.community.owner_id == target:
                    raise CommandRefusal("The bot's owner can't be denied.")
                place = await place_for(ctx, self.scope, self.personality, kind)
                entry = new_entry(
                    target=target, kind="server" if kind == "server" else "user",
                    scope=place.scope, place=place.place, added_by=str(ctx.user.id),
                    guild_id=place.guild_id, reason=_clean(self.reason),
                )  # fmt: skip
                try:
                    new = await denylist.add(entry)
                except DenylistFull as error:
                    raise CommandRefusal(str(error)) from None
            except CommandRefusal as refusal:
                await ctx.edit_response(-1, refusal.message)
                return
            who = _who(entry)
            await ctx.edit_response(
                -1, f"{who} is {'now' if new else 'still'} denied {place.where}."
            )

    @deny.register()
    class DenyRemove(lightbulb.SlashCommand, name="remove", description="Lift a denial"):
        target = lightbulb.string("target", "A user (mention or id) or a server id", max_length=40)
        scope = lightbulb.string("scope", "Where the denial applies", choices=scope_choices)
        personality = lightbulb.string(
            "personality", "The character (scope personality)", autocomplete=known.suggest,
            default=None,
        )  # fmt: skip

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            try:
                target, kind = parse_target(ctx, self.target)
                # Removal does not depend on what the target is: a server entry can be lifted
                # by whoever may lift entries of that scope here.
                place = await place_for(ctx, self.scope, self.personality, "user")
                removed = await denylist.remove(place.scope, place.place, target)
            except CommandRefusal as refusal:
                await ctx.edit_response(-1, refusal.message)
                return
            shown = f"<@{target}>" if kind == "user" else f"server `{target}`"
            await ctx.edit_response(
                -1,
                f"{shown} is no longer denied {place.where}."
                if removed
                else f"{shown} was not denied {place.where}.",
            )

    @deny.register()
    class DenyBrowse(lightbulb.SlashCommand, name="browse", description="The denials you manage"):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            entries = await denylist.browse()
            user_id = str(ctx.user.id)
            owner = is_bot_owner(services, user_id)
            guild = str(ctx.guild_id) if ctx.guild_id else None
            mine = {p.slug for p in await services.personalities.list() if _owns(p, user_id)}
            server_mod = guild is not None and has_permission(ctx, hikari.Permissions.MANAGE_GUILD)
            channel_mod = guild is not None and any(
                has_permission(ctx, p) for p in _MODERATE_CHANNEL
            )

            def shown(entry: DenyEntry) -> bool:
                if owner:
                    return True
                if entry.scope == "personality":
                    return entry.place in mine
                if entry.scope == "server":
                    return entry.place == guild and (server_mod or channel_mod)
                if entry.scope == "channel":
                    return entry.guild_id == guild and (server_mod or channel_mod)
                return False

            visible = [e for e in entries if shown(e)]
            if not visible:
                await ctx.edit_response(-1, "No denials that you manage.")
                return
            lines = [_line(e) for e in visible[:_MAX_LISTED]]
            if len(visible) > _MAX_LISTED:
                lines.append(f"…and {len(visible) - _MAX_LISTED} more.")
            await ctx.edit_response(-1, fit("\n".join(lines)))

    client.register(deny)


def _owns(personality: Personality, user_id: str) -> bool:
    return personality.owner_id is not None and str(personality.owner_id) == user_id


def _who(entry: DenyEntry) -> str:
    return f"<@{entry.target}>" if entry.kind == "user" else f"server `{entry.target}`"


def _line(entry: DenyEntry) -> str:
    why = f": {entry.reason}" if entry.reason else ""
    added = f"by <@{entry.added_by}>, <t:{int(entry.added_at)}:d>"
    return f"• {_who(entry)}: {_where(entry)} ({added}){why}"


def _where(entry: DenyEntry) -> str:
    if entry.scope == "bot":
        return "everywhere"
    if entry.scope == "server":
        return f"in server `{entry.place}`"
    if entry.scope == "channel":
        return f"in <#{entry.place}>"
    return f"from character `{entry.place}`"


def _clean(reason: str | None) -> str | None:
    if not reason:
        return None
    text = "".join(ch for ch in reason if ch.isprintable()).strip()
    text = text.replace("@everyone", "@\u200beveryone").replace("@here", "@\u200bhere")
    return text[:200] or None
