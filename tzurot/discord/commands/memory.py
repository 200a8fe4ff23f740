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

import hikari
import lightbulb
from pydantic import ValidationError

from tzurot.discord.commands.common import (
    AUTOCOMPLETE_LIMIT,
    CommandRefusal,
    CommandServices,
    Personalities,
    fit,
)
from tzurot.discord.commands.memory_views import (
    ALL,
    CONFIRM_FIELD,
    FACT_ADD,
    FACT_DELETE,
    FACT_EDIT,
    FACT_LOCK,
    FACT_PICK,
    FACT_SAVE,
    FACTS,
    FORGET,
    HISTORY_KEPT,
    LOCK,
    MEMORY_ID_MAX,
    MEMORY_OFF,
    NO_MENTIONS,
    NOTHING_YET,
    ON_OFF,
    PAGE,
    PICK,
    PURGE,
    PURGE_WORD,
    QUERY_MAX,
    SCOPE_SAFE,
    SEARCH_FLOOR,
    SEARCH_RESULTS,
    SEARCH_SNIPPET_CHARS,
    TEXT_FIELD,
    TOPIC_FIELD,
    MemoryViews,
    Rows,
    View,
    args_of,
    character_option,
    chosen_value,
    here_of,
    key_arg,
    memory_line,
    not_purged,
    on_off,
    page_arg,
    pick_row,
    plural,
    quote,
    ref_of,
    short_id,
    shown,
)
from tzurot.discord.interactions_router import Expired, Refusal, Routed, custom_id
from tzurot.memory.embedders import EmbeddingError
from tzurot.memory.facts import fact_key
from tzurot.memory.models import MAX_FACT_CHARS, Fact, MemoryRecord


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    group = lightbulb.Group("memory", "What the characters remember about you")
    views = MemoryViews(services, known)
    _register_reading(group, views)
    _register_forgetting(group, views)
    _register_prefs(group, views)
    _register_facts(group, views)
    client.register(group)


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

            await views.answer(ctx, body)

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

            await views.answer(ctx, body)

    async def on_page(routed: Routed) -> None:
        ref, page = args_of(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        text, rows = await views.browse_view(
            routed.user_id, slug, page_arg(page), here_of(routed.interaction)
        )
        await routed.update(text, components=rows)

    async def on_pick(routed: Routed) -> None:
        ref, page = args_of(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        chosen = chosen_value(routed)
        record = await views.memory.get(routed.user_id, slug, chosen)
        if record is None:
            raise Expired("That memory no longer exists.")
        text, rows = await views.memory_view(
            routed.user_id, slug, record, page_arg(page), here_of(routed.interaction)
        )
        await routed.update(text, components=rows)

    async def on_lock(routed: Routed) -> None:
        ref, page, flag, memory_id = args_of(routed, 4)
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
            routed.user_id, slug, record, page_arg(page), here_of(routed.interaction), note
        )
        await routed.update(text, components=rows)

    async def on_forget(routed: Routed) -> None:
        ref, page, memory_id = args_of(routed, 3)
        slug = await views.slug_of(ref, routed.user_id)
        if not await views.memory.delete(routed.user_id, slug, memory_id):
            raise Expired("That memory no longer exists.")
        text, rows = await views.browse_view(
            routed.user_id, slug, page_arg(page), here_of(routed.interaction)
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
            slugs = [s for s in await memory.characters_of(user_id) if SCOPE_SAFE.match(s)]
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
                             if SCOPE_SAFE.match(s)]  # fmt: skip
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

            await views.answer(ctx, body)

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
                raise Refusal(not_purged(PURGE_WORD))
            slug, whom = None, "every character"
        else:
            slug = await views.slug_of(routed.args[0], user_id)
            found = await views.services.personalities.get(slug)
            names = {slug} if found is None else {slug, found.name, found.display_name}
            if typed not in {n.casefold() for n in names}:
                raise Refusal(not_purged("the character's name"))
            whom = f"**{found.display_name if found else slug}**"
        await routed.defer(ephemeral=True)
        memories, facts = await memory.purge(user_id, slug)
        if not memories and not facts:
            await routed.reply(f"There was nothing to forget with {whom}. {HISTORY_KEPT}")
            return
        await routed.reply(
            f"Forgot {memories} {plural(memories, 'memory', 'memories')} and {facts} "
            f"{plural(facts, 'fact', 'facts')} of yours with {whom}. {HISTORY_KEPT}"
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
                on = on_off(self.value)
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

            await views.answer(ctx, body)

    @group.register()
    class MemoryIncognito(
        lightbulb.SlashCommand, name="incognito", description="Stop (or resume) remembering"
    ):
        value = lightbulb.string("value", "on or off", choices=ON_OFF)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            async def body() -> View:
                on = on_off(self.value)
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

            await views.answer(ctx, body)


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

            await views.answer(ctx, body)

    async def on_facts(routed: Routed) -> None:
        ref, page = args_of(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        text, rows = await views.facts_view(
            routed.user_id, slug, page_arg(page), here_of(routed.interaction)
        )
        await routed.update(text, components=rows)

    async def on_fact_pick(routed: Routed) -> None:
        ref, _page_arg = args_of(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        fact = await views.fact_of(routed.user_id, slug, key_arg(chosen_value(routed)))
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
        (ref,) = args_of(routed, 1)
        await views.slug_of(ref, routed.user_id)
        await open_modal(routed, ref, None)

    async def on_fact_edit(routed: Routed) -> None:
        ref, key = args_of(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        await open_modal(routed, ref, await views.fact_of(routed.user_id, slug, key_arg(key)))

    async def on_fact_save(routed: Routed) -> None:
        if not routed.is_modal or len(routed.args) not in (1, 2):
            raise Expired()
        ref = routed.args[0]
        old_key = key_arg(routed.args[1]) if len(routed.args) == 2 else None
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
        ref, flag, key = args_of(routed, 3)
        if flag not in ("0", "1"):
            raise Expired()
        slug = await views.slug_of(ref, routed.user_id)
        locked = flag == "1"
        if not await memory.lock_fact(routed.user_id, slug, key_arg(key), locked):
            raise Expired("That fact no longer exists.")
        fact = await views.fact_of(routed.user_id, slug, key)
        note = "Locked." if locked else "Unlocked."
        text, rows = await views.fact_view(
            routed.user_id, slug, fact, here_of(routed.interaction), note
        )
        await routed.update(text, components=rows)

    async def on_fact_delete(routed: Routed) -> None:
        ref, key = args_of(routed, 2)
        slug = await views.slug_of(ref, routed.user_id)
        if not await memory.delete_fact(routed.user_id, slug, key_arg(key)):
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
