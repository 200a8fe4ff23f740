"""/settings apikey set | browse | remove | test: users' own provider API keys (BYOK).

- `set provider` answers with a modal (one text input, custom id `api_key`); its submit
  (custom id `apikey-set:{provider}`, routed, so any process can take it) is deferred
  ephemerally, the key checked with the provider (a model list), then sealed and stored. The
  answer names the provider and the key's last four characters, nothing more.
- `browse` lists the providers with a key, each key's last four, when it was added and whether
  the provider refused it the last time it was used.
- `remove provider`, `test provider` (checks the stored key again).

Without ENCRYPTION_KEY nothing can be stored, and `set` says the operator must set it. The key
is never logged, echoed or put in an error: it is registered with the log redactor the moment
it arrives.
"""

from __future__ import annotations

from typing import Any

import hikari
import lightbulb

from tzurot.ai._litellm import loaded_litellm
from tzurot.ai.key_check import KeyChecker, KeyStatus, UnknownProvider
from tzurot.discord.commands.common import AUTOCOMPLETE_LIMIT, CommandServices, Personalities
from tzurot.discord.interactions_router import Refusal, Routed, custom_id
from tzurot.logs import get_logger
from tzurot.redaction import register_secret
from tzurot.settings.apikeys import (
    ENCRYPTION_KEY_MISSING,
    MAX_KEY_CHARS,
    MIN_KEY_CHARS,
    ApiKeyVault,
    StoredKey,
)

log = get_logger(__name__)

SET_PREFIX = "apikey-set"
KEY_FIELD = "api_key"
MAX_PROVIDER_CHARS = 40


def normalize_provider(text: str) -> str:
    return text.strip().lower()[: MAX_PROVIDER_CHARS + 1]


def key_problem(key: str) -> str | None:
    """Why a typed key cannot be a key (never quoting it), or None."""
    if not key:
        return "The key was empty. Nothing was stored."
    if len(key) < MIN_KEY_CHARS:
        return f"That is too short for an API key (at least {MIN_KEY_CHARS} characters)."
    if len(key) > MAX_KEY_CHARS:
        return f"That is too long for an API key (at most {MAX_KEY_CHARS} characters)."
    if any(not ("!" <= ch <= "~") for ch in key):
        return (
            "An API key has no spaces, line breaks or special characters: check what you "
            "pasted. Nothing was stored."
        )
    return None


def describe_keys(keys: list[StoredKey]) -> str:
    if not keys:
        return "You have no API keys stored. Add one with `/settings apikey set`."
    lines = ["Your API keys (only the last four characters are ever shown):"]
    for item in keys:
        added = f"<t:{int(item.added_at)}:R>"
        line = f"• **{item.provider}**: key ending `{item.last_four}`, added {added}"
        if item.rejected:
            line += " (⚠️ refused by the provider the last time it was used)"
        lines.append(line)
    return "\n".join(lines)


def provider_suggestions(checker: KeyChecker, typed: str) -> list[str]:
    """Providers whose keys we check and use first, then litellm's other provider names
    (refused when chosen, with the list of those we support)."""
    typed = typed.strip().lower()
    names = list(checker.providers)
    litellm = loaded_litellm()
    if litellm is not None:
        names += sorted({str(getattr(p, "value", p)) for p in litellm.provider_list} - set(names))
    starts = [n for n in names if n.startswith(typed)]
    inside = [n for n in names if typed in n and n not in starts]
    return (starts + inside)[:AUTOCOMPLETE_LIMIT]


