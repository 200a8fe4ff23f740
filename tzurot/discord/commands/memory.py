"""/memory browse | search | delete | purge | share | incognito | facts: a user's long-term memory.

Everything here is the invoking user's own: every lookup is made in their scope (their user id
with one character), so another user's memory id is simply not found. Answers are ephemeral.

- `browse [personality]`: the memories, newest first, five a page, each with its short id, its
  date and where it was made ("this server", "DMs", "another server": another server is never
  named); a select menu opens one to lock or delete it.
- `search query [personality]`: the memories most like `query`, from every venue.
- `delete memory [personality]`: by its short id (autocomplete offers the recent ones; without
  `personality` every character's memories are searched for the id).
- `purge [personality]`: a modal asks for the character's name (or PURGE, without
  `personality`: every character). Channel history is kept.
- `share on|off`, `incognito on|off`: the user's choices (MemoryPrefs).
- `facts [personality]`: what the character knows about the user; a select menu opens one to
  edit (a modal: topic + text), lock/unlock or delete it; a button adds one.

Without `personality` the command uses the one character the user has memories with, and asks
which when there are several. Buttons, menus and modals go through the interaction router; their
ids carry what the handler needs (`{ref}` is the character's slug, or `~` and a hash of a slug
too long for a custom id, looked up among the user's characters):

  memory:page:{ref}:{page}               browse page (and "back to the list")
  memory:pick:{ref}:{page}               select: one memory, shown with its actions
  memory:lock:{ref}:{page}:{0|1}:{id}    lock / unlock that memory
  memory:forget:{ref}:{page}:{id}        delete that memory
  memory:purge:{ref|*}                   the purge confirmation modal
  memory:facts:{ref}:{page}              facts page (and "back to the facts")
  memory:fact:{ref}:{page}               select: one fact, shown with its actions
  memory:fadd:{ref}                      button: the "add a fact" modal
  memory:fedit:{ref}:{key}               button: the edit modal
  memory:fsave:{ref}[:{key}]             the fact modal's submit (key: the fact it edits)
  memory:flock:{ref}:{0|1}:{key}         lock / unlock a fact
  memory:fdel:{ref}:{key}                delete a fact
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import hikari
import lightbulb
from pydantic import ValidationError

from tzurot.discord.commands.common import (
    AUTOCOMPLETE_LIMIT,
    CommandRefusal,
    CommandServices,
    Personalities,
    fit,
    page_buttons,
    paginate,
)
from tzurot.discord.interactions_router import Expired, Refusal, Routed, custom_id
from tzurot.memory.embedders import EmbeddingError
from tzurot.memory.facts import fact_key
from tzurot.memory.models import DM_VENUE, MAX_FACT_CHARS, Fact, MemoryRecord, venue_of

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
_SCOPE_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
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
HISTORY_KEPT = "Your channel history is kept: `/history clear` removes it."
MEMORY_OFF = (
    "`/settings set memory off` turns memory off entirely (nothing remembered or recalled)."
)

Rows = list[hikari.api.ComponentBuilder]
View = tuple[str, Rows]


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    group = lightbulb.Group("memory", "What the characters remember about you")
    views = MemoryViews(services, known)
    _register_reading(group, views)
    _register_forgetting(group, views)
    _register_prefs(group, views)
    _register_facts(group, views)
    client.register(group)


class MemoryViews:
    """Looking up the user's characters and memories, and rendering what the commands show."""

    def __init__(self, services: CommandServices, known: Personalities) -> None:
        self.services = services
        self.memory = services.community.memory
        self.known = known

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
            if not _SCOPE_SAFE.match(slug):
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
        if not _SCOPE_SAFE.match(ref):
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


# -- browse, search ----------------------------------------------------------------------------


