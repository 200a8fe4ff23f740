"""/settings view | set | reset: a user's own settings, for all characters or for one.

`set` and `reset` act at the user levels of the cascade (a default, or with `personality:` a
value for that character); `view` shows each effective value here and the level it came from,
so a user sees at once when a moderator's enforced channel value wins over theirs.
"""

from __future__ import annotations

import lightbulb

from tzurot.discord.activation import thread_parent_of
from tzurot.discord.commands.common import CommandServices, Personalities
from tzurot.discord.commands.models import Autocomplete, suggest_models, user_providers
from tzurot.discord.services import Community
from tzurot.personalities.models import Personality
from tzurot.settings.catalog import (
    BOOL_KEYS,
    RESOLVED_KEYS,
    SETTING_KEYS,
    SPECS,
    Kind,
    SettingError,
    SettingSpec,
    SettingValue,
    spec_for,
)
from tzurot.settings.resolver import Level, ResolvedSettings

SETTING_CHOICES = [lightbulb.Choice(key, key) for key in SETTING_KEYS]
CLEAR_WORDS = ("default", "reset", "clear")


async def suggest_values(
    community: Community, setting: str, typed: str, user_id: str, *, clearable: bool = False
) -> list[str]:
    """Choices for a `value` option, by the chosen setting: models, presets or on/off."""
    typed = typed.strip()
    folded = typed.casefold()
    key = setting if setting in SPECS else ""
    found: list[str] = []
    if key == "model":
        found = await suggest_models(community, user_id, typed)
    elif key == "preset":
        names = [p.name for p in await community.presets.list_visible(user_id)]
        found = [n for n in names if folded in n.casefold()]
    elif key in BOOL_KEYS:
        found = [v for v in ("on", "off") if v.startswith(folded)]
    elif key and typed:
        found = [typed[:100]]
    if clearable:
        found += [w for w in CLEAR_WORDS[:1] if w.startswith(folded)]
    return found[:25]


def value_autocomplete(community: Community, *, clearable: bool = False) -> Autocomplete:
    async def suggest(ctx: lightbulb.AutocompleteContext[str]) -> None:
        chosen = ctx.get_option("setting")
        setting = str(chosen.value) if chosen is not None and chosen.value is not None else ""
        typed = str(ctx.focused.value or "")
        user_id = str(ctx.interaction.user.id)
        await ctx.respond(
            await suggest_values(community, setting, typed, user_id, clearable=clearable)
        )

    return suggest


async def parse_value(
    community: Community, spec: SettingSpec, text: str, user_id: str
) -> SettingValue:
    """A typed value checked against its range, and a preset against the presets that exist."""
    value = spec.parse(text, known_model=community.models.knows)
    if spec.kind is Kind.PRESET:
        found = await community.presets.get_visible(str(value), user_id)
        if found is None:
            raise SettingError(f"There is no preset called `{text[:40]}` (see /preset browse).")
        value = found.slug
    return value


async def model_note(
    community: Community, spec: SettingSpec, value: SettingValue, user_id: str
) -> str:
    """A warning when nobody here has a key for the chosen model's provider."""
    catalog = community.models
    if spec.kind is not Kind.MODEL:
        return ""
    from tzurot.ai.catalog import provider_of

    provider = provider_of(str(value))
    if provider in catalog.reachable(await user_providers(community, user_id)):
        return ""
    return (
        f"\nNote: this bot has no key for `{provider}` and neither do you; add yours with "
        "`/settings apikey set`, or replies with this model will fail."
    )


def describe_settings(resolved: ResolvedSettings, title: str) -> str:
    lines = [title]
    for key in RESOLVED_KEYS:
        value = resolved.value(key)
        shown = "model default" if value is None else _format(key, value)
        lines.append(f"`{key}` **{shown}** — {resolved.describe_source(key)}")
    return "\n".join(lines)[:2000]


def _format(key: str, value: SettingValue) -> str:
    spec = SPECS.get(key)
    text = (
        spec.format(value)
        if spec is not None
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )
    return text.replace("*", "\\*").replace("`", "'")[:120]


async def where(ctx: lightbulb.Context) -> tuple[str | None, str | None]:
    """(channel id, its parent's id when it is a thread); no channel level in DMs."""
    if ctx.guild_id is None:
        return None, None
    return str(ctx.channel_id), thread_parent_of(ctx.interaction.channel)


def register(group: lightbulb.Group, services: CommandServices, known: Personalities) -> None:
    community = services.community

    async def character(
        ctx: lightbulb.Context, ref: str | None
    ) -> tuple[Personality | None, str | None]:
        """The named character (None if not named), or an error text."""
        if not ref:
            return None, None
        found = await known.find(ref, str(ctx.user.id))
        return (found, None) if found else (None, f"I don't know anyone called `{ref[:40]}`.")

    @group.register()
    class SettingsView(
        lightbulb.SlashCommand, name="view", description="Your effective settings here"
    ):
        personality = lightbulb.string(
            "personality", "For this character", default=None, max_length=100,
            autocomplete=known.suggest,
        )  # fmt: skip

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            found, problem = await character(ctx, self.personality)
            if problem:
                await ctx.edit_response(-1, problem)
                return
            channel_id, parent_id = await where(ctx)
            resolved = await community.resolver.resolve(
                found, user_id=str(ctx.user.id), channel_id=channel_id, parent_channel_id=parent_id
            )
            title = (
                f"**Settings for {found.display_name}** here:"
                if found
                else "**Your settings** here (name a character to include its own):"
            )
            await ctx.edit_response(-1, describe_settings(resolved, title))

    @group.register()
    class SettingsSet(
        lightbulb.SlashCommand, name="set", description="Change one of your settings"
    ):
        setting = lightbulb.string("setting", "Which setting", choices=SETTING_CHOICES)
        value = lightbulb.string(
            "value", "The new value", max_length=200, autocomplete=value_autocomplete(community)
        )
        personality = lightbulb.string(
            "personality", "Only for this character", default=None, max_length=100,
            autocomplete=known.suggest,
        )  # fmt: skip

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            store = community.settings
            user_id = str(ctx.user.id)
            found, problem = await character(ctx, self.personality)
            try:
                if problem:
                    raise SettingError(problem)
                spec = spec_for(self.setting)
                value = await parse_value(community, spec, self.value, user_id)
            except SettingError as exc:
                await ctx.edit_response(-1, f"Not changed: {exc}")
                return
            slug = found.slug if found else None
            await store.set_user(user_id, spec.key, value, personality=slug)
            whom = f"with **{found.display_name}**" if found else "with every character"
            text = f"Set `{spec.key}` to **{_format(spec.key, value)}** for you {whom}."
            text += await model_note(community, spec, value, user_id)
            text += await _enforced_note(ctx, community, found, spec.key)
            await ctx.edit_response(-1, text)

    @group.register()
    class SettingsReset(
        lightbulb.SlashCommand, name="reset", description="Forget one of your settings"
    ):
        setting = lightbulb.string("setting", "Which setting", choices=SETTING_CHOICES)
        personality = lightbulb.string(
            "personality", "Only for this character", default=None, max_length=100,
            autocomplete=known.suggest,
        )  # fmt: skip

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            store = community.settings
            found, problem = await character(ctx, self.personality)
            try:
                if problem:
                    raise SettingError(problem)
                spec = spec_for(self.setting)
            except SettingError as exc:
                await ctx.edit_response(-1, f"Not changed: {exc}")
                return
            slug = found.slug if found else None
            removed = await store.reset_user(str(ctx.user.id), spec.key, personality=slug)
            whom = f" with **{found.display_name}**" if found else ""
            await ctx.edit_response(
                -1,
                f"Reset `{spec.key}`{whom}: the level below applies again."
                if removed
                else f"You had no own value for `{spec.key}`{whom}; nothing changed.",
            )


async def _enforced_note(
    ctx: lightbulb.Context, community: Community, found: Personality | None, key: str
) -> str:
    """Tell the user when a moderator's enforced channel value still wins here."""
    channel_id, parent_id = await where(ctx)
    if channel_id is None:
        return ""
    resolved = await community.resolver.resolve(
        found, user_id=str(ctx.user.id), channel_id=channel_id, parent_channel_id=parent_id
    )
    if resolved.source(key) is not Level.CHANNEL_ENFORCED:
        return ""
    value = resolved.value(key)
    shown = _format(key, value) if value is not None else "?"
    return f"\nIn this channel a moderator enforces `{key}` = **{shown}**, which wins here."
