"""The door every generation from Discord passes: the denylist, then the rate limits.

`Gate.admit` answers, for one message or /chat, which of the addressed characters may answer:
a denied user (or server) is dropped silently (no generation, no error, nothing enqueued); one
over a rate limit gets nothing enqueued and, the first time in the window, is told privately
when to try again (`Gate.tell`: a DM, else a short reply in the channel that pings nobody).
The bot owner (BOT_OWNER_ID) is never denied or limited. The HTTP API's /ai/generate is
operator traffic (behind the API token) and does not pass this gate.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import hikari

from tzurot.logs import get_logger
from tzurot.moderation.denylist import Denylist
from tzurot.moderation.rate_limits import Decision, RateLimiter

log = get_logger(__name__)


@dataclass(frozen=True)
class Admission:
    slugs: list[str] = field(default_factory=list)  # the characters that may answer
    denied: bool = False  # the user (or server) is denied outright: say nothing
    limited: Decision | None = None  # refused by a rate limit

    @property
    def notice(self) -> str | None:
        """What to tell the user, once per window (None: say nothing)."""
        decision = self.limited
        if decision is None or not decision.tell:
            return None
        return limit_text(decision)


def limit_text(decision: Decision) -> str:
    when = int(time.time() + decision.retry_seconds)
    who = "This channel is" if decision.limit == "channel" else "You are"
    return (
        f"{who} sending messages to the characters faster than they can answer. "
        f"Try again in {decision.retry_seconds} s (<t:{when}:R>)."
    )


class Gate:
    def __init__(
        self,
        denylist: Denylist,
        limiter: RateLimiter,
        *,
        owner_id: str | None,
        rest: hikari.api.RESTClient | None = None,
    ) -> None:
        self._denylist = denylist
        self._limiter = limiter
        self._owner_id = owner_id
        self._rest = rest

    async def admit(
        self,
        *,
        user_id: str,
        guild_id: str | None,
        channel_id: str,
        parent_channel_id: str | None,
        slugs: Sequence[str],
        request_id: str,
    ) -> Admission:
        if self._owner_id is not None and user_id == self._owner_id:
            return Admission(list(slugs))
        verdict = await self._denylist.verdict(
            user_id, guild_id, channel_id, slugs, parent_channel_id=parent_channel_id
        )
        if verdict.everywhere:
            log.info("denied user's message dropped")
            return Admission(denied=True)
        allowed = [s for s in slugs if not verdict.blocks(s)]
        if slugs and not allowed:
            log.info("denied user's message dropped")
            return Admission(denied=True)
        if allowed:
            decision = await self._limiter.check(user_id, channel_id, request_id, cost=len(allowed))
            if not decision.allowed:
                log.info("rate limited", limit=decision.limit, retry_s=decision.retry_seconds)
                return Admission(limited=decision)
        return Admission(allowed)

    async def tell(
        self, user_id: str, channel_id: str, text: str, *, reply_to: str | None = None
    ) -> None:
        """Privately if possible (a DM), else a short reply in the channel that pings nobody."""
        if self._rest is None:
            return
        rest = self._rest
        try:
            dm = await rest.create_dm_channel(hikari.Snowflake(user_id))
            await rest.create_message(dm.id, text, user_mentions=False, role_mentions=False,
                                      mentions_everyone=False)  # fmt: skip
            return
        except hikari.HTTPError as error:
            log.info("could not DM a rate-limit notice", error=type(error).__name__)
        try:
            await rest.create_message(
                hikari.Snowflake(channel_id), text,
                reply=hikari.Snowflake(reply_to) if reply_to else hikari.UNDEFINED,
                mentions_reply=False, user_mentions=False, role_mentions=False,
                mentions_everyone=False,
            )  # fmt: skip
        except hikari.HTTPError as error:
            log.info("could not post a rate-limit notice", error=type(error).__name__)
