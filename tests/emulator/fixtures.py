"""pytest fixtures: ``discord_emulator`` (add ``"tests.emulator.fixtures"`` to pytest_plugins)."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import pytest

from tests.emulator.ids import bot_token
from tests.emulator.server import DiscordEmulator

__all__ = ["bot_token", "discord_emulator"]


@pytest.fixture
async def discord_emulator() -> AsyncIterator[DiscordEmulator]:
    """A started emulator: one guild ("Test Guild"), one text channel ("general") and a bot
    user whose role has Manage Webhooks. Stopped afterwards (close your bot first)."""
    emu = DiscordEmulator()
    guild = emu.add_guild("Test Guild")
    emu.add_text_channel(guild, "general")
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()
        for record in emu.rest.unknown:
            warnings.warn(
                f"Discord emulator had no route for {record.method} {record.path}",
                stacklevel=1,
            )
        if emu.rest.internal_errors:
            record, error = emu.rest.internal_errors[0]
            pytest.fail(f"Discord emulator bug on {record.method} {record.path}: {error!r}")
