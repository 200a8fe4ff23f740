"""/history clear | undo | view | stats: a user's own conversation in this channel.

A user's own turns are their messages and the characters' replies to them (ChatTurn.user_id);
nobody else's turns are touched. `clear [personality]` removes them (only that character's when
given) and keeps them 24 h for `undo [personality]`, which restores the last clear. `view`
shows the newest turns, ephemeral, paginated with buttons (custom id
`history-view:{page}:{slug}`, routed, so any process answers a click). `stats` counts them.
Clearing the whole channel for everyone is `/channel reset` (commands/channel.py).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import hikari
import lightbulb

from tzurot.conversations import ChatTurn
from tzurot.discord.commands.common import CommandServices, Personalities, fit
from tzurot.discord.interactions_router import Refusal, Routed, custom_id
from tzurot.personalities.models import Personality

VIEW_PREFIX = "history-view"
PAGE_TURNS = 6
TURN_CHARS = 280
ALL = "-"
# History and long-term memory are separate: clearing one never touches the other.
MEMORIES_KEPT = (
    "Your long-term memories are kept (history and memory are separate): "
    "`/memory purge` removes them."
)


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    history = lightbulb.Group("history", "Your conversation history in this channel")

    def only_character() -> Any:
        """The optional `personality` option of clear, undo and view."""
        return lightbulb.string(
            "personality", "Only this character", autocomplete=known.suggest, default=None
        )

    async def deferred_which(
        ctx: lightbulb.Context, ref: str | None
    ) -> tuple[bool, Personality | None]:
        """Defer (ephemerally), then (True, the named character or None when none is named),
        or (False, None) after answering that nobody is called `ref`."""
        await ctx.defer(ephemeral=True)
        if not ref:
            return True, None
        found = await known.find(ref, str(ctx.user.id))
        if found is None:
            await ctx.edit_response(-1, f"I don't know anyone called `{ref[:80]}`.")
            return False, None
        return True, found

    @history.register()
    class HistoryClear(
        lightbulb.SlashCommand,
        name="clear",
        description="Forget your messages (and the replies to them) in this channel",
    ):
        personality = only_character()

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            known_ref, found = await deferred_which(ctx, self.personality)
            if not known_ref:
                return
            removed = await services.transcripts.clear_user(
                str(ctx.channel_id), str(ctx.user.id), found.slug if found else None
            )
            with_whom = f" with **{found.display_name}**" if found else ""
            if not removed:
                await ctx.edit_response(
                    -1, f"You have no messages{with_whom} here to forget. {MEMORIES_KEPT}"
                )
                return
            await ctx.edit_response(
                -1,
                f"Forgot {removed} messages{with_whom} in this channel (yours and the replies "
                f"to them). `/history undo` brings them back within 24 hours. {MEMORIES_KEPT}",
            )

    @history.register()
    class HistoryUndo(
        lightbulb.SlashCommand, name="undo", description="Bring back what your last clear forgot"
    ):
        personality = only_character()

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            known_ref, found = await deferred_which(ctx, self.personality)
            if not known_ref:
                return
            restored = await services.transcripts.undo(
                str(ctx.channel_id), str(ctx.user.id), found.slug if found else None
            )
            if restored is None:
                await ctx.edit_response(
                    -1, "There is no clear to undo here (or it is over 24 h old)."
                )
                return
            await ctx.edit_response(
                -1, f"Restored {restored} messages in this channel. {MEMORIES_KEPT}"
            )

    @history.register()
    class HistoryView(
        lightbulb.SlashCommand, name="view", description="Show your latest turns in this channel"
    ):
        personality = only_character()

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            known_ref, found = await deferred_which(ctx, self.personality)
            if not known_ref:
                return
            slug = found.slug if found else None
            turns = await services.transcripts.user_turns(
                str(ctx.channel_id), str(ctx.user.id), slug
            )
            text, rows = render_page(turns, 0, slug)
            await ctx.edit_response(-1, text, components=rows)

    async def on_page(routed: Routed) -> None:
        if len(routed.args) != 2 or not routed.args[0].isdigit():
            raise Refusal("That page is not valid.")
        page, slug = int(routed.args[0]), routed.args[1]
        wanted = None if slug == ALL else slug
        turns = await services.transcripts.user_turns(
            str(routed.interaction.channel_id), routed.user_id, wanted
        )
        text, rows = render_page(turns, page, wanted)
        await routed.update(text, components=rows)

    services.router.register(VIEW_PREFIX, on_page)

    @history.register()
    class HistoryStats(
        lightbulb.SlashCommand,
        name="stats",
        description="How much of your conversation is kept here",
    ):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            turns = await services.transcripts.user_turns(str(ctx.channel_id), str(ctx.user.id))
            if not turns:
                await ctx.edit_response(-1, "Nothing of your conversation is kept in this channel.")
                return
            mine = sum(1 for t in turns if t.role == "user")
            replies = len(turns) - mine
            by_character = Counter(t.personality or "?" for t in turns)
            per = ", ".join(f"`{slug}`: {count}" for slug, count in by_character.most_common(10))
            await ctx.edit_response(
                -1,
                f"In this channel: {mine} of your messages and {replies} replies to you are "
                f"kept (since <t:{int(turns[0].at.timestamp())}:f>).\nBy character: {per}",
            )

    client.register(history)


def render_page(
    turns: list[ChatTurn], page: int, slug: str | None
) -> tuple[str, list[hikari.api.ComponentBuilder]]:
    """Page 0 is the newest turns; each page reads oldest first."""
    if not turns:
        return "Nothing of your conversation is kept in this channel.", []
    pages = max(1, -(-len(turns) // PAGE_TURNS))
    page = min(max(page, 0), pages - 1)
    end = len(turns) - page * PAGE_TURNS
    shown = turns[max(0, end - PAGE_TURNS) : end]
    lines = [f"**Your conversation here** (page {page + 1} of {pages}, newest last)"]
    for turn in shown:
        content = (
            turn.content if len(turn.content) <= TURN_CHARS else turn.content[:TURN_CHARS] + "…"
        )
        content = content.replace("\n", " ")
        lines.append(f"<t:{int(turn.at.timestamp())}:t> **{turn.speaker}:** {content}")
    text = fit("\n".join(lines))
    tag = slug or ALL
    row = (
        hikari.impl.MessageActionRowBuilder()
        .add_interactive_button(
            hikari.ButtonStyle.SECONDARY, custom_id(VIEW_PREFIX, page + 1, tag),
            label="◀ Older", is_disabled=page + 1 >= pages,
        )
        .add_interactive_button(
            hikari.ButtonStyle.SECONDARY, custom_id(VIEW_PREFIX, page - 1 if page else 0, tag),
            label="Newer ▶", is_disabled=page == 0,
        )
    )  # fmt: skip
    return text, [row]
