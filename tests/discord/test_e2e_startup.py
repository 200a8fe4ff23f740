"""Start-up problems a bot owner must understand: the Message Content intent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator import DiscordEmulator


async def test_a_refused_message_content_intent_is_explained(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    discord_emulator.settings.application_flags = 0  # not enabled in the developer portal

    with pytest.raises(RuntimeError, match="Message Content"):
        await start_bot()
