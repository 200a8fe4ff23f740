"""The cascade: built-in < character's preset < character < channel < user < user-per-character,
with an enforced channel value above both user levels, threads inheriting their parent, and a
preset bringing its values at the level that names it."""

from typing import Any

import pytest
from redis.asyncio import Redis

from tzurot.personalities.models import Personality
from tzurot.settings import (
    Level,
    Preset,
    PresetStore,
    ResolvedSettings,
    SettingsResolver,
    SettingsStore,
)

USER, OTHER, CHANNEL, THREAD = "101", "102", "555", "556"


def character(**fields: object) -> Personality:
    return Personality.model_validate(
        {"name": "Lilith", "system_prompt": "You are Lilith.", **fields}
    )


async def make_preset(presets: PresetStore, name: str, **values: object) -> Preset:
    return await presets.create(Preset.model_validate({"name": name, "owner_id": USER, **values}))


async def resolve(
    resolver: SettingsResolver,
    personality: Personality | None = None,
    *,
    user_id: str = USER,
    channel_id: str | None = CHANNEL,
    parent_channel_id: str | None = None,
) -> ResolvedSettings:
    return await resolver.resolve(
        personality if personality is not None else character(),
        user_id=user_id,
        channel_id=channel_id,
        parent_channel_id=parent_channel_id,
    )


async def test_built_in_defaults_apply_when_nobody_said_anything(
    resolver: SettingsResolver,
) -> None:
    resolved = await resolve(resolver)

    assert resolved.model == "openai/default-model"
    assert resolved.history_limit == 40  # HISTORY_LIMIT
    assert (resolved.temperature, resolved.max_tokens, resolved.top_p) == (0.7, 4096, None)
    assert resolved.context_window == 131_072 and resolved.preset is None
    assert resolved.memory and resolved.streaming and resolved.voice_transcription
    assert not resolved.regenerate_on_edit and not resolved.group_replies
    assert all(resolved.source(k) is Level.BUILTIN for k in resolved.values)
    assert resolved.describe_source("model") == "built-in default"


async def test_each_level_beats_the_one_below(
    resolver: SettingsResolver, store: SettingsStore, presets: PresetStore
) -> None:
    await make_preset(presets, "Warm", temperature=1.1, max_tokens=100, top_p=0.5,
                      frequency_penalty=0.3)  # fmt: skip
    lilith = character(preset="Warm", temperature=1.2, model="openai/lilith-model")

    resolved = await resolve(resolver, lilith)
    assert (resolved.temperature, resolved.source("temperature")) == (1.2, Level.CHARACTER)
    assert (resolved.max_tokens, resolved.source("max_tokens")) == (100, Level.CHARACTER_PRESET)
    assert resolved.frequency_penalty == 0.3 and resolved.preset == "Warm"
    assert resolved.model == "openai/lilith-model"
    assert resolved.describe_source("max_tokens") == "character's preset Warm"

    await store.set_channel(CHANNEL, "temperature", 1.3)
    await store.set_channel(CHANNEL, "max_tokens", 200)
    resolved = await resolve(resolver, lilith)
    assert (resolved.temperature, resolved.source("temperature")) == (1.3, Level.CHANNEL)
    assert resolved.source("max_tokens") is Level.CHANNEL

    await store.set_user(USER, "temperature", 1.4)
    resolved = await resolve(resolver, lilith)
    assert (resolved.temperature, resolved.source("temperature")) == (1.4, Level.USER)
    assert resolved.max_tokens == 200  # the channel's still, the user did not set it

    await store.set_user(USER, "temperature", 1.5, personality=lilith.slug)
    resolved = await resolve(resolver, lilith)
    assert (resolved.temperature, resolved.source("temperature")) == (1.5, Level.USER_CHARACTER)

    # Another character, another user: their own levels only.
    nova = character(name="Nova")
    assert (await resolve(resolver, nova)).temperature == 1.4
    assert (await resolve(resolver, lilith, user_id=OTHER)).temperature == 1.3
    # Elsewhere (a DM): no channel level.
    assert (await resolve(resolver, lilith, user_id=OTHER, channel_id=None)).temperature == 1.2


async def test_an_enforced_channel_value_beats_both_user_levels(
    resolver: SettingsResolver, store: SettingsStore
) -> None:
    lilith = character()
    await store.set_user(USER, "max_tokens", 5000)
    await store.set_user(USER, "max_tokens", 6000, personality=lilith.slug)
    await store.set_user(USER, "temperature", 1.9)
    await store.set_channel(CHANNEL, "max_tokens", 300, enforce=True)
    await store.set_channel(CHANNEL, "temperature", 0.1)  # not enforced: users win

    resolved = await resolve(resolver, lilith)
    assert (resolved.max_tokens, resolved.source("max_tokens")) == (300, Level.CHANNEL_ENFORCED)
    assert (resolved.temperature, resolved.source("temperature")) == (1.9, Level.USER)
    assert "enforced" in resolved.describe_source("max_tokens")

    await store.set_channel(CHANNEL, "max_tokens", 300, enforce=False)
    assert (await resolve(resolver, lilith)).max_tokens == 6000


