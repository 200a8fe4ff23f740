"""What /memory shows: its views (text and components), custom ids and small helpers.

The commands and the handlers of their buttons, menus and modals are in memory.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import hikari
import lightbulb

from tzurot.discord.commands.common import (
    AUTOCOMPLETE_LIMIT,
    CommandRefusal,
    CommandServices,
    Personalities,
    fit,
    page_buttons,
    paginate,
)
from tzurot.discord.interactions_router import Expired, Routed, custom_id
from tzurot.memory.models import DM_VENUE, Fact, MemoryRecord, venue_of

PAGE = "memory:page"
PICK = "memory:pick"
LOCK = "memory:lock"
FORGET = "memory:forget"
PURGE = "memory:purge"
FACTS = "memory:facts"
FACT_PICK = "memory:fact"
FACT_ADD = "memory:fadd"
FACT_EDIT = "memory:fedit"
FACT_SAVE = "memory:fsave"
FACT_LOCK = "memory:flock"
FACT_DELETE = "memory:fdel"

PAGE_SIZE = 5
FACTS_PAGE_SIZE = 4
SEARCH_RESULTS = 8
SEARCH_FLOOR = 0.05  # the service ranks everything; below this a "match" is noise
SNIPPET_CHARS = 280
SEARCH_SNIPPET_CHARS = 160
QUERY_MAX = 300
REF_MAX = 100
MEMORY_ID_MAX = 64
SHORT_ID = 8
MIN_TYPED_ID = 4
SCAN_PAGE = 500
CONFIRM_FIELD = "confirm"
TOPIC_FIELD = "topic"
TEXT_FIELD = "text"
ALL = "*"
PURGE_WORD = "PURGE"
_REF_SLUG_MAX = 20
SCOPE_SAFE = re.compile(r"^[\w.-]{1,80}$")  # as MemoryScope has it
_ACTIONABLE_ID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_TYPED_ID = re.compile(r"^[a-z0-9._-]{1,64}$")
_FACT_KEY = re.compile(r"^[a-z0-9_]{1,60}$")
_PAGE_ARG = re.compile(r"^\d{1,5}$")
ON_OFF = [lightbulb.Choice("on", "on"), lightbulb.Choice("off", "off")]
NO_MENTIONS: dict[str, Any] = {
    "mentions_everyone": False,
    "user_mentions": False,
    "role_mentions": False,
}
NOTHING_YET = (
    "You have no memories yet: characters remember what you tell them as you talk "
    "(unless memory is off or you are incognito)."
)
MEMORY_DISABLED = (
    "*Long-term memory is turned off on this bot: nothing new is remembered or recalled. What "
    "was remembered before is still yours to see and remove.*"
)
HISTORY_KEPT = "Your channel history is kept: `/history clear` removes it."
MEMORY_OFF = (
    "`/settings set memory off` turns memory off entirely (nothing remembered or recalled)."
)

Rows = list[hikari.api.ComponentBuilder]
View = tuple[str, Rows]


class MemoryViews:
    """Looking up the user's characters and memories, and rendering what the commands show."""

    def __init__(self, services: CommandServices, known: Personalities) -> None:
        self.services = services
        self.memory = services.community.memory
        self.known = known

    async def answer(self, ctx: lightbulb.Context, body: Callable[[], Awaitable[View]]) -> None:
        """`answer`, with a word that memory is off on this bot when it is."""
        if self.memory.config.enabled:
            await answer(ctx, body)
            return

        async def noted() -> View:
            text, rows = await body()
            return f"{MEMORY_DISABLED}\n\n{text}", rows

        await answer(ctx, noted)

    # -- characters ------------------------------------------------------------------------------

    async def name_of(self, slug: str) -> str:
        found = await self.services.personalities.get(slug)
        return found.display_name if found is not None else slug

    async def which(self, user_id: str, ref: str | None) -> tuple[str, str]:
        """(slug, display name) of the character `ref` names, or, without `ref`, of the one
        character the user has memories with. CommandRefusal otherwise."""
        if ref and ref.strip():
            found = await self.known.find(ref, user_id)
            if found is not None:
                slug, name = found.slug, found.display_name
            else:
                # A character deleted (or made private) since: its memories are still theirs.
                folded = ref.strip().casefold()
                if folded not in await self.memory.characters_of(user_id):
                    raise CommandRefusal(f"I don't know anyone called `{shown(ref, 80)}`.")
                slug, name = folded, folded
            if not SCOPE_SAFE.match(slug):
                raise CommandRefusal(f"You have no memories with **{name}**.")
            return slug, name
        mine = await self.memory.characters_of(user_id)
        if not mine:
            raise CommandRefusal(NOTHING_YET)
        if len(mine) > 1:
            names = [await self.name_of(slug) for slug in mine[:10]]
            more = ", …" if len(mine) > 10 else ""
            raise CommandRefusal(
                f"You have memories with several characters ({', '.join(names)}{more}): "
                "say which with the `personality` option."
            )
        return mine[0], await self.name_of(mine[0])

    async def slug_of(self, ref: str, user_id: str) -> str:
        """The slug a custom id's `{ref}` stands for (Expired if it stands for none)."""
        if ref.startswith("~"):
            for slug in await self.memory.characters_of(user_id):
                if ref_of(slug) == ref:
                    return slug
            raise Expired()
        if not SCOPE_SAFE.match(ref):
            raise Expired()
        return ref

    async def suggest_characters(self, ctx: lightbulb.AutocompleteContext[str]) -> None:
        """The characters the user has memories with first; else every one they may see."""
        typed = str(ctx.focused.value or "").casefold()
        user_id = str(ctx.interaction.user.id)
        names: list[str] = []
        for slug in await self.memory.characters_of(user_id):
            found = await self.known.find(slug, user_id)
            name = found.name if found is not None else slug
            forms = [slug, name, *(found.aliases if found is not None else ())]
            if any(typed in form.casefold() for form in forms):
                names.append(name)
        if not names:
            await self.known.suggest(ctx)
            return
        await ctx.respond(names[:AUTOCOMPLETE_LIMIT])

    # -- memories -----------------------------------------------------------------------------

    async def find_memory(
        self, user_id: str, slugs: Sequence[str], typed: str
    ) -> tuple[str, MemoryRecord]:
        """(slug, memory) of the user's memory with this id: the full id (as autocomplete
        sends it) or the start of its short id (as `/memory browse` shows it)."""
        raw = typed.strip().strip("`#").strip()
        missing = CommandRefusal(f"You have no memory `{shown(typed, 40)}`.")
        if not _TYPED_ID.match(raw.casefold()):
            raise missing
        for slug in slugs:
            exact = await self.memory.get(user_id, slug, raw)
            if exact is not None:
                return slug, exact
        prefix = raw.casefold().removeprefix("m-")
        if len(prefix) < MIN_TYPED_ID:
            raise missing
        found: list[tuple[str, MemoryRecord]] = []
        for slug in slugs:
            found += [(slug, r) for r in await self._matching(user_id, slug, prefix)]
            if len(found) > 1:
                raise CommandRefusal(
                    "Several of your memories start with that; give more of the id."
                )
        if not found:
            raise missing
        return found[0]

    async def _matching(self, user_id: str, slug: str, prefix: str) -> list[MemoryRecord]:
        """The scope's memories whose short id starts with `prefix` (two at most)."""
        hits: list[MemoryRecord] = []
        offset = 0
        while True:
            records, total = await self.memory.browse(user_id, slug, offset=offset, limit=SCAN_PAGE)
            hits += [r for r in records if r.id.casefold().removeprefix("m-").startswith(prefix)]
            offset += SCAN_PAGE
            if len(hits) > 1 or not records or offset >= total:
                return hits

    async def browse_view(self, user_id: str, slug: str, page: int, here: str) -> View:
        name = await self.name_of(slug)
        records, total = await self.memory.browse(
            user_id, slug, offset=max(page, 0) * PAGE_SIZE, limit=PAGE_SIZE
        )
        pages = max(1, -(-total // PAGE_SIZE))
        if total and page >= pages:  # memories went meanwhile: show the last page there is
            page = pages - 1
            records, total = await self.memory.browse(
                user_id, slug, offset=page * PAGE_SIZE, limit=PAGE_SIZE
            )
        page = max(0, min(page, pages - 1))
        if not records:
            return (
                f"You have no memories with **{name}**. `/memory facts` shows what {name} "
                "knows about you.",
                [],
            )
        lines = [
            f"**Your memories with {name}**: {total}, newest first (page {page + 1} of {pages})"
        ]
        for record in records:
            lines.append(memory_line(record, here))
            lines.append(quote(record.text, SNIPPET_CHARS))
        lines.append("Pick one below to lock or delete it.")
        ref = ref_of(slug)
        rows: Rows = list(page_buttons(PAGE, page, pages, ref))
        picker = pick_row(custom_id(PICK, ref, page), records)
        if picker is not None:
            rows.append(picker)
        return fit("\n".join(lines)), rows

    async def memory_view(
        self, user_id: str, slug: str, record: MemoryRecord, page: int, here: str, note: str = ""
    ) -> View:
        name = await self.name_of(slug)
        head = f"{note}\n" if note else ""
        lock_note = (
            "Locked: it is kept when the oldest memories give way to new ones."
            if record.locked
            else "Unlocked: when there are too many, the oldest unlocked memories give way first."
        )
        text = (
            f"{head}**Memory `{short_id(record.id)}`** with **{name}** · "
            f"<t:{_ts(record.at)}:f> · {where(record.venue, here)}\n"
        )
        body = fit(quote(record.text, 1700), 2000 - len(text) - len(lock_note) - 2)
        ref = ref_of(slug)
        row = hikari.impl.MessageActionRowBuilder()
        if _ACTIONABLE_ID.match(record.id):
            row.add_interactive_button(
                hikari.ButtonStyle.SECONDARY,
                custom_id(LOCK, ref, page, 0 if record.locked else 1, record.id),
                label="Unlock" if record.locked else "Lock",
            )
            row.add_interactive_button(
                hikari.ButtonStyle.DANGER, custom_id(FORGET, ref, page, record.id), label="Delete"
            )
        row.add_interactive_button(
            hikari.ButtonStyle.SECONDARY, custom_id(PAGE, ref, page), label="◀ Your memories"
        )
        return f"{text}{body}\n{lock_note}", [row]

    # -- facts --------------------------------------------------------------------------------

    async def facts_view(
        self, user_id: str, slug: str, page: int, here: str, note: str = ""
    ) -> View:
        name = await self.name_of(slug)
        facts = await self.memory.facts(user_id, slug)
        shown_facts, page, pages = paginate(facts, page, FACTS_PAGE_SIZE)
        ref = ref_of(slug)
        head = f"{note}\n" if note else ""
        add = hikari.impl.MessageActionRowBuilder().add_interactive_button(
            hikari.ButtonStyle.PRIMARY, custom_id(FACT_ADD, ref), label="Add a fact"
        )
        if not facts:
            return (
                f"{head}**{name}** knows no facts about you yet. Facts are gathered from your "
                "conversations; you can also add one.",
                [add],
            )
        lines = [
            f"{head}**What {name} knows about you**: {len(facts)} facts, newest first "
            f"(page {page + 1} of {pages})"
        ]
        for fact in shown_facts:
            lock = " · 🔒 locked" if fact.locked else ""
            lines.append(
                f"• **{fact.key}**: {fact.text}\n-# <t:{_ts(fact.at)}:d> · "
                f"{where(fact.venue, here)}{lock}"
            )
        lines.append(f"Pick one below to edit, lock or delete it. Locked: {name} never changes it.")
        rows: Rows = list(page_buttons(FACTS, page, pages, ref))
        rows.append(add)
        menu = hikari.impl.MessageActionRowBuilder()
        picker = menu.add_text_menu(
            custom_id(FACT_PICK, ref, page), placeholder="A fact to edit, lock or delete",
            min_values=1, max_values=1,
        )  # fmt: skip
        for fact in shown_facts:
            picker.add_option(fact.key[:100], fact.key, description=fact.text[:100])
        rows.append(menu)
        return fit("\n".join(lines)), rows

    async def fact_view(
        self, user_id: str, slug: str, fact: Fact, here: str, note: str = ""
    ) -> View:
        name = await self.name_of(slug)
        head = f"{note}\n" if note else ""
        lock_note = (
            f"🔒 Locked: {name} never changes or forgets it; only you do."
            if fact.locked
            else f"Unlocked: {name} updates it when you say something new about it."
        )
        text = (
            f"{head}**{fact.key}**: {fact.text}\nNoted <t:{_ts(fact.at)}:f> · "
            f"{where(fact.venue, here)}\n{lock_note}"
        )
        ref = ref_of(slug)
        row = (
            hikari.impl.MessageActionRowBuilder()
            .add_interactive_button(
                hikari.ButtonStyle.PRIMARY, custom_id(FACT_EDIT, ref, fact.key), label="Edit"
            )
            .add_interactive_button(
                hikari.ButtonStyle.SECONDARY,
                custom_id(FACT_LOCK, ref, 0 if fact.locked else 1, fact.key),
                label="Unlock" if fact.locked else "Lock",
            )
            .add_interactive_button(
                hikari.ButtonStyle.DANGER, custom_id(FACT_DELETE, ref, fact.key), label="Delete"
            )
            .add_interactive_button(
                hikari.ButtonStyle.SECONDARY, custom_id(FACTS, ref, 0), label="◀ All facts"
            )
        )
        return fit(text), [row]

    async def fact_of(self, user_id: str, slug: str, key: str) -> Fact:
        for fact in await self.memory.facts(user_id, slug):
            if fact.key == key:
                return fact
        raise Expired("That fact no longer exists.")


# -- helpers ------------------------------------------------------------------------------------


def character_option(views: MemoryViews, description: str = "Which character") -> Any:
    return lightbulb.string(
        "personality", description, autocomplete=views.suggest_characters, default=None,
        max_length=REF_MAX,
    )  # fmt: skip


async def answer(ctx: lightbulb.Context, body: Callable[[], Awaitable[View]]) -> None:
    """Defer (ephemerally), then show what `body` returns, or the refusal it raised."""
    await ctx.defer(ephemeral=True)
    try:
        text, rows = await body()
    except CommandRefusal as refusal:
        text, rows = refusal.message, []
    await ctx.edit_response(-1, fit(text), components=rows, **NO_MENTIONS)


def here_of(interaction: Any) -> str:
    """The venue the command is used in (a server, or the user's DMs)."""
    guild_id = getattr(interaction, "guild_id", None)
    return venue_of(str(guild_id) if guild_id else None, str(interaction.channel_id))


def where(venue: str, here: str) -> str:
    """Where a memory or fact was made, as its owner reads it; never another server's name."""
    if venue == DM_VENUE:
        return "DMs"
    if venue.startswith("guild:"):
        return "this server" if venue == here else "another server"
    if venue == "terminal":
        return "the terminal"
    return "the API" if venue == "api" else "elsewhere"


def ref_of(slug: str) -> str:
    """A slug short enough for custom ids, or `~` and a hash of it."""
    if len(slug) <= _REF_SLUG_MAX:
        return slug
    return "~" + hashlib.sha256(slug.encode()).hexdigest()[:12]


def short_id(memory_id: str) -> str:
    return memory_id.removeprefix("m-")[:SHORT_ID]


def memory_line(record: MemoryRecord, here: str) -> str:
    lock = " · 🔒 locked" if record.locked else ""
    return f"`{short_id(record.id)}` · <t:{_ts(record.at)}:d> · {where(record.venue, here)}{lock}"


def quote(text: str, limit: int) -> str:
    """`text` (cut to `limit`) as a Markdown block quote."""
    lines = [line.strip() for line in fit(text.strip(), limit).splitlines() if line.strip()]
    return "\n".join(f"> {line}" for line in lines) or "> …"


def pick_row(cid: str, records: Sequence[MemoryRecord]) -> hikari.api.ComponentBuilder | None:
    """A select menu of these memories (None when none can be acted on)."""
    usable = [r for r in records if _ACTIONABLE_ID.match(r.id)]
    if not usable:
        return None
    row = hikari.impl.MessageActionRowBuilder()
    menu = row.add_text_menu(cid, placeholder="A memory to lock or delete", min_values=1,
                             max_values=1)  # fmt: skip
    for record in usable[:25]:
        snippet = " ".join(record.text.split())
        menu.add_option(
            f"{short_id(record.id)} · {record.at:%Y-%m-%d}", record.id,
            description=fit(snippet, 100),
        )  # fmt: skip
    return row


def shown(text: str | None, limit: int) -> str:
    """User-typed text echoed back: one line, no backticks, cut."""
    return fit(" ".join(str(text or "").replace("`", "'").split()), limit)


def _ts(at: datetime) -> int:
    return int(at.timestamp())


def plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def not_purged(what: str) -> str:
    return f"Not purged: the confirmation did not match (type {what}). Nothing was forgotten."


def on_off(value: Any) -> bool:
    if value not in ("on", "off"):
        raise CommandRefusal("The value is `on` or `off`.")
    return bool(value == "on")


def args_of(routed: Routed, count: int) -> list[str]:
    if len(routed.args) != count or not all(routed.args):
        raise Expired()
    return routed.args


def page_arg(arg: str) -> int:
    if not _PAGE_ARG.match(arg):
        raise Expired()
    return int(arg)


def key_arg(arg: str) -> str:
    if not _FACT_KEY.match(arg):
        raise Expired()
    return arg


def chosen_value(routed: Routed) -> str:
    interaction = routed.interaction
    values = interaction.values if isinstance(interaction, hikari.ComponentInteraction) else []
    if len(values) != 1 or not values[0]:
        raise Expired()
    return str(values[0])
