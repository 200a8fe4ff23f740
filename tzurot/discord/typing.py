"""The typing indicator while a personality thinks, and a notice if it takes very long."""

from __future__ import annotations

import asyncio
import contextlib

import hikari

from tzurot.discord.sender import ReplySender
from tzurot.logs import get_logger

log = get_logger(__name__)

TYPING_REFRESH_SECONDS = 8.0
TAKING_LONGER_TEXT = "⏳ This is taking longer than usual; the answer will appear here."


class TypingKeeper:
    """One typing task per pending job, ended when its reply is delivered."""

    def __init__(
        self, rest: hikari.api.RESTClient, sender: ReplySender, longer_after: float
    ) -> None:
        self._rest = rest
        self._sender = sender
        self._longer_after = longer_after
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._notices: dict[str, tuple[str, str]] = {}

    def start(self, job_id: str, channel_id: str) -> None:
        if job_id not in self._tasks:
            self._tasks[job_id] = asyncio.create_task(self._keep(job_id, channel_id))

    async def _keep(self, job_id: str, channel_id: str) -> None:
        loop = asyncio.get_running_loop()
        notice_at = loop.time() + self._longer_after
        while True:
            with contextlib.suppress(hikari.HTTPError, OSError):
                await self._rest.trigger_typing(hikari.Snowflake(channel_id))
            if job_id not in self._notices and loop.time() >= notice_at:
                with contextlib.suppress(Exception):
                    notice = await self._sender.post_plain(channel_id, TAKING_LONGER_TEXT)
                    self._notices[job_id] = (channel_id, notice)
            await asyncio.sleep(min(TYPING_REFRESH_SECONDS, max(notice_at - loop.time(), 0.05)))

    async def stop(self, job_id: str) -> None:
        task = self._tasks.pop(job_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        notice = self._notices.pop(job_id, None)
        if notice is not None:
            await self._sender.delete(*notice)

    async def stop_all(self) -> None:
        for job_id in list(self._tasks):
            await self.stop(job_id)