async def test_a_thread_has_its_own_value_else_its_parent_s(
    resolver: SettingsResolver, store: SettingsStore
) -> None:
    await store.set_channel(CHANNEL, "temperature", 0.4)
    await store.set_channel(CHANNEL, "max_tokens", 222, enforce=True)
    await store.set_user(USER, "max_tokens", 999)

    in_thread = await resolve(resolver, channel_id=THREAD, parent_channel_id=CHANNEL)
    assert (in_thread.temperature, in_thread.source("temperature")) == (0.4, Level.CHANNEL)
    assert in_thread.describe_source("temperature") == "channel, from the parent channel"
    assert (in_thread.max_tokens, in_thread.source("max_tokens")) == (222, Level.CHANNEL_ENFORCED)

    await store.set_channel(THREAD, "temperature", 1.6)
    await store.set_channel(THREAD, "max_tokens", 50)  # the thread's own: not enforced
    in_thread = await resolve(resolver, channel_id=THREAD, parent_channel_id=CHANNEL)
    assert in_thread.temperature == 1.6 and in_thread.describe_source("temperature") == "channel"
    assert (in_thread.max_tokens, in_thread.source("max_tokens")) == (999, Level.USER)
    # The parent itself is unchanged by its thread.
    assert (await resolve(resolver)).temperature == 0.4


async def test_a_preset_at_each_level_brings_its_values_at_that_level(
    resolver: SettingsResolver, store: SettingsStore, presets: PresetStore
) -> None:
    await make_preset(presets, "Channel Set", temperature=0.3, model="openai/channel-model")
    await make_preset(presets, "User Set", temperature=1.7, top_p=0.9)
    await make_preset(presets, "Strict", max_tokens=64)
    lilith = character(temperature=1.0)

    await store.set_channel(CHANNEL, "preset", "channel-set")
    resolved = await resolve(resolver, lilith)
    assert (resolved.temperature, resolved.source("temperature")) == (0.3, Level.CHANNEL)
    assert resolved.model == "openai/channel-model" and resolved.preset == "Channel Set"
    assert resolved.describe_source("temperature") == "channel, via preset Channel Set"

    await store.set_user(USER, "preset", "user-set")
    resolved = await resolve(resolver, lilith)
    assert (resolved.temperature, resolved.source("temperature")) == (1.7, Level.USER)
    assert resolved.top_p == 0.9 and resolved.model == "openai/channel-model"
    assert resolved.preset == "User Set"

    # A value set at the same level as a preset wins over the preset's.
    await store.set_user(USER, "temperature", 0.6)
    assert (await resolve(resolver, lilith)).temperature == 0.6

    await store.set_user(USER, "preset", "strict", personality=lilith.slug)
    resolved = await resolve(resolver, lilith)
    assert (resolved.max_tokens, resolved.source("max_tokens")) == (64, Level.USER_CHARACTER)
    assert resolved.preset == "Strict" and resolved.temperature == 0.6

    # An enforced channel preset beats them all.
    await store.set_channel(CHANNEL, "preset", "channel-set", enforce=True)
    resolved = await resolve(resolver, lilith)
    assert (resolved.temperature, resolved.source("temperature")) == (0.3, Level.CHANNEL_ENFORCED)
    assert resolved.preset == "Channel Set"
    assert resolved.max_tokens == 64  # the preset does not say, the user's level does


async def test_a_deleted_preset_brings_nothing_and_breaks_nothing(
    resolver: SettingsResolver, store: SettingsStore, presets: PresetStore
) -> None:
    await make_preset(presets, "Gone", temperature=1.9)
    await store.set_user(USER, "preset", "gone")
    await presets.delete("gone", USER)

    resolved = await resolve(resolver, character(preset="Gone"))
    assert resolved.temperature == 0.7 and resolved.preset is None


async def test_no_character_resolves_the_other_levels(
    resolver: SettingsResolver, store: SettingsStore
) -> None:
    await store.set_user(USER, "group_replies", True)
    await store.set_user(USER, "group_replies", False, personality="lilith")
    resolved = await resolver.resolve(None, user_id=USER, channel_id=CHANNEL)
    assert resolved.group_replies is True and resolved.source("group_replies") is Level.USER


async def test_resolving_is_one_round_trip(
    resolver: SettingsResolver,
    store: SettingsStore,
    presets: PresetStore,
    redis_client: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_preset(presets, "Warm", temperature=1.1)
    await make_preset(presets, "Cool", temperature=0.1)
    await store.set_user(USER, "preset", "warm")
    await store.set_channel(CHANNEL, "preset", "cool")
    await store.set_channel(THREAD, "memory", False)
    await resolve(resolver)  # the script is loaded into Redis once, on first use
    sent: list[str] = []
    real: Any = redis_client.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return await real(*args, **options)

    monkeypatch.setattr(redis_client, "execute_command", counting)
    resolved = await resolve(
        resolver, character(preset="Warm"), channel_id=THREAD, parent_channel_id=CHANNEL
    )

    assert sent == ["EVALSHA"]  # every level and all three presets, in one script call
    assert resolved.temperature == 1.1 and resolved.memory is False


@pytest.mark.parametrize("hostile", ["{x}", "a/b", "*", "\\", "' or 1=1", "é李"])
async def test_odd_ids_and_slugs_do_not_leak_between_scopes(
    resolver: SettingsResolver, store: SettingsStore, hostile: str
) -> None:
    await store.set_user(hostile, "temperature", 1.3)
    resolved = await resolve(resolver, user_id=hostile)
    assert resolved.temperature == 1.3
    assert (await resolve(resolver)).temperature == 0.7