class _ApiKeys:
    """What the commands share: the vault, the checker, and the handlers doing the work."""

    def __init__(self, services: CommandServices) -> None:
        self._services = services

    def vault(self) -> ApiKeyVault:
        return self._services.community.api_keys

    def checker(self) -> KeyChecker:
        return self._services.community.key_checker

    def supported(self, provider: str) -> str:
        """The provider, or a Refusal naming the ones we support."""
        if not self.checker().supports(provider):
            raise Refusal(str(UnknownProvider(provider)))
        return provider

    async def suggest_provider(self, ctx: lightbulb.AutocompleteContext[str]) -> None:
        typed = str(ctx.focused.value or "")
        await ctx.respond(provider_suggestions(self.checker(), typed))

    async def suggest_stored(self, ctx: lightbulb.AutocompleteContext[str]) -> None:
        typed = str(ctx.focused.value or "").strip().lower()
        stored = await self.vault().providers(str(ctx.interaction.user.id))
        await ctx.respond(sorted(p for p in stored if typed in p)[:AUTOCOMPLETE_LIMIT])

    async def open_modal(self, ctx: lightbulb.Context, typed: str) -> None:
        # The modal must be the first answer: only checks without I/O before it.
        try:
            if not self.vault().enabled:
                raise Refusal(ENCRYPTION_KEY_MISSING)
            provider = self.supported(normalize_provider(typed))
        except Refusal as refusal:
            await ctx.respond(refusal.message, ephemeral=True)
            return
        row = hikari.impl.ModalActionRowBuilder().add_text_input(
            KEY_FIELD,
            f"Your {provider} API key"[:45],
            style=hikari.TextInputStyle.SHORT,
            placeholder="Paste the key here (it is checked, then stored encrypted)"[:100],
            required=True,
            min_length=MIN_KEY_CHARS,
            max_length=MAX_KEY_CHARS,
        )
        await ctx.respond_with_modal(
            f"API key for {provider}"[:45], custom_id(SET_PREFIX, provider), components=[row]
        )

    async def on_set(self, routed: Routed) -> None:
        key = (routed.values.get(KEY_FIELD) or "").strip()
        register_secret(key)  # masked in every log line from here on
        if not routed.is_modal or len(routed.args) != 1:
            raise Refusal("That form is not valid. Run `/settings apikey set` again.")
        keys = self.vault()
        if not keys.enabled:
            raise Refusal(ENCRYPTION_KEY_MISSING)
        provider = self.supported(normalize_provider(routed.args[0]))
        problem = key_problem(key)
        if problem is not None:
            raise Refusal(problem)
        await routed.defer(ephemeral=True)
        check = await self.checker().check(provider, key)
        if check.status is not KeyStatus.VALID:
            shown = check.message
            if check.status is KeyStatus.REJECTED:
                shown += " Nothing was stored."
            await routed.reply(shown)
            return
        stored = await keys.set(routed.user_id, provider, key)
        log.info("user api key stored", provider=provider)
        await routed.reply(
            f"Saved your **{provider}** API key ending in `{stored.last_four}`: your "
            f"conversations with {provider} models now use it. `/settings apikey remove` "
            "forgets it."
        )

    async def browse(self, user_id: str) -> str:
        keys = self.vault()
        if not keys.enabled:
            return "No API keys can be stored here (no `ENCRYPTION_KEY` is set)."
        return describe_keys(await keys.browse(user_id))

    async def remove(self, user_id: str, typed: str) -> str:
        keys = self.vault()
        provider = normalize_provider(typed)[:MAX_PROVIDER_CHARS]
        if not await keys.remove(user_id, provider):
            return f"You have no API key stored for `{provider}`."
        log.info("user api key removed", provider=provider)
        return f"Forgot your **{provider}** API key."

    async def test(self, user_id: str, typed: str) -> str:
        keys = self.vault()
        found = self.checker()
        provider = normalize_provider(typed)[:MAX_PROVIDER_CHARS]
        key = await keys.get(user_id, provider)
        if key is None:
            return f"You have no API key stored for `{provider}`."
        if not found.supports(provider):
            return str(UnknownProvider(provider))
        check = await found.check(provider, key)
        if check.status is KeyStatus.VALID:
            await keys.clear_rejected(user_id, provider)
            return f"Your **{provider}** key works: {check.message}"
        if check.status is KeyStatus.REJECTED:
            await keys.mark_rejected(user_id, provider)
            return (
                f"{check.message} Replace it with `/settings apikey set` or remove it with "
                "`/settings apikey remove`."
            )
        return check.message.replace("; nothing was stored", "")


async def _answer(ctx: lightbulb.Context, text: str) -> None:
    await ctx.edit_response(-1, text, user_mentions=False, role_mentions=False)


def register(group: lightbulb.SubGroup, services: CommandServices, known: Personalities) -> None:
    del known  # no personality option here
    api_keys = _ApiKeys(services)
    services.router.register(SET_PREFIX, api_keys.on_set)

    def stored_provider(description: str) -> Any:
        """A `provider` option offering the providers the user has a key for."""
        return lightbulb.string(
            "provider", description, autocomplete=api_keys.suggest_stored,
            max_length=MAX_PROVIDER_CHARS,
        )  # fmt: skip

    @group.register()
    class ApiKeySet(
        lightbulb.SlashCommand, name="set", description="Add or replace your own API key"
    ):
        provider = lightbulb.string(
            "provider", "The provider (litellm's name: openai, openrouter, anthropic, ...)",
            autocomplete=api_keys.suggest_provider, max_length=MAX_PROVIDER_CHARS,
        )  # fmt: skip

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await api_keys.open_modal(ctx, self.provider)

    @group.register()
    class ApiKeyBrowse(
        lightbulb.SlashCommand, name="browse", description="The API keys you have stored"
    ):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            await _answer(ctx, await api_keys.browse(str(ctx.user.id)))

    @group.register()
    class ApiKeyRemove(
        lightbulb.SlashCommand, name="remove", description="Forget one of your API keys"
    ):
        provider = stored_provider("Whose key to forget")

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            await _answer(ctx, await api_keys.remove(str(ctx.user.id), self.provider))

    @group.register()
    class ApiKeyTest(
        lightbulb.SlashCommand, name="test", description="Check that your stored key still works"
    ):
        provider = stored_provider("Whose key to check")

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer(ephemeral=True)
            await _answer(ctx, await api_keys.test(str(ctx.user.id), self.provider))
