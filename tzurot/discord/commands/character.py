"""/character: create, edit, view, browse (list), delete, avatar, alias, visibility, export, import.

Every rule (who may see or change a character, validation, conflicts, provenance) lives in
`tzurot.personalities.service.CharacterService`, which the HTTP API calls too; this module is the
Discord front of it. Modals and buttons go through the interaction router; their custom ids
carry everything the handler needs, so any process can answer them, even after a restart:

  character:create:{name}              the create modal (name checked before it opens)
  character:edit:{slug}:{section}      an edit modal; section identity|card|card2|behaviour
  character:page:{slug}:card2          button: open the second card page (a modal)
  character:browse:{page}              browse pagination buttons
  character:delete:{slug}              the danger-style confirmation button
  character:cancel                     dismiss a confirmation

A modal holds at most 5 text inputs, so `section:card` (six fields) is split in two pages:
`card` holds age, appearance, likes, dislikes and conversational_goals; its answer carries a
button that opens page 2, `conversational_examples` (the long one, alone in its modal).
Discord text inputs hold at most 4000 characters: a field longer than that (possible through
files, import or the API) is not put in a modal where it would be cut: the edit is refused
with a message pointing to export/import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hikari
import lightbulb

from tzurot.attachments.fetch import FetchError, fetch_attachment
from tzurot.discord.commands.common import CommandServices, Personalities, fit, paginate
from tzurot.discord.interactions_router import Expired, Refusal, Routed, custom_id
from tzurot.personalities.loader import MAX_FILE_BYTES
from tzurot.personalities.models import MAX_ERROR_MESSAGE_CHARS, Personality
from tzurot.personalities.service import Actor, CharacterError, CharacterService
from tzurot.personalities.validation import MAX_NAME_CHARS, clean_label

PAGE_SIZE = 10
TEXT_INPUT_MAX = 4000  # Discord's limit for one modal text input
MODAL_TITLE_MAX = 45
REF_MAX = 100  # a personality option: a name, slug or alias
URL_MAX = 2048

_PARAGRAPH = hikari.TextInputStyle.PARAGRAPH
_SHORT = hikari.TextInputStyle.SHORT

# Modal sections: (field, label, style, max length, required). Field names are the custom ids.
FieldSpec = tuple[str, str, hikari.TextInputStyle, int, bool]
SECTIONS: dict[str, tuple[FieldSpec, ...]] = {
    "identity": (
        ("display_name", "Display name", _SHORT, MAX_NAME_CHARS, False),
        ("system_prompt", "System prompt", _PARAGRAPH, TEXT_INPUT_MAX, True),
        ("character_info", "Character info", _PARAGRAPH, TEXT_INPUT_MAX, False),
        ("personality_traits", "Personality traits", _PARAGRAPH, TEXT_INPUT_MAX, False),
        ("tone", "Tone", _PARAGRAPH, TEXT_INPUT_MAX, False),
    ),
    "card": (
        ("age", "Age", _SHORT, 200, False),
        ("appearance", "Appearance", _PARAGRAPH, TEXT_INPUT_MAX, False),
        ("likes", "Likes", _PARAGRAPH, TEXT_INPUT_MAX, False),
        ("dislikes", "Dislikes", _PARAGRAPH, TEXT_INPUT_MAX, False),
        ("conversational_goals", "Conversational goals", _PARAGRAPH, TEXT_INPUT_MAX, False),
    ),
    "card2": (
        ("conversational_examples", "Conversational examples", _PARAGRAPH, TEXT_INPUT_MAX, False),
    ),
    "behaviour": (
        ("error_message", "Error message", _PARAGRAPH, MAX_ERROR_MESSAGE_CHARS, False),
        ("model", "Model (empty: the default)", _SHORT, 200, False),
        ("preset", "Preset (empty: none)", _SHORT, 80, False),
        ("temperature", "Temperature (0 to 2)", _SHORT, 10, False),
        ("max_tokens", "Max tokens", _SHORT, 10, False),
    ),
}
CARD_SECTION_FIELDS = frozenset(
    {"character_info", "personality_traits", "tone", "age", "appearance", "likes", "dislikes",
     "conversational_goals", "conversational_examples"}
)  # fmt: skip
SECTION_CHOICES = [lightbulb.Choice(name, name) for name in ("identity", "card", "behaviour")]
NO_MENTIONS: dict[str, Any] = {
    "mentions_everyone": False,
    "user_mentions": False,
    "role_mentions": False,
}


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    character = lightbulb.Group("character", "The characters you can talk to")
    characters = services.community.characters

    @character.register()
    class CharacterView(lightbulb.SlashCommand, name="view", description="Show a character"):
        personality = lightbulb.string(
            "personality", "Which character", autocomplete=known.suggest, max_length=REF_MAX
        )

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            found = await known.find(self.personality, str(ctx.user.id))
            if found is None:
                # The bot owner may look at (and manage) any character, private ones too.
                actor = characters.discord_actor(str(ctx.user.id))
                try:
                    found = await characters.find(self.personality, actor)
                except CharacterError:
                    found = None
            await ctx.edit_response(
                -1, describe(found) if found else "No such character.", **NO_MENTIONS
            )

    _register_management(character, services, known, characters)
    client.register(character)


def _register_management(  # noqa: PLR0915 - one closure per subcommand and handler
    character: lightbulb.Group,
    services: CommandServices,
    known: Personalities,
    characters: CharacterService,
) -> None:
    router = services.router

    def actor_of(ctx: lightbulb.Context) -> Actor:
        return characters.discord_actor(str(ctx.user.id))

    def routed_actor(routed: Routed) -> Actor:
        return characters.discord_actor(routed.user_id)

    def personality_option(description: str = "Which character") -> Any:
        return lightbulb.string(
            "personality", description, autocomplete=known.suggest, max_length=REF_MAX
        )

    # -- create -------------------------------------------------------------------------------

    @character.register()
    class Create(lightbulb.SlashCommand, name="create", description="Create a character"):
        name = lightbulb.string("name", "The character's name", max_length=MAX_NAME_CHARS)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            # A modal must be the first answer: only quick checks before it.
            try:
                name = clean_label(self.name)
            except ValueError as exc:
                await ctx.respond(f"That name cannot be used: it {exc}.", ephemeral=True)
                return
            if await services.personalities.get(name) is not None:
                await ctx.respond(
                    f"The name “{name}” is already taken by another character.", ephemeral=True
                )
                return
            values = {"display_name": name}
            await ctx.respond_with_modal(
                _title("New character", name), custom_id("character:create", name),
                components=_modal_rows(ctx.client.rest, SECTIONS["identity"], values),
            )  # fmt: skip

    async def on_create(routed: Routed) -> None:
        name = ":".join(routed.args)
        fields: dict[str, Any] = {"name": name, **_section_changes("identity", routed.values)}
        created = await characters.create(_flatten_card(fields), routed_actor(routed))
        await routed.reply(
            f"Created **{created.display_name}** (`{created.slug}`). Summon them with "
            f"`@{created.name}`; `/character edit` fills in the rest.",
        )

    router.register("character:create", _guard(on_create))

    # -- edit ---------------------------------------------------------------------------------

    @character.register()
    class Edit(lightbulb.SlashCommand, name="edit", description="Edit one of your characters"):
        personality = personality_option()
        section = lightbulb.string(
            "section", "What to edit (default: identity)", choices=SECTION_CHOICES, default=None
        )

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            section = self.section or "identity"
            try:
                found = await characters.find_to_change(self.personality, actor_of(ctx))
                title, cid, rows = _edit_modal(ctx.client.rest, found, section)
            except CharacterError as exc:
                await ctx.respond(_refusal(exc), ephemeral=True)
                return
            except Refusal as exc:
                await ctx.respond(exc.message, ephemeral=True)
                return
            await ctx.respond_with_modal(title, cid, components=rows)

    async def on_edit(routed: Routed) -> None:
        if len(routed.args) != 2 or routed.args[1] not in SECTIONS:
            raise Expired()
        slug, section = routed.args
        changes = _flatten_card(_section_changes(section, routed.values))
        updated = await characters.edit(slug, changes, routed_actor(routed))
        components = None
        if section == "card":
            row = routed.interaction.app.rest.build_message_action_row()
            row.add_interactive_button(
                hikari.ButtonStyle.SECONDARY, custom_id("character:page", slug, "card2"),
                label="Edit conversational examples",
            )  # fmt: skip
            components = [row]
        await routed.reply(f"Saved **{updated.display_name}** ({section}).", components=components)

    async def on_page(routed: Routed) -> None:
        if len(routed.args) != 2 or routed.args[1] not in SECTIONS:
            raise Expired()
        slug, section = routed.args
        found = await characters.find_to_change(slug, routed_actor(routed))
        title, cid, rows = _edit_modal(routed.interaction.app.rest, found, section)
        if not isinstance(routed.interaction, hikari.ComponentInteraction):
            raise Expired()
        await routed.interaction.create_modal_response(title, cid, components=rows)
        routed.answered = True

    router.register("character:edit", _guard(on_edit))
    router.register("character:page", _guard(on_page))

    # -- browse -------------------------------------------------------------------------------

    async def browse_page(
        actor: Actor, page: int, rest: hikari.api.RESTClient
    ) -> tuple[str, list[Any]]:
        shown = await characters.browse(actor)
        on_page, page, pages = paginate(shown, page, PAGE_SIZE)
        lines = []
        for p in on_page:
            tags = []
            if actor.user_id is not None and p.owner_id == actor.user_id:
                tags.append("yours")
            if not p.public:
                tags.append("private")
            suffix = f" — {', '.join(tags)}" if tags else ""
            lines.append(f"• **{p.display_name}** (`{p.slug}`){suffix}")
        text = "\n".join(lines) or "No characters yet. `/character create` makes one."
        if pages > 1:
            text += f"\nPage {page + 1} of {pages}"
        components: list[Any] = []
        if pages > 1:
            row = rest.build_message_action_row()
            if page > 0:
                row.add_interactive_button(
                    hikari.ButtonStyle.SECONDARY, custom_id("character:browse", page - 1),
                    label="Previous",
                )  # fmt: skip
            if page < pages - 1:
                row.add_interactive_button(
                    hikari.ButtonStyle.SECONDARY, custom_id("character:browse", page + 1),
                    label="Next",
                )  # fmt: skip
            components.append(row)
        return text[:2000], components

    async def invoke_browse(ctx: lightbulb.Context) -> None:
        await ctx.defer(ephemeral=True)
        text, components = await browse_page(actor_of(ctx), 0, ctx.client.rest)
        await ctx.edit_response(-1, text, components=components, **NO_MENTIONS)

    @character.register()
    class Browse(
        lightbulb.SlashCommand, name="browse", description="Your characters and public ones"
    ):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await invoke_browse(ctx)

    @character.register()
    class CharacterList(lightbulb.SlashCommand, name="list", description="Same as browse"):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await invoke_browse(ctx)

    async def on_browse(routed: Routed) -> None:
        if len(routed.args) != 1 or not routed.args[0].isdigit():
            raise Expired()
        text, components = await browse_page(
            routed_actor(routed), int(routed.args[0]), routed.interaction.app.rest
        )
        await routed.update(text, components=components)

    router.register("character:browse", _guard(on_browse))

    # -- delete -------------------------------------------------------------------------------

    @character.register()
    class Delete(
        lightbulb.SlashCommand, name="delete", description="Delete one of your characters"
    ):
        personality = personality_option()

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            try:
                found = await characters.find_to_change(self.personality, actor_of(ctx))
            except CharacterError as exc:
                await ctx.edit_response(-1, _refusal(exc), **NO_MENTIONS)
                return
            row = ctx.client.rest.build_message_action_row()
            row.add_interactive_button(
                hikari.ButtonStyle.DANGER, custom_id("character:delete", found.slug),
                label=f"Delete {found.display_name}"[:80],
            )  # fmt: skip
            row.add_interactive_button(
                hikari.ButtonStyle.SECONDARY, "character:cancel", label="Cancel"
            )
            await ctx.edit_response(
                -1,
                f"Delete **{found.display_name}** (`{found.slug}`) for good? Its avatar goes "
                "too. This cannot be undone.",
                components=[row], **NO_MENTIONS,
            )  # fmt: skip

    async def on_delete(routed: Routed) -> None:
        if len(routed.args) != 1:
            raise Expired()
        try:
            gone = await characters.delete(routed.args[0], routed_actor(routed))
        except CharacterError as exc:
            if exc.code == "not_found":
                raise Expired("That character no longer exists.") from None
            raise
        await routed.update(f"Deleted **{gone.display_name}**.", components=[])

    async def on_cancel(routed: Routed) -> None:
        await routed.update("Cancelled: nothing was deleted.", components=[])

    router.register("character:delete", _guard(on_delete))
    router.register("character:cancel", _guard(on_cancel))

    # -- avatar -------------------------------------------------------------------------------

    @character.register()
    class Avatar(lightbulb.SlashCommand, name="avatar", description="Set a character's avatar"):
        personality = personality_option()
        url = lightbulb.string(
            "url", "An image URL (http or https)", default=None, max_length=URL_MAX
        )
        image = lightbulb.attachment(
            "image", "An image to upload (PNG, JPEG, GIF, WebP)", default=None
        )

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            actor = actor_of(ctx)
            try:
                if (self.url is None) == (self.image is None):
                    raise Refusal("Give either `url` or `image` (one of them).")
                if self.url is not None:
                    updated = await characters.set_avatar_url(self.personality, self.url, actor)
                else:
                    if not characters.public_base_url:
                        raise Refusal(
                            "Uploaded avatars need PUBLIC_BASE_URL (the address where this bot's "
                            "HTTP API is reachable) and it is not set; use `url` instead."
                        )
                    await characters.find_to_change(self.personality, actor)
                    data = await _download(characters, self.image, characters.max_avatar_bytes)
                    updated = await characters.upload_avatar(self.personality, data, actor)
            except CharacterError as exc:
                await ctx.edit_response(-1, _refusal(exc), **NO_MENTIONS)
                return
            except Refusal as exc:
                await ctx.edit_response(-1, exc.message, **NO_MENTIONS)
                return
            await ctx.edit_response(
                -1, f"**{updated.display_name}** has a new avatar: {updated.avatar_url}",
                **NO_MENTIONS,
            )  # fmt: skip

    # -- alias --------------------------------------------------------------------------------

    alias = character.subgroup("alias", "Other names a character answers to")

    @alias.register()
    class AliasAdd(lightbulb.SlashCommand, name="add", description="Add an alias"):
        personality = personality_option()
        alias = lightbulb.string("alias", "The new alias", max_length=MAX_NAME_CHARS)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            try:
                updated = await characters.add_alias(self.personality, self.alias, actor_of(ctx))
            except CharacterError as exc:
                await ctx.edit_response(-1, _refusal(exc), **NO_MENTIONS)
                return
            await ctx.edit_response(
                -1, f"**{updated.display_name}** now also answers to: "
                f"{', '.join(updated.aliases)}", **NO_MENTIONS,
            )  # fmt: skip

    @alias.register()
    class AliasRemove(lightbulb.SlashCommand, name="remove", description="Remove an alias"):
        personality = personality_option()
        alias = lightbulb.string("alias", "The alias to remove", max_length=MAX_NAME_CHARS)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            try:
                updated = await characters.remove_alias(self.personality, self.alias, actor_of(ctx))
            except CharacterError as exc:
                await ctx.edit_response(-1, _refusal(exc), **NO_MENTIONS)
                return
            left = ", ".join(updated.aliases) or "none"
            await ctx.edit_response(
                -1, f"Removed. **{updated.display_name}**'s aliases: {left}", **NO_MENTIONS
            )

    # -- visibility ---------------------------------------------------------------------------

    @character.register()
    class Visibility(
        lightbulb.SlashCommand, name="visibility", description="Make a character public or private"
    ):
        personality = personality_option()
        visibility = lightbulb.string(
            "visibility", "public: everyone; private: only you",
            choices=[lightbulb.Choice("public", "public"), lightbulb.Choice("private", "private")],
        )  # fmt: skip

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            if self.visibility not in ("public", "private"):
                await ctx.edit_response(-1, "Visibility is `public` or `private`.")
                return
            try:
                updated = await characters.set_visibility(
                    self.personality, self.visibility == "public", actor_of(ctx)
                )
            except CharacterError as exc:
                await ctx.edit_response(-1, _refusal(exc), **NO_MENTIONS)
                return
            who = "everyone" if updated.public else "only its owner"
            await ctx.edit_response(
                -1, f"**{updated.display_name}** is now {self.visibility}: {who} can talk to it.",
                **NO_MENTIONS,
            )  # fmt: skip

    # -- export / import ----------------------------------------------------------------------

    @character.register()
    class Export(lightbulb.SlashCommand, name="export", description="A character as a TOML file"):
        personality = personality_option()

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            try:
                filename, text = await characters.export(self.personality, actor_of(ctx))
            except CharacterError as exc:
                await ctx.edit_response(-1, _refusal(exc), **NO_MENTIONS)
                return
            await ctx.edit_response(
                -1, f"Here is `{filename}`; `/character import` reads it back.",
                attachment=hikari.Bytes(text.encode(), filename, mimetype="application/toml"),
                **NO_MENTIONS,
            )  # fmt: skip

    @character.register()
    class Import(
        lightbulb.SlashCommand, name="import", description="Create a character from a TOML file"
    ):
        file = lightbulb.attachment("file", "A .toml file (as /character export writes)")

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            try:
                data = await _download(characters, self.file, MAX_FILE_BYTES)
                created = await characters.import_file(data, actor_of(ctx))
            except CharacterError as exc:
                await ctx.edit_response(-1, _refusal(exc), **NO_MENTIONS)
                return
            except Refusal as exc:
                await ctx.edit_response(-1, exc.message, **NO_MENTIONS)
                return
            await ctx.edit_response(
                -1, f"Imported **{created.display_name}** (`{created.slug}`).", **NO_MENTIONS
            )


# -- helpers ------------------------------------------------------------------------------------


def _guard(handler: Any) -> Any:
    """Turn the service's errors into the router's refusals (specific, ephemeral)."""

    async def guarded(routed: Routed) -> None:
        try:
            await handler(routed)
        except CharacterError as exc:
            raise Refusal(_refusal(exc)) from None

    return guarded


def _refusal(exc: CharacterError) -> str:
    prefix = {
        "not_found": "",
        "forbidden": "Not allowed: ",
        "conflict": "Conflict: ",
        "invalid": "That cannot be saved: ",
        "too_large": "Too large: ",
        "unavailable": "",
    }[exc.code]
    text = prefix + exc.message
    text = text[:1].upper() + text[1:]
    return text if len(text) <= 1900 else text[:1899] + "…"


async def _download(characters: CharacterService, attachment: Any, max_bytes: int) -> bytes:
    if not isinstance(attachment, hikari.Attachment):
        raise Refusal("Attach a file.")
    if attachment.size > max_bytes:
        raise Refusal(f"That file is larger than {_size(max_bytes)}.")
    try:
        return await fetch_attachment(
            attachment.url, allowed_hosts=characters.attachment_hosts, max_bytes=max_bytes
        )
    except FetchError as exc:
        raise Refusal(f"Could not read the file: {exc.message}.") from None


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def _title(prefix: str, name: str) -> str:
    text = f"{prefix}: {name}"
    return text if len(text) <= MODAL_TITLE_MAX else text[: MODAL_TITLE_MAX - 1] + "…"


def _modal_rows(
    rest: hikari.api.RESTClient, specs: Sequence[FieldSpec], values: dict[str, str]
) -> list[hikari.api.ModalActionRowBuilder]:
    rows = []
    for field, label, style, max_length, required in specs:
        row = rest.build_modal_action_row()
        value = values.get(field) or ""
        row.add_text_input(
            field, label, style=style, max_length=max_length, required=required,
            value=value if value else hikari.UNDEFINED,
        )  # fmt: skip
        rows.append(row)
    return rows


def _current_values(p: Personality, section: str) -> dict[str, str]:
    card = p.card.model_dump()
    out: dict[str, str] = {}
    for field, *_ in SECTIONS[section]:
        if field in card:
            out[field] = card[field]
        else:
            value = getattr(p, field)
            out[field] = "" if value is None else str(value)
    return out


def _edit_modal(
    rest: hikari.api.RESTClient, p: Personality, section: str
) -> tuple[str, str, list[hikari.api.ModalActionRowBuilder]]:
    if section not in SECTIONS:
        raise Refusal("Section is `identity`, `card` or `behaviour`.")
    values = _current_values(p, section)
    for field, label, _style, max_length, _required in SECTIONS[section]:
        if len(values[field]) > max_length:
            raise Refusal(
                f"{p.display_name}'s {label.lower()} is {len(values[field])} characters, more "
                f"than a Discord form holds ({max_length}). Edit it in the file: "
                "`/character export`, then `/character import` (after deleting), or the HTTP API."
            )
    page = " (2/2)" if section == "card2" else " (1/2)" if section == "card" else ""
    title = _title(f"Edit {section.removesuffix('2')}{page}", p.display_name)
    return (
        title,
        custom_id("character:edit", p.slug, section),
        _modal_rows(rest, SECTIONS[section], values),
    )


def _section_changes(section: str, values: Any) -> dict[str, Any]:
    """The submitted fields of a section as personality changes (text -> typed values)."""
    changes: dict[str, Any] = {}
    for field, label, _style, max_length, required in SECTIONS[section]:
        if field not in values:
            continue
        raw = str(values[field])
        if len(raw) > max_length:
            raise Refusal(f"{label} is longer than {max_length} characters.")
        text = raw.strip()
        if required and not text:
            raise Refusal(f"{label} must not be empty.")
        if field == "temperature":
            changes[field] = _number(text, label, float)
        elif field == "max_tokens":
            changes[field] = _number(text, label, int)
        elif field in ("model", "preset", "error_message"):
            changes[field] = text or None
        elif field == "display_name":
            changes[field] = text  # empty: the name
        else:
            changes[field] = raw if field == "system_prompt" else text
    return changes


def _number(text: str, label: str, kind: type[int] | type[float]) -> Any:
    """Empty: the character does not say (its preset or the built-in default applies)."""
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise Refusal(f"{label} must be {what}, not “{text[:20]}”.") from None


def _flatten_card(fields: dict[str, Any]) -> dict[str, Any]:
    """Card fields from a modal go into the nested `card` of a personality."""
    out = {k: v for k, v in fields.items() if k not in CARD_SECTION_FIELDS}
    card = {k: v for k, v in fields.items() if k in CARD_SECTION_FIELDS}
    if card:
        out["card"] = card
    return out


def describe(p: Personality) -> str:
    aka = f" (aka {', '.join(p.aliases)})" if p.aliases else ""
    parts: list[str] = [f"**{p.display_name}**{aka}"]
    if not p.public:
        parts.append("*private*")
    card: dict[str, Any] = p.card.model_dump()
    for field, value in card.items():
        if value:
            parts.append(f"**{field.replace('_', ' ').capitalize()}:** {value[:300]}")
    return fit("\n".join(parts))
