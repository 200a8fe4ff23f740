"""Start and stop a real ``hikari.GatewayBot`` against the emulator inside a running loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import hikari

from tests.emulator.server import DiscordEmulator

# What a bot reading messages needs; MESSAGE_CONTENT is privileged.
DEFAULT_INTENTS = hikari.Intents.ALL_UNPRIVILEGED | hikari.Intents.MESSAGE_CONTENT


def make_gateway_bot(
    emu: DiscordEmulator, *, intents: hikari.Intents = DEFAULT_INTENTS, **kwargs: Any
) -> hikari.GatewayBot:
    """A real GatewayBot pointed at the emulator (no banner, no logging setup, no update check
    on start, which is a ``start()`` argument rather than a constructor one)."""
    kwargs.setdefault("logs", None)
    kwargs.setdefault("banner", None)
    kwargs.setdefault("suppress_optimization_warning", True)
    return hikari.GatewayBot(emu.token, rest_url=emu.rest_url, intents=intents, **kwargs)


@contextlib.asynccontextmanager
async def running_bot(
    bot: hikari.GatewayBot, emu: DiscordEmulator, *, timeout: float = 10.0
) -> AsyncIterator[hikari.GatewayBot]:
    """``await bot.start()`` (not ``bot.run()``, which wants to own the loop), wait until the
    emulator sent READY, and ``await bot.close()`` afterwards."""
    try:
        await asyncio.wait_for(bot.start(check_for_updates=False), timeout)
        await emu.wait_until_ready(timeout)
        yield bot
    finally:
        with contextlib.suppress(hikari.ComponentStateConflictError):
            await asyncio.wait_for(bot.close(), timeout)