def _register_reading(group: lightbulb.Group, views: MemoryViews) -> None:
    router = views.services.router

    @group.register()
    class MemoryBrowse(
        lightbulb.SlashCommand, name="browse", description="Your memories with a character"
    ):
        personality = character_option(views)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            async def body() -> View:
                user_id = str(ctx.user.id)
                slug, _ = await views.which(user_id, self.personality)
                return await views.browse_view(user_id, slug, 0, here_of(ctx.interaction))

            await answer(ctx, body)

    @group.register()
    class MemorySearch(
        lightbulb.SlashCommand, name="search", description="Find your memories about something"
    ):
        query = lightbulb.string("query", "What to look for", max_length=QUERY_MAX)
        personality = character_option(views)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            async def body() -> View:
                user_id = str(ctx.user.id)
                query = " ".join(str(self.query or "").split())[:QUERY_MAX]
                if not any(ch.isalnum() for ch in query):
                    raise CommandRefusal("Type some words to search for.")
                slug, name = await views.which(user_id, self.personality)
                try:
                    found = await views.memory.search(user_id, slug, query, limit=SEARCH_RESULTS)
                except EmbeddingError:
                    raise CommandRefusal(
                        "Searching needs the embedding model, which is not answering right "
                        "now. Try again later, or `/memory browse`."
                    ) from None
                found = [hit for hit in found if hit.similarity >= SEARCH_FLOOR]
                if not found:
                    return f"Nothing of your memories with **{name}** matches that.", []
                here = here_of(ctx.interaction)
                lines = [f"**Your memories with {name}** most like “{shown(query, 100)}”:"]
                for hit in found:
                    lines.append(
                        f"{memory_line(hit.record, here)} · {max(hit.similarity, 0):.0%} alike"
                    )
                    lines.append(quote(hit.record.text, SEARCH_SNIPPET_CHARS))
                rows: Rows = []
                picker = pick_row(custom_id(PICK, ref_of(slug), 0), [h.record for h in found])
                if picker is not None:
                    rows.append(picker)
                return fit("\n".join(lines)), rows

            await answer(ctx, body)

    async def on_page(routed: Routed) -> None:
        ref, page = _args(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        text, rows = await views.browse_view(
            routed.user_id, slug, _page(page), here_of(routed.interaction)
        )
        await routed.update(text, components=rows)

    async def on_pick(routed: Routed) -> None:
        ref, page = _args(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        chosen = _chosen(routed)
        record = await views.memory.get(routed.user_id, slug, chosen)
        if record is None:
            raise Expired("That memory no longer exists.")
        text, rows = await views.memory_view(
            routed.user_id, slug, record, _page(page), here_of(routed.interaction)
        )
        await routed.update(text, components=rows)

    async def on_lock(routed: Routed) -> None:
        ref, page, flag, memory_id = _args(routed, 4)
        if flag not in ("0", "1"):
            raise Expired()
        slug = await views.slug_of(ref, routed.user_id)
        locked = flag == "1"
        if not await views.memory.set_memory_locked(routed.user_id, slug, memory_id, locked):
            raise Expired("That memory no longer exists.")
        record = await views.memory.get(routed.user_id, slug, memory_id)
        if record is None:
            raise Expired("That memory no longer exists.")
        note = "Locked." if locked else "Unlocked."
        text, rows = await views.memory_view(
            routed.user_id, slug, record, _page(page), here_of(routed.interaction), note
        )
        await routed.update(text, components=rows)

    async def on_forget(routed: Routed) -> None:
        ref, page, memory_id = _args(routed, 3)
        slug = await views.slug_of(ref, routed.user_id)
        if not await views.memory.delete(routed.user_id, slug, memory_id):
            raise Expired("That memory no longer exists.")
        text, rows = await views.browse_view(
            routed.user_id, slug, _page(page), here_of(routed.interaction)
        )
        await routed.update(
            fit(f"Deleted memory `{short_id(memory_id)}`.\n{text}"), components=rows
        )

    router.register(PAGE, on_page)
    router.register(PICK, on_pick)
    router.register(LOCK, on_lock)
    router.register(FORGET, on_forget)


# -- delete, purge -------------------------------------------------------------------------------


def _register_forgetting(group: lightbulb.Group, views: MemoryViews) -> None:
    memory = views.memory

    async def suggest_memories(ctx: lightbulb.AutocompleteContext[str]) -> None:
        """The user's recent memories (of the character named, else of all of them)."""
        typed = str(ctx.focused.value or "").strip().strip("`#").casefold()
        user_id = str(ctx.interaction.user.id)
        chosen = ctx.get_option("personality")
        ref = str(chosen.value) if chosen is not None and chosen.value else None
        slugs: list[str] = []
        if ref:
            with contextlib.suppress(CommandRefusal):
                slugs = [(await views.which(user_id, ref))[0]]
        else:
            slugs = [s for s in await memory.characters_of(user_id) if _SCOPE_SAFE.match(s)]
        records: list[MemoryRecord] = []
        for slug in slugs[:AUTOCOMPLETE_LIMIT]:
            page, _ = await memory.browse(user_id, slug, offset=0, limit=200 if typed else 25)
            records += [
                r for r in page
                if not typed or short_id(r.id).startswith(typed.removeprefix("m-"))
                or typed in r.text.casefold()
            ]  # fmt: skip
        records.sort(key=lambda r: r.at, reverse=True)
        choices = [
            (fit(f"{short_id(r.id)} · {r.at:%Y-%m-%d} · {' '.join(r.text.split())}", 100), r.id)
            for r in records[:AUTOCOMPLETE_LIMIT]
        ]
        await ctx.respond(choices)

    @group.register()
    class MemoryDelete(
        lightbulb.SlashCommand, name="delete", description="Forget one memory (by its id)"
    ):
        memory_ref = lightbulb.string(
            "memory", "The memory's id (as /memory browse shows it)",
            autocomplete=suggest_memories, max_length=MEMORY_ID_MAX,
        )  # fmt: skip
        personality = character_option(views)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            async def body() -> View:
                user_id = str(ctx.user.id)
                if self.personality:
                    slugs = [(await views.which(user_id, self.personality))[0]]
                else:
                    slugs = [s for s in await memory.characters_of(user_id)
                             if _SCOPE_SAFE.match(s)]  # fmt: skip
                    if not slugs:
                        raise CommandRefusal(NOTHING_YET)
                slug, record = await views.find_memory(user_id, slugs, str(self.memory_ref or ""))
                if not await memory.delete(user_id, slug, record.id):
                    raise CommandRefusal(f"You have no memory `{shown(self.memory_ref, 40)}`.")
                name = await views.name_of(slug)
                return (
                    f"Forgot memory `{short_id(record.id)}` with **{name}**:\n"
                    f"{quote(record.text, 400)}\n{HISTORY_KEPT}",
                    [],
                )

            await answer(ctx, body)

    @group.register()
    class MemoryPurge(
        lightbulb.SlashCommand,
        name="purge",
        description="Forget all your memories and facts with a character (or with all)",
    ):
        personality = character_option(views, "Only this character (default: every character)")

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            # The modal must be the first answer: no defer, and only quick lookups before it.
            user_id = str(ctx.user.id)
            mine = await memory.characters_of(user_id)
            title = "Forget all your memories"
            label, placeholder, ref = f"Type {PURGE_WORD} to confirm", PURGE_WORD, ALL
            try:
                if self.personality:
                    slug, name = await views.which(user_id, self.personality)
                    if slug not in mine:
                        raise CommandRefusal(f"You have no memories or facts with **{name}**.")
                    title = fit(f"Forget everything with {name}", 45)
                    label, placeholder = "Type the character's name to confirm", name
                    ref = ref_of(slug)
                elif not mine:
                    raise CommandRefusal("You have no memories or facts to purge.")
            except CommandRefusal as refusal:
                await ctx.respond(refusal.message, ephemeral=True, **NO_MENTIONS)
                return
            row = hikari.impl.ModalActionRowBuilder().add_text_input(
                CONFIRM_FIELD, label, placeholder=fit(placeholder, 100), required=True,
                max_length=100,
            )  # fmt: skip
            await ctx.respond_with_modal(title, custom_id(PURGE, ref), components=[row])

    async def on_purge(routed: Routed) -> None:
        if not routed.is_modal or len(routed.args) != 1:
            raise Refusal("That confirmation is not valid.")
        typed = " ".join((routed.values.get(CONFIRM_FIELD) or "").split()).casefold()
        user_id = routed.user_id
        if routed.args[0] == ALL:
            if typed != PURGE_WORD.casefold():
                raise Refusal(_not_purged(PURGE_WORD))
            slug, whom = None, "every character"
        else:
            slug = await views.slug_of(routed.args[0], user_id)
            found = await views.services.personalities.get(slug)
            names = {slug} if found is None else {slug, found.name, found.display_name}
            if typed not in {n.casefold() for n in names}:
                raise Refusal(_not_purged("the character's name"))
            whom = f"**{found.display_name if found else slug}**"
        await routed.defer(ephemeral=True)
        memories, facts = await memory.purge(user_id, slug)
        if not memories and not facts:
            await routed.reply(f"There was nothing to forget with {whom}. {HISTORY_KEPT}")
            return
        await routed.reply(
            f"Forgot {memories} {_plural(memories, 'memory', 'memories')} and {facts} "
            f"{_plural(facts, 'fact', 'facts')} of yours with {whom}. {HISTORY_KEPT}"
        )

    views.services.router.register(PURGE, on_purge)


# -- share, incognito -----------------------------------------------------------------------------


def _register_prefs(group: lightbulb.Group, views: MemoryViews) -> None:
    memory = views.memory

    @group.register()
    class MemoryShare(
        lightbulb.SlashCommand,
        name="share",
        description="Recall your memories from every server and DMs, everywhere",
    ):
        value = lightbulb.string("value", "on or off", choices=ON_OFF)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            async def body() -> View:
                on = _on_off(self.value)
                await memory.set_prefs(str(ctx.user.id), share=on)
                if on:
                    return (
                        "Sharing is **on**: your memories and facts from every server and from "
                        "your DMs are recalled everywhere, by the character they are with "
                        f"(only yours, never anyone else's). {MEMORY_OFF}",
                        [],
                    )
                return (
                    "Sharing is **off**: a character recalls only what you said in the same "
                    "server (and in DMs, only what you said in DMs). Nothing is deleted. "
                    f"{MEMORY_OFF}",
                    [],
                )

            await answer(ctx, body)

    @group.register()
    class MemoryIncognito(
        lightbulb.SlashCommand, name="incognito", description="Stop (or resume) remembering"
    ):
        value = lightbulb.string("value", "on or off", choices=ON_OFF)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            async def body() -> View:
                on = _on_off(self.value)
                await memory.set_prefs(str(ctx.user.id), incognito=on)
                if on:
                    return (
                        "Incognito is **on**: nothing new is remembered until you turn it off "
                        "(`/memory incognito off`). What is already remembered is still "
                        f"recalled. {MEMORY_OFF}",
                        [],
                    )
                return (
                    f"Incognito is **off**: your conversations are remembered again. {MEMORY_OFF}",
                    [],
                )

            await answer(ctx, body)


# -- facts ----------------------------------------------------------------------------------


def _register_facts(  # noqa: PLR0915 - one closure per subcommand and handler
    group: lightbulb.Group, views: MemoryViews
) -> None:
    memory = views.memory
    router = views.services.router

    @group.register()
    class MemoryFacts(
        lightbulb.SlashCommand, name="facts", description="What a character knows about you"
    ):
        personality = character_option(views)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            async def body() -> View:
                user_id = str(ctx.user.id)
                slug, _ = await views.which(user_id, self.personality)
                return await views.facts_view(user_id, slug, 0, here_of(ctx.interaction))

            await answer(ctx, body)

    async def on_facts(routed: Routed) -> None:
        ref, page = _args(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        text, rows = await views.facts_view(
            routed.user_id, slug, _page(page), here_of(routed.interaction)
        )
        await routed.update(text, components=rows)

    async def on_fact_pick(routed: Routed) -> None:
        ref, _page_arg = _args(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        fact = await views.fact_of(routed.user_id, slug, _key(_chosen(routed)))
        text, rows = await views.fact_view(routed.user_id, slug, fact, here_of(routed.interaction))
        await routed.update(text, components=rows)

    async def open_modal(routed: Routed, ref: str, fact: Fact | None) -> None:
        interaction = routed.interaction
        if not isinstance(interaction, hikari.ComponentInteraction):
            raise Expired()
        topic = hikari.impl.ModalActionRowBuilder().add_text_input(
            TOPIC_FIELD, "Topic (a few words, e.g. cat name)", max_length=60, required=True,
            value=fact.key.replace("_", " ") if fact else hikari.UNDEFINED,
        )  # fmt: skip
        text = hikari.impl.ModalActionRowBuilder().add_text_input(
            TEXT_FIELD, "The fact", style=hikari.TextInputStyle.PARAGRAPH,
            max_length=MAX_FACT_CHARS, required=True,
            value=fact.text if fact else hikari.UNDEFINED,
        )  # fmt: skip
        cid = custom_id(FACT_SAVE, ref, fact.key) if fact else custom_id(FACT_SAVE, ref)
        title = "Edit a fact" if fact else "Add a fact"
        await interaction.create_modal_response(title, cid, components=[topic, text])
        routed.answered = True

    async def on_fact_add(routed: Routed) -> None:
        (ref,) = _args(routed, 1)
        await views.slug_of(ref, routed.user_id)
        await open_modal(routed, ref, None)

    async def on_fact_edit(routed: Routed) -> None:
        ref, key = _args(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        await open_modal(routed, ref, await views.fact_of(routed.user_id, slug, _key(key)))

    async def on_fact_save(routed: Routed) -> None:
        if not routed.is_modal or len(routed.args) not in (1, 2):
            raise Expired()
        ref = routed.args[0]
        old_key = _key(routed.args[1]) if len(routed.args) == 2 else None
        user_id = routed.user_id
        slug = await views.slug_of(ref, user_id)
        topic = routed.values.get(TOPIC_FIELD) or ""
        text = routed.values.get(TEXT_FIELD) or ""
        key = fact_key(topic)
        if not key:
            raise Refusal("A topic needs a few letters or digits (e.g. `cat name`).")
        old = None
        if old_key is not None:
            old = next((f for f in await memory.facts(user_id, slug) if f.key == old_key), None)
        here = here_of(routed.interaction)
        try:
            saved = await memory.put_fact(
                user_id, slug, key=key, text=text, venue=old.venue if old else here,
                locked=old.locked if old is not None and key != old.key else None,
            )  # fmt: skip
        except ValidationError:
            raise Refusal(
                f"That fact cannot be saved: it needs some text (at most {MAX_FACT_CHARS} "
                "characters)."
            ) from None
        except ValueError as error:
            raise Refusal(str(error)) from None
        if old is not None and old.key != saved.key:
            await memory.delete_fact(user_id, slug, old.key)
        view = await views.fact_view(user_id, slug, saved, here, "Saved.")
        if isinstance(routed.interaction, hikari.ModalInteraction) and (
            routed.interaction.message is not None
        ):
            await routed.update(view[0], components=view[1])
        else:
            await routed.reply(view[0], components=view[1])

    async def on_fact_lock(routed: Routed) -> None:
        ref, flag, key = _args(routed, 3)
        if flag not in ("0", "1"):
            raise Expired()
        slug = await views.slug_of(ref, routed.user_id)
        locked = flag == "1"
        if not await memory.lock_fact(routed.user_id, slug, _key(key), locked):
            raise Expired("That fact no longer exists.")
        fact = await views.fact_of(routed.user_id, slug, key)
        note = "Locked." if locked else "Unlocked."
        text, rows = await views.fact_view(
            routed.user_id, slug, fact, here_of(routed.interaction), note
        )
        await routed.update(text, components=rows)

    async def on_fact_delete(routed: Routed) -> None:
        ref, key = _args(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        if not await memory.delete_fact(routed.user_id, slug, _key(key)):
            raise Expired("That fact no longer exists.")
        text, rows = await views.facts_view(
            routed.user_id, slug, 0, here_of(routed.interaction), f"Deleted the fact **{key}**."
        )
        await routed.update(text, components=rows)

    router.register(FACTS, on_facts)
    router.register(FACT_PICK, on_fact_pick)
    router.register(FACT_ADD, on_fact_add)
    router.register(FACT_EDIT, on_fact_edit)
    router.register(FACT_SAVE, on_fact_save)
    router.register(FACT_LOCK, on_fact_lock)
    router.register(FACT_DELETE, on_fact_delete)


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


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _not_purged(what: str) -> str:
    return f"Not purged: the confirmation did not match (type {what}). Nothing was forgotten."


def _on_off(value: Any) -> bool:
    if value not in ("on", "off"):
        raise CommandRefusal("The value is `on` or `off`.")
    return bool(value == "on")


def _args(routed: Routed, count: int) -> list[str]:
    if len(routed.args) != count or not all(routed.args):
        raise Expired()
    return routed.args


def _page(arg: str) -> int:
    if not _PAGE_ARG.match(arg):
        raise Expired()
    return int(arg)


def _key(arg: str) -> str:
    if not _FACT_KEY.match(arg):
        raise Expired()
    return arg


def _chosen(routed: Routed) -> str:
    interaction = routed.interaction
    values = interaction.values if isinstance(interaction, hikari.ComponentInteraction) else []
    if len(values) != 1 or not values[0]:
        raise Expired()
    return str(values[0])
