"""Waiting for a job to finish without polling: one subscription per process.

Every finished job is announced once on `tzurot:done` (by the result log's record script).
One subscription listens and wakes whoever waits on that job; a waiter re-reads the job on each
wake-up and, as a safety net for announcements lost while Redis was away, every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from tzurot.infra.keys import DONE_CHANNEL
from tzurot.logs import get_logger

log = get_logger(__name__)


class CompletionWaiter:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(DONE_CHANNEL.key())
        self._listener = asyncio.create_task(self._listen(self._pubsub), name="job-waiter")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("job announcements interrupted; resubscribing", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            for event in self._events.get(message["data"].decode(), ()):
                event.set()

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set when `job_id` finishes while the block runs."""
        event = asyncio.Event()
        self._events[job_id].add(event)
        try:
            yield event
        finally:
            watchers = self._events.get(job_id)
            if watchers is not None:
                watchers.discard(event)
                if not watchers:
                    del self._events[job_id]
