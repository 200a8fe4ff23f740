"""/models browse [provider], and the model autocomplete every command with a model option uses.

What a user is offered is what they can actually use: litellm's chat models of the providers
this deployment has a key for, plus those the user has their own key for (BYOK). Pages turn with
buttons whose custom ids carry the page (`models:page:{provider|-}:{page}`), so any process can
answer a click, even after a restart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import hikari
import lightbulb

from tzurot.ai.catalog import AUTOCOMPLETE_LIMIT, ModelCatalog
from tzurot.discord.commands.common import (
    CommandServices,
    Personalities,
    page_buttons,
    paginate,
)
from tzurot.discord.interactions_router import Expired, Routed
from tzurot.discord.services import Community

PAGE_SIZE = 20
PAGE_PREFIX = "models:page"
_ALL = "-"

# What an option's `autocomplete=` takes.
Autocomplete = Callable[[lightbulb.AutocompleteContext[str]], Awaitable[None]]


async def user_providers(community: Community, user_id: str) -> set[str]:
    """The providers the user has their own key for."""
    try:
        return set(await community.key_providers.providers(user_id))
    except Exception:  # a Redis hiccup must not break autocomplete: operator models still show
        return set()


async def suggest_models(community: Community, user_id: str, typed: str) -> list[str]:
    """At most 25 model names containing `typed`, reachable by this user."""
    found = community.models.search(
        typed, await user_providers(community, user_id), AUTOCOMPLETE_LIMIT * 2
    )
    # Discord takes choices of at most 100 characters.
    return [name for name in found if len(name) <= 100][:AUTOCOMPLETE_LIMIT]


def model_autocomplete(community: Community) -> Autocomplete:
    """An autocomplete provider for any `model` option (`lightbulb.string(...,
    autocomplete=model_autocomplete(services.community))`)."""

    async def suggest(ctx: lightbulb.AutocompleteContext[str]) -> None:
        typed = str(ctx.focused.value or "")
        await ctx.respond(await suggest_models(community, str(ctx.interaction.user.id), typed))

    return suggest


def render_page(
    catalog: ModelCatalog, provider: str | None, page: int, providers: set[str]
) -> tuple[str, list[hikari.api.ComponentBuilder]]:
    """One page of models as text, with previous/next buttons."""
    models = catalog.models(provider, providers)
    if not models:
        reachable = ", ".join(catalog.providers(providers)) or "none"
        what = f"for provider `{(provider or '')[:40]}`" if provider else "at all"
        return (f"No models {what} that you can use here. Providers you can use: {reachable}.", [])
    shown, page, pages = paginate(models, page, PAGE_SIZE)
    title = f"**Models** of `{provider}`" if provider else "**Models** you can use"
    lines = [f"{title} — page {page + 1}/{pages} ({len(models)} models)"]
    lines += [f"• {info.describe()}" for info in shown]
    if not provider:
        lines.append("Narrow it down: `/models browse provider:` " + ", ".join(
            catalog.providers(providers))[:300])  # fmt: skip
    return "\n".join(lines)[:2000], page_buttons(PAGE_PREFIX, page, pages, provider or _ALL)


def register(client: lightbulb.Client, services: CommandServices, known: Personalities) -> None:
    community = services.community
    models = lightbulb.Group("models", "The models you can choose")

    async def suggest_provider(ctx: lightbulb.AutocompleteContext[str]) -> None:
        typed = str(ctx.focused.value or "").lower()
        found = community.models.providers(
            await user_providers(community, str(ctx.interaction.user.id))
        )
        await ctx.respond([p for p in found if typed in p][:AUTOCOMPLETE_LIMIT])

    @models.register()
    class ModelsBrowse(
        lightbulb.SlashCommand, name="browse", description="List the models you can use"
    ):
        provider = lightbulb.string(
            "provider", "Only this provider's models (openai, openrouter, ...)",
            default=None, max_length=60, autocomplete=suggest_provider,
        )  # fmt: skip

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            provider = _provider_arg(self.provider)
            text, components = render_page(
                community.models, provider, 0, await user_providers(community, str(ctx.user.id))
            )
            await ctx.edit_response(-1, text, components=components)

    async def on_page(routed: Routed) -> None:
        if len(routed.args) != 2 or not routed.args[1].isdigit():
            raise Expired()
        provider = None if routed.args[0] == _ALL else routed.args[0]
        text, components = render_page(
            community.models,
            provider,
            int(routed.args[1]),
            await user_providers(community, routed.user_id),
        )
        await routed.update(text, components=components)

    services.router.register(PAGE_PREFIX, on_page)
    client.register(models)


def _provider_arg(value: str | None) -> str | None:
    if not value:
        return None
    cleaned = "".join(ch for ch in value.strip().lower() if ch.isalnum() or ch in "_-.")
    return cleaned or None
