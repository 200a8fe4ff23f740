"""Start and stop a real ``hikari.GatewayBot`` against the emulator inside a running loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Generic, TypeVar

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
    bot: hikari.GatewayBot,
    emu: DiscordEmulator,
    *,
    timeout: float = 10.0,
    shard_ids: Sequence[int] | None = None,
    shard_count: int | None = None,
) -> AsyncIterator[hikari.GatewayBot]:
    """``await bot.start()`` (not ``bot.run()``, which wants to own the loop), wait until the
    emulator sent READY, and ``await bot.close()`` afterwards. ``shard_ids``/``shard_count``
    go to ``start`` (e.g. ``shard_ids=[1], shard_count=2`` for the second of two processes);
    then it waits until those shards are READY."""
    try:
        await asyncio.wait_for(
            bot.start(check_for_updates=False, shard_ids=shard_ids, shard_count=shard_count),
            timeout,
        )
        if shard_ids is not None or shard_count is not None:
            shards = shard_ids if shard_ids is not None else range(shard_count or 1)
            await emu.wait_for_shards(shards, timeout)
        else:
            await emu.wait_until_ready(timeout)
        yield bot
    finally:
        with contextlib.suppress(hikari.ComponentStateConflictError):
            await asyncio.wait_for(bot.close(), timeout)


E = TypeVar("E", bound=hikari.Event)


class Events(Generic[E]):
    """Collects events of one type from a bot; ``next()`` waits on a queue, no polling."""

    def __init__(self, bot: hikari.GatewayBot, event_type: type[E]) -> None:
        self.queue: asyncio.Queue[E] = asyncio.Queue()
        bot.subscribe(event_type, self._on_event)

    async def _on_event(self, event: E) -> None:
        await self.queue.put(event)

    async def next(self, timeout: float = 5.0) -> E:
        return await asyncio.wait_for(self.queue.get(), timeout)

    def pending(self) -> list[E]:
        """Everything received and not yet taken with ``next()``."""
        found: list[E] = []
        while not self.queue.empty():
            found.append(self.queue.get_nowait())
        return found
