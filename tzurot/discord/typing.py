"""The typing indicator while a personality thinks, and a notice if it takes very long.

What is pending lives in Redis (`tzurot:typing`: one record per reply being generated, each
with a deadline), so it does not matter which process started a reply or which one delivers
it: delivery removes the record, and the indicator ends. Every process with the Discord part
keeps the indicator up for the channels of its own shards (Discord shows it for 10 s per
trigger), so a restarted process picks up where it left off and two processes never both do.
This refresher is a per-process display loop, not scheduled maintenance.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Literal

import hikari
from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis

from tzurot.discord.delivery.errors import DeliveryError
from tzurot.discord.delivery.sender import ReplySender, discord_call
from tzurot.discord.interactions import InteractionTokens
from tzurot.infra.keys import TYPING
from tzurot.infra.redis_client import as_text
from tzurot.logs import get_logger

log = get_logger(__name__)

REFRESH_SECONDS = 8.0
TAKING_LONGER_TEXT = "⏳ This is taking longer than usual; the answer will appear here."
STILL_THINKING_TEXT = "⏳ Still thinking… the answer will appear here when it's ready."

# KEYS: typing. ARGV: job id. Removes the record and returns it.
_TAKE = """
local record = redis.call('HGET', KEYS[1], ARGV[1])
if record then redis.call('HDEL', KEYS[1], ARGV[1]) end
return record
"""
# KEYS: typing. ARGV: job id, record. Updates a record that is still there.
_UPDATE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""


class Pending(BaseModel):
    """A reply being generated, as the typing indicator and the notice need it."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    kind: Literal["channel", "interaction"]
    channel_id: str  # where typing shows (the thread, in a thread)
    guild_id: str | None
    deadline: float  # epoch seconds; the record is dropped after it
    notice_at: float
    application_id: str | None = None
    notice_message_id: str | None = None
    noticed: bool = False


class TypingBoard:
    def __init__(
        self,
        redis: Redis,
        rest: hikari.api.RESTClient,
        sender: ReplySender,
        interactions: InteractionTokens,
        *,
        longer_after: float,
        owns: Callable[[str | None], bool],
    ) -> None:
        self._redis = redis
        self._rest = rest
        self._sender = sender
        self._interactions = interactions
        self._longer_after = longer_after
        self._owns = owns  # whether a guild's (None: DMs) channels are this process's to refresh
        self._take = redis.register_script(_TAKE)
        self._update = redis.register_script(_UPDATE)
        # The refresher sleeps until the next round or notice; a reply started here whose
        # notice falls due before that wakes it.
        self._wake = asyncio.Event()
        self._next_round_at = 0.0

    async def start(
        self,
        job_id: str,
        *,
        kind: Literal["channel", "interaction"],
        channel_id: str,
        guild_id: str | None,
        lasts: float,
        application_id: str | None = None,
    ) -> None:
        now = time.time()
        pending = Pending(
            job_id=job_id, kind=kind, channel_id=channel_id, guild_id=guild_id,
            deadline=now + lasts, notice_at=now + self._longer_after,
            application_id=application_id,
        )  # fmt: skip
        await self._redis.hset(TYPING.key(), job_id, pending.model_dump_json())
        if pending.notice_at < self._next_round_at:
            self._wake.set()
        if kind == "channel":
            await self._trigger(channel_id)

    async def stop(self, job_id: str) -> None:
        """The reply is there (or never will be): end the indicator and remove the notice."""
        raw = await self._take(keys=[TYPING.key()], args=[job_id])
        pending = _parse(raw)
        if pending is not None and pending.notice_message_id is not None:
            await self._sender.delete(pending.channel_id, pending.notice_message_id)

    async def run(self) -> None:
        """Keep the indicators of this process's shards up, until cancelled."""
        typing_at = 0.0
        while True:
            now = time.time()
            pause = REFRESH_SECONDS
            try:
                pause = await self.refresh(typing=now >= typing_at)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("typing refresh failed; trying again")
            if now >= typing_at:
                typing_at = now + REFRESH_SECONDS
            pause = max(min(pause, typing_at - time.time()), 0.05)
            self._next_round_at = time.time() + pause
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    async def refresh(self, *, typing: bool = True) -> float:
        """One round (notices due, and the indicators when `typing`); returns how long until
        the next notice falls due."""
        raw = await self._redis.hgetall(TYPING.key())
        now = time.time()
        pause = REFRESH_SECONDS
        channels: set[str] = set()
        expired: list[str] = []
        for field, value in raw.items():
            pending = _parse(value)
            if pending is None or pending.deadline < now:
                expired.append(as_text(field))
                continue
            if not self._owns(pending.guild_id):
                continue
            if pending.kind == "channel":
                channels.add(pending.channel_id)
            if pending.noticed:
                continue
            if now >= pending.notice_at:
                await self._notice(pending)
            else:
                pause = min(pause, pending.notice_at - now)
        if expired:
            await self._redis.hdel(TYPING.key(), *expired)
        if typing:
            await asyncio.gather(*(self._trigger(channel) for channel in channels))
        return pause

    async def _notice(self, pending: Pending) -> None:
        notice_id = None
        try:
            if pending.kind == "interaction" and pending.application_id:
                token = await self._interactions.get(pending.job_id)
                if token is not None:
                    await self._sender.edit_interaction(
                        pending.application_id, token, STILL_THINKING_TEXT
                    )
            else:
                notice_id = await self._sender.post_plain(pending.channel_id, TAKING_LONGER_TEXT)
        except DeliveryError as error:
            log.info("could not post a 'taking longer' notice", error=str(error))
        updated = pending.model_copy(update={"noticed": True, "notice_message_id": notice_id})
        stored = await self._update(
            keys=[TYPING.key()], args=[pending.job_id, updated.model_dump_json()]
        )
        if not stored and notice_id is not None:
            # The reply arrived meanwhile: the notice has nothing to announce.
            await self._sender.delete(pending.channel_id, notice_id)

    async def _trigger(self, channel_id: str) -> None:
        try:
            await discord_call(lambda: self._rest.trigger_typing(hikari.Snowflake(channel_id)))
        except DeliveryError as error:
            log.debug("typing indicator refused", channel_id=channel_id, error=str(error))


def _parse(raw: bytes | str | None) -> Pending | None:
    if raw is None:
        return None
    try:
        return Pending.model_validate_json(raw)
    except ValidationError:
        return None
