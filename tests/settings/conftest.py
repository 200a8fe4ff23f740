"""Fixtures: a real redis-server and the settings stores on it."""

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tzurot.settings import PresetStore, SettingDefaults, SettingsResolver, SettingsStore

BOT_OWNER = "900"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url)  # bytes, as the app's client
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest.fixture
def presets(client: Redis) -> PresetStore:
    return PresetStore(client, bot_owner_id=BOT_OWNER)


@pytest.fixture
def store(client: Redis) -> SettingsStore:
    return SettingsStore(client)


@pytest.fixture
def defaults() -> SettingDefaults:
    return SettingDefaults(model="openai/default-model", history_limit=40)


@pytest.fixture
def resolver(
    store: SettingsStore, presets: PresetStore, defaults: SettingDefaults
) -> SettingsResolver:
    return SettingsResolver(store, presets, defaults)
