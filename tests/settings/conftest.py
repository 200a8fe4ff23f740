"""Fixtures: a real redis-server and the settings stores on it."""

import pytest
from redis.asyncio import Redis

from tzurot.settings import PresetStore, SettingDefaults, SettingsResolver, SettingsStore

BOT_OWNER = "900"


@pytest.fixture
def presets(redis_client: Redis) -> PresetStore:
    return PresetStore(redis_client, bot_owner_id=BOT_OWNER)


@pytest.fixture
def store(redis_client: Redis) -> SettingsStore:
    return SettingsStore(redis_client)


@pytest.fixture
def defaults() -> SettingDefaults:
    return SettingDefaults(model="openai/default-model", history_limit=40)


@pytest.fixture
def resolver(
    store: SettingsStore, presets: PresetStore, defaults: SettingDefaults
) -> SettingsResolver:
    return SettingsResolver(store, presets, defaults)
