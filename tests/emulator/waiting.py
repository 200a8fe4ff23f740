"""Event-driven waiting: every state change wakes the waiters, who re-check their predicate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class EmulatorTimeoutError(TimeoutError):
    """A wait on the emulator ran out of time; the message says what was expected and seen."""


class ChangeNotifier:
    """Condition-like helper whose ``notify`` can be called from synchronous code."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float,
        describe: Callable[[], str],
    ) -> T:
        """Return the first truthy ``predicate()``; re-checked after every change, never polled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise EmulatorTimeoutError(
                    f"timed out after {timeout:.1f}s waiting for {describe()}"
                )
            event = self._event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue
