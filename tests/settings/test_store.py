"""The user and channel levels in Redis: set, reset, read back, and what is kept."""

from redis.asyncio import Redis

from tzurot.infra.keys import family_of
from tzurot.settings import ChannelValue, SettingsStore

USER, CHANNEL = "101", "555"


async def test_user_defaults_and_per_character_values_are_separate(store: SettingsStore) -> None:
    await store.set_user(USER, "temperature", 0.9)
    await store.set_user(USER, "temperature", 0.2, personality="lilith")
    await store.set_user(USER, "memory", False)

    assert await store.user_values(USER) == {"temperature": 0.9, "memory": False}
    assert await store.user_values(USER, personality="lilith") == {"temperature": 0.2}
    assert await store.user_values(USER, personality="nova") == {}

    assert await store.reset_user(USER, "temperature", personality="lilith") is True
    assert await store.reset_user(USER, "temperature", personality="lilith") is False
    assert await store.user_values(USER) == {"temperature": 0.9, "memory": False}


async def test_channel_values_keep_their_enforce_flag(store: SettingsStore) -> None:
    await store.set_channel(CHANNEL, "max_tokens", 300, enforce=True)
    await store.set_channel(CHANNEL, "model", "openai/gpt-4o")

    assert await store.channel_values(CHANNEL) == {
        "max_tokens": ChannelValue(300, enforce=True),
        "model": ChannelValue("openai/gpt-4o", enforce=False),
    }
    assert await store.reset_channel(CHANNEL, "max_tokens") is True
    assert await store.channel_values(CHANNEL) == {"model": ChannelValue("openai/gpt-4o", False)}


async def test_one_hash_per_scope_and_empty_scopes_vanish(
    store: SettingsStore, redis_client: Redis
) -> None:
    for key, value in [("temperature", 1.0), ("max_tokens", 10), ("memory", True)]:
        await store.set_user(USER, key, value)
        await store.set_user(USER, key, value, personality="lilith")
        await store.set_channel(CHANNEL, key, value)
    keys = sorted(k.decode() if isinstance(k, bytes) else k for k in await redis_client.keys("*"))
    assert keys == [f"tzurot:settings:channel:{CHANNEL}", f"tzurot:settings:user:{USER}"]
    assert all(family_of(k) is not None for k in keys)
    assert [await redis_client.ttl(k) for k in keys] == [-1, -1]  # bounded by keys, not by time

    for key in ("temperature", "max_tokens", "memory"):
        await store.reset_user(USER, key)
        await store.reset_user(USER, key, personality="lilith")
        await store.reset_channel(CHANNEL, key)
    assert await redis_client.keys("*") == []


async def test_values_edited_by_hand_out_of_range_are_ignored(
    store: SettingsStore, redis_client: Redis
) -> None:
    await redis_client.hset(
        f"tzurot:settings:user:{USER}",
        mapping={"temperature": "99", "memory": "perhaps", "nonsense": "1", "max_tokens": "50"},
    )
    await redis_client.hset(
        f"tzurot:settings:channel:{CHANNEL}", mapping={"top_p": "7|0.5", "model": "x"}
    )

    assert await store.user_values(USER) == {"max_tokens": 50}
    assert await store.channel_values(CHANNEL) == {}
    levels = await store.read_levels(user_id=USER, personality_slug=None, channel_id=CHANNEL)
    assert levels.user == {"max_tokens": 50} and levels.channel == {}
