"""/preset create | edit | delete | browse: named bundles of model and sampling values.

Anyone may create presets (at most 25 each); only a preset's owner or the bot owner may edit or
delete it. `edit` changes only the options given. `browse` lists public presets and your own,
paginated with buttons (`preset:page:{page}`), answered by any process.
"""

from __future__ import annotations

from typing import Any

import hikari
import lightbulb
from pydantic import ValidationError

from tzurot.discord.commands.common import (
    CommandServices,
    Personalities,
    page_buttons,
    paginate,
)
from tzurot.discord.commands.models import model_autocomplete
from tzurot.discord.interactions_router import Expired, Routed
from tzurot.settings.presets import (
    PRESET_VALUES,
    Preset,
    PresetError,
    preset_problem,
)

PAGE_SIZE = 10
PAGE_PREFIX = "preset:page"
CLEAR_MODEL = frozenset({"none", "default", "-"})


def describe(preset: Preset, viewer: str | None = None) -> str:
    """One line per preset: its name and the values it sets."""
    values = preset.values()
    parts = [f"{key} `{value}`" for key, value in values.items()] or ["no values yet"]
    whose = " (yours)" if viewer is not None and viewer == preset.owner_id else ""
    hidden = " · private" if not preset.public else ""
    return f"**{preset.name}**{whose}{hidden}: " + ", ".join(parts)


def render_page(
    presets: list[Preset], page: int, viewer: str
) -> tuple[str, list[hikari.api.ComponentBuilder]]:
    if not presets:
        return "No presets yet. Make one with `/preset create`.", []
    shown, page, pages = paginate(presets, page, PAGE_SIZE)
    lines = [f"**Presets** — page {page + 1}/{pages} ({len(presets)} presets)"]
    lines += [f"• {describe(p, viewer)}"[:190] for p in shown]
    return "\n".join(lines), page_buttons(PAGE_PREFIX, page, pages)


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    community = services.community
    preset_group = lightbulb.Group("preset", "Presets of model and sampling values")
    models = model_autocomplete(community)

    async def suggest_own(ctx: lightbulb.AutocompleteContext[str]) -> None:
        """Presets the user may change, for edit and delete."""
        store = community.presets
        typed = str(ctx.focused.value or "").casefold()
        user_id = str(ctx.interaction.user.id)
        found = await store.list_visible(user_id)
        names = [p.name for p in found if store.may_change(p, user_id)]
        await ctx.respond([n for n in names if typed in n.casefold()][:25])

    @preset_group.register()
    class PresetCreate(lightbulb.SlashCommand, name="create", description="Create a preset"):
        name = lightbulb.string("name", "The preset's name", min_length=1, max_length=80)
        model = lightbulb.string(
            "model", "Model", default=None, max_length=200, autocomplete=models
        )
        temperature = lightbulb.number(
            "temperature", "0 to 2", default=None, min_value=0, max_value=2
        )
        top_p = lightbulb.number("top_p", "0 to 1", default=None, min_value=0, max_value=1)
        frequency_penalty = lightbulb.number(
            "frequency_penalty", "-2 to 2", default=None, min_value=-2, max_value=2
        )
        presence_penalty = lightbulb.number(
            "presence_penalty", "-2 to 2", default=None, min_value=-2, max_value=2
        )
        max_tokens = lightbulb.integer(
            "max_tokens", "Longest reply, 1 to 200000", default=None, min_value=1, max_value=200_000
        )
        context_window = lightbulb.integer(
            "context_window", "Tokens of context, 1024 to 10000000", default=None,
            min_value=1024, max_value=10_000_000,
        )  # fmt: skip

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            store = community.presets
            values = _given(self)
            if values.get("model") is None:
                values.pop("model", None)
            try:
                preset = Preset.model_validate(
                    {"name": self.name, "owner_id": str(ctx.user.id), **values}
                )
                await store.create(preset)
            except ValidationError as exc:
                await ctx.edit_response(-1, f"Not created: {preset_problem(exc)}")
                return
            except PresetError as exc:
                await ctx.edit_response(-1, f"Not created: {exc}")
                return
            await ctx.edit_response(-1, f"Created {describe(preset)}")

    @preset_group.register()
    class PresetEdit(lightbulb.SlashCommand, name="edit", description="Change a preset's values"):
        preset = lightbulb.string("preset", "Which preset", max_length=80, autocomplete=suggest_own)
        model = lightbulb.string(
            "model", "Model (`none` to clear)", default=None, max_length=200, autocomplete=models
        )
        temperature = lightbulb.number(
            "temperature", "0 to 2", default=None, min_value=0, max_value=2
        )
        top_p = lightbulb.number("top_p", "0 to 1", default=None, min_value=0, max_value=1)
        frequency_penalty = lightbulb.number(
            "frequency_penalty", "-2 to 2", default=None, min_value=-2, max_value=2
        )
        presence_penalty = lightbulb.number(
            "presence_penalty", "-2 to 2", default=None, min_value=-2, max_value=2
        )
        max_tokens = lightbulb.integer(
            "max_tokens", "Longest reply, 1 to 200000", default=None, min_value=1, max_value=200_000
        )
        context_window = lightbulb.integer(
            "context_window", "Tokens of context, 1024 to 10000000", default=None,
            min_value=1024, max_value=10_000_000,
        )  # fmt: skip

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            store = community.presets
            changes = _given(self)
            if not changes:
                await ctx.edit_response(-1, "Nothing to change: give at least one value.")
                return
            try:
                updated = await store.update(self.preset, str(ctx.user.id), changes)
            except PresetError as exc:
                await ctx.edit_response(-1, f"Not changed: {exc}")
                return
            await ctx.edit_response(-1, f"Changed {describe(updated)}")

    @preset_group.register()
    class PresetDelete(lightbulb.SlashCommand, name="delete", description="Delete a preset"):
        preset = lightbulb.string("preset", "Which preset", max_length=80, autocomplete=suggest_own)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            store = community.presets
            try:
                gone = await store.delete(self.preset, str(ctx.user.id))
            except PresetError as exc:
                await ctx.edit_response(-1, f"Not deleted: {exc}")
                return
            await ctx.edit_response(-1, f"Deleted the preset **{gone.name}**.")

    @preset_group.register()
    class PresetBrowse(lightbulb.SlashCommand, name="browse", description="List presets"):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            store = community.presets
            viewer = str(ctx.user.id)
            text, components = render_page(await store.list_visible(viewer), 0, viewer)
            await ctx.edit_response(-1, text, components=components)

    async def on_page(routed: Routed) -> None:
        if len(routed.args) != 1 or not routed.args[0].isdigit():
            raise Expired()
        viewer = routed.user_id
        text, components = render_page(
            await community.presets.list_visible(viewer), int(routed.args[0]), viewer
        )
        await routed.update(text, components=components)

    services.router.register(PAGE_PREFIX, on_page)
    client.register(preset_group)


def _given(command: Any) -> dict[str, Any]:
    """The value options the person gave (None = not given); `model: none` clears the model."""
    given = {key: getattr(command, key) for key in PRESET_VALUES}
    found = {key: value for key, value in given.items() if value is not None}
    model = found.get("model")
    if isinstance(model, str) and model.strip().casefold() in CLEAR_MODEL:
        found["model"] = None
    return found
