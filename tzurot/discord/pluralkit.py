"""PluralKit members as speakers.

PluralKit (https://pluralkit.me) lets one Discord account speak as the members of its system: it
deletes the user's message and posts it again through a webhook, under the member's name. Such a
webhook message is the member speaking for its sender: it triggers replies as the sender's own
message would, history and the prompt name the member, and memory, settings, the denylist and
the rate limits are the sender's. Every other webhook (and bot) stays ignored.

One message is answered once, however the two copies arrive:
- a webhook message (not one of ours) that could trigger a reply is looked up in PluralKit's
  API (`GET /messages/{id}`), retried briefly while PluralKit may not know it yet;
- a triggering message of a user who has a PluralKit system (`GET /systems/{user id}`, cached)
  is held for a grace period: dropped if PluralKit reposts it (the member's message claims it,
  or PluralKit's API names it as an original), answered otherwise;
- whichever copy goes ahead claims the original's id first (SET NX in Redis), and the other is
  dropped, also when it comes later or in another process.

Lookups are cached in Redis; PluralKit's rate limit is kept across processes (a per-second
window per scope, and a pause after a 429 for its retry_after). PluralKit down, slow or
answering garbage: messages are treated as if it did not exist (a webhook message is ignored,
an original is answered), never a crash and never a second reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import hikari
from redis.asyncio import Redis

from tzurot.discord.triggers import IncomingMessage
from tzurot.infra.keys import (
    PLURALKIT_CLAIM,
    PLURALKIT_MESSAGE,
    PLURALKIT_PAUSE,
    PLURALKIT_RATE,
    PLURALKIT_SYSTEM,
)
from tzurot.logs import get_logger

log = get_logger(__name__)

USER_AGENT = "Tzurot (a Discord bot hosting AI characters; PluralKit members as speakers)"
# PluralKit allows 10 requests a second per scope (`message`: GET /messages, `generic_get`:
# other GETs); a little less is used, shared by every process.
REQUESTS_PER_SECOND = 8
REQUEST_TIMEOUT_SECONDS = 2.0
# After a timeout or a refused connection PluralKit is left alone this long (in this process).
DOWN_SECONDS = 30.0
# How long a webhook message is looked up again while PluralKit's API does not know it yet.
PATIENCE_SECONDS = 2.0
RETRY_DELAYS = (0.25, 0.5, 1.0)
NOT_PROXIED_SECONDS = 300  # a "not proxied" answer is kept 5 min (it may be premature)
MAX_RETRY_AFTER_SECONDS = 10.0
_NOT_PROXIED = "-"
_SNOWFLAKE = re.compile(r"^\d{1,20}$")
_MESSAGE_LINK = re.compile(
    r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(?:\d+|@me)/\d+/(\d+)"
)
_RECENT_DELETES = 2000
_DELETE_MEMORY_SECONDS = 60.0

# KEYS: pause, window. ARGV: limit, window ms. Returns 0 (go) or the ms to wait.
_ACQUIRE = """
local pause = redis.call('PTTL', KEYS[1])
if pause > 0 then return pause end
local used = redis.call('INCR', KEYS[2])
if used == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
if used <= tonumber(ARGV[1]) then return 0 end
local left = redis.call('PTTL', KEYS[2])
if left < 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  left = tonumber(ARGV[2])
end
return left
"""


class PluralKitUnavailable(Exception):
    """PluralKit did not answer usefully (down, slow, rate limited too long, garbage)."""


@dataclass(frozen=True)
class ProxiedMessage:
    """What PluralKit's API says about a message it proxied."""

    message_id: str  # the webhook message PluralKit posted
    original_id: str  # the sender's message it deleted
    sender_id: str  # the Discord account that wrote it
    member_name: str  # the member's display name (else its name)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> ProxiedMessage | None:
        try:
            data = json.loads(raw)
            return cls(**{f.name: str(data[f.name]) for f in dataclasses.fields(cls)})
        except (ValueError, KeyError, TypeError):
            return None


def parse_message(data: Any) -> ProxiedMessage:
    """PluralKit's message model (`id`, `original`, `sender`, `member`), checked; ValueError
    when it is not what PluralKit sends."""
    if not isinstance(data, dict):
        raise ValueError("not an object")
    ids = [data.get("id"), data.get("original"), data.get("sender")]
    if not all(isinstance(v, str) and _SNOWFLAKE.match(v) for v in ids):
        raise ValueError("ids are not snowflakes")
    member = data.get("member")
    if not isinstance(member, dict):
        raise ValueError("no member")
    name = _member_name(member)
    if name is None:
        raise ValueError("the member has no name")
    message_id, original_id, sender_id = (str(v) for v in ids)
    return ProxiedMessage(message_id, original_id, sender_id, name)


def _member_name(member: dict[str, Any]) -> str | None:
    for key in ("display_name", "name"):
        value = member.get(key)
        if isinstance(value, str):
            name = " ".join(value.split())[:100]
            if name:
                return name
    return None


def reply_in_embeds(message: hikari.PartialMessage) -> str | None:
    """The message a PluralKit repost replies to: webhooks cannot reply, so PluralKit quotes
    it in an embed whose description links to it ("[Reply to:](https://discord.com/...)")."""
    for embed in message.embeds or ():
        found = _MESSAGE_LINK.search(embed.description or "")
        if found is not None:
            return found.group(1)
    return None


class PluralKitApi:
    """PluralKit's v2 API: the two lookups, cached in Redis, within its rate limit."""

    def __init__(
        self,
        base_url: str,
        redis: Redis,
        *,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        per_second: int = REQUESTS_PER_SECOND,
        down_seconds: float = DOWN_SECONDS,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._redis = redis
        self._timeout = timeout
        self._per_second = per_second
        self._down_seconds = down_seconds
        self._acquire = redis.register_script(_ACQUIRE)
        self._session: aiohttp.ClientSession | None = None
        self._down_until = 0.0
        # One question per user at a time in this process (a burst of a user's messages).
        self._asking: dict[str, asyncio.Task[bool]] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def message(self, message_id: str, *, patience: float = 0.0) -> ProxiedMessage | None:
        """The proxied message `message_id` is (the webhook message) or was (the original),
        None when PluralKit does not know it. A "not yet" is asked again for `patience` s."""
        key = PLURALKIT_MESSAGE.key(message_id=message_id)
        cached = await self._redis.get(key)
        if cached is not None:
            text = cached.decode() if isinstance(cached, bytes) else str(cached)
            return None if text == _NOT_PROXIED else ProxiedMessage.from_json(text)
        deadline = time.monotonic() + patience
        delays = iter(RETRY_DELAYS)
        while True:
            status, body = await self._get("message", f"/messages/{message_id}")
            if status == 200:
                try:
                    found = parse_message(body)
                except ValueError as error:
                    raise PluralKitUnavailable(f"unreadable message answer: {error}") from None
                if message_id not in (found.message_id, found.original_id):
                    raise PluralKitUnavailable("the answer is about another message")
                await self._remember(found)
                return found
            if status != 404:
                raise PluralKitUnavailable(f"HTTP {status}")
            delay = next(delays, RETRY_DELAYS[-1])
            if time.monotonic() + delay > deadline:
                await self._redis.set(key, _NOT_PROXIED, ex=NOT_PROXIED_SECONDS)
                return None
            await asyncio.sleep(delay)

    async def has_system(self, user_id: str) -> bool:
        """Whether the Discord user has a PluralKit system (404: none)."""
        key = PLURALKIT_SYSTEM.key(user_id=user_id)
        cached = await self._redis.get(key)
        if cached is not None:
            return cached in (b"1", "1")
        task = self._asking.get(user_id)
        if task is None:
            task = asyncio.create_task(self._ask_system(user_id, key))
            self._asking[user_id] = task
            task.add_done_callback(lambda t: self._asked(user_id, t))
        return await asyncio.shield(task)

    def _asked(self, user_id: str, task: asyncio.Task[bool]) -> None:
        self._asking.pop(user_id, None)
        if not task.cancelled():
            task.exception()  # retrieved here too: every waiter may have gone

    async def _ask_system(self, user_id: str, key: str) -> bool:
        status, body = await self._get("generic_get", f"/systems/{user_id}")
        if status == 200 and isinstance(body, dict) and isinstance(body.get("id"), str):
            found = True
        elif status == 404:
            found = False
        else:
            raise PluralKitUnavailable(f"HTTP {status} for a system")
        await self._redis.set(key, "1" if found else "0", ex=PLURALKIT_SYSTEM.ttl_seconds)
        return found

    async def _remember(self, found: ProxiedMessage) -> None:
        ttl = PLURALKIT_MESSAGE.ttl_seconds
        async with self._redis.pipeline(transaction=False) as pipe:
            for message_id in (found.message_id, found.original_id):
                pipe.set(PLURALKIT_MESSAGE.key(message_id=message_id), found.to_json(), ex=ttl)
            await pipe.execute()

    # -- HTTP, within the rate limit -------------------------------------------------------------

    async def _get(self, scope: str, path: str) -> tuple[int, Any]:
        """(status, JSON body or None). 429s are waited out within the timeout; a timeout, a
        refused connection or an unreadable body raise PluralKitUnavailable."""
        if time.monotonic() < self._down_until:
            raise PluralKitUnavailable("PluralKit was unreachable a moment ago")
        deadline = time.monotonic() + self._timeout
        while True:
            await self._slot(scope, deadline)
            left = deadline - time.monotonic()
            if left <= 0:
                raise PluralKitUnavailable("out of time")
            try:
                async with asyncio.timeout(left):
                    status, body, retry_after = await self._request(path)
            except (TimeoutError, aiohttp.ClientConnectionError) as error:
                self._down_until = time.monotonic() + self._down_seconds
                raise PluralKitUnavailable(type(error).__name__) from None
            except (aiohttp.ClientError, ValueError) as error:
                raise PluralKitUnavailable(type(error).__name__) from None
            if status != 429:
                return status, body
            pause_ms = max(1, int(min(retry_after, MAX_RETRY_AFTER_SECONDS) * 1000))
            await self._redis.set(PLURALKIT_PAUSE.key(scope=scope), "1", px=pause_ms)
            log.info("PluralKit asked us to slow down", retry_after_s=pause_ms / 1000)

    async def _slot(self, scope: str, deadline: float) -> None:
        """Wait for a request slot of `scope` (shared by every process) until `deadline`."""
        while True:
            wait_ms = int(
                await self._acquire(
                    keys=[PLURALKIT_PAUSE.key(scope=scope), PLURALKIT_RATE.key(scope=scope)],
                    args=[self._per_second, 1000],
                )
            )
            if wait_ms <= 0:
                return
            if time.monotonic() + wait_ms / 1000 > deadline:
                raise PluralKitUnavailable("rate limited")
            await asyncio.sleep(wait_ms / 1000)

    async def _request(self, path: str) -> tuple[int, Any, float]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT}, raise_for_status=False
            )
        async with self._session.get(self._base + path, allow_redirects=False) as response:
            status = response.status
            body: Any = None
            if status in (200, 429):
                text = await response.text()
                body = json.loads(text) if text else None
            retry_after = _retry_after(response.headers, body) if status == 429 else 0.0
            return status, body, retry_after


def _retry_after(headers: Any, body: Any) -> float:
    """Seconds to wait after a 429: the Retry-After header, else the body's `retry_after`
    (PluralKit gives it in milliseconds), else a second."""
    header = headers.get("Retry-After")
    with contextlib.suppress(TypeError, ValueError):
        if header is not None:
            return max(0.0, float(header))
    if isinstance(body, dict):
        with contextlib.suppress(TypeError, ValueError):
            return max(0.0, float(body.get("retry_after", 1000)) / 1000)
    return 1.0


@dataclass
class _Hold:
    """An original message waiting to see whether PluralKit reposts it."""

    channel_id: str
    reply_to_id: str | None
    reply_to_webhook: bool
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    deleted: bool = False
    superseded: bool = False  # its repost went ahead


class PluralKitSpeakers:
    """Where the message path asks about PluralKit (none of it when `api` is None)."""

    def __init__(
        self,
        api: PluralKitApi | None,
        redis: Redis,
        *,
        grace: float,
        could_trigger: Callable[[IncomingMessage], Awaitable[bool]],
        patience: float = PATIENCE_SECONDS,
    ) -> None:
        self._api = api
        self._redis = redis
        self._grace = grace
        self._could_trigger = could_trigger
        self._patience = patience
        self._holds: dict[str, _Hold] = {}
        self._deleted: OrderedDict[str, float] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._api is not None

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()

    def deleted(self, message_id: str) -> None:
        """MESSAGE_DELETE: PluralKit deletes the originals it reposts."""
        now = time.monotonic()
        self._deleted[message_id] = now
        while self._deleted and (
            len(self._deleted) > _RECENT_DELETES
            or next(iter(self._deleted.values())) < now - _DELETE_MEMORY_SECONDS
        ):
            self._deleted.popitem(last=False)
        hold = self._holds.get(message_id)
        if hold is not None:
            hold.deleted = True
            hold.wake.set()

    async def as_member(self, message: IncomingMessage, *, ours: bool) -> IncomingMessage:
        """A webhook message PluralKit names, as its member speaking for its sender; any other
        message unchanged (a webhook message then stays ignored)."""
        api = self._api
        if api is None or not message.from_webhook or ours or message.is_dm:
            return message
        try:
            held_here = any(h.channel_id == message.channel_id for h in self._holds.values())
            if not held_here and not await self._could_trigger(message):
                return message
            proxied = await api.message(message.id, patience=self._patience)
        except PluralKitUnavailable as error:
            log.info("PluralKit could not say who wrote a webhook message", reason=str(error))
            return message
        except Exception:
            log.warning("could not ask PluralKit about a webhook message", exc_info=True)
            return message
        if proxied is None or proxied.message_id != message.id:
            return message
        reply_to_id, reply_to_webhook = message.reply_to_id, message.reply_to_webhook
        hold = self._holds.get(proxied.original_id)
        if hold is not None and hold.reply_to_id is not None:
            reply_to_id, reply_to_webhook = hold.reply_to_id, hold.reply_to_webhook
        return dataclasses.replace(
            message,
            author_id=proxied.sender_id,
            author_name=proxied.member_name,
            from_bot=False,
            from_webhook=False,
            proxy_of=proxied.original_id,
            reply_to_id=reply_to_id,
            reply_to_webhook=reply_to_webhook,
        )

    async def goes_ahead(self, message: IncomingMessage) -> bool:
        """Before a triggering message is admitted: False when PluralKit reposted it (its
        member's message is answered instead). A user with a system waits the grace period."""
        if self._api is None or message.is_dm or message.proxy_of is not None:
            return True
        try:
            if await self._has_system(message.author_id) and not await self._hold(message):
                log.info("PluralKit reposted this message; its member's message is answered")
                return False
        except Exception:
            log.warning("PluralKit bookkeeping failed; answering as usual", exc_info=True)
        return True

    async def claim(self, message: IncomingMessage) -> bool:
        """Once admitted, just before it is answered: the original is claimed for this copy
        (itself, or PluralKit's repost of it); False when the other copy has it."""
        if self._api is None or message.is_dm:
            return True
        original = message.proxy_of or message.id
        try:
            won = await self._claim(original, message.id)
        except Exception:
            log.warning("PluralKit bookkeeping failed; answering as usual", exc_info=True)
            return True
        hold = self._holds.get(original) if message.proxy_of is not None else None
        if hold is not None:  # the original waiting in this process need not wait any more
            hold.superseded = won
            hold.wake.set()
        if not won:
            log.info("the other copy of this message (PluralKit's repost) was answered")
        return won

    async def _has_system(self, user_id: str) -> bool:
        assert self._api is not None
        try:
            return await self._api.has_system(user_id)
        except PluralKitUnavailable as error:
            log.debug("PluralKit could not say whether a user has a system", reason=str(error))
            return False

    async def _hold(self, message: IncomingMessage) -> bool:
        """Wait up to the grace period for PluralKit to repost `message`: True if it did not
        (the message is answered), False if it did."""
        assert self._api is not None
        hold = _Hold(message.channel_id, message.reply_to_id, message.reply_to_webhook)
        self._holds[message.id] = hold
        try:
            if message.id in self._deleted:
                hold.deleted = True
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._grace):
                        await hold.wake.wait()
            if hold.superseded:
                return False
            try:
                # Deleted: most likely by PluralKit, which may not have recorded it yet.
                patience = self._patience if hold.deleted else 0.0
                proxied = await self._api.message(message.id, patience=patience)
            except PluralKitUnavailable:
                return True  # as if PluralKit did not exist; the claim still keeps it once
            return proxied is None
        finally:
            self._holds.pop(message.id, None)

    async def _claim(self, original_id: str, by: str) -> bool:
        """The original is answered through message `by` (itself or its repost): True for the
        first to claim it, and for that message again (a replayed MESSAGE_CREATE)."""
        key = PLURALKIT_CLAIM.key(message_id=original_id)
        if await self._redis.set(key, by, nx=True, ex=PLURALKIT_CLAIM.ttl_seconds):
            return True
        holder = await self._redis.get(key)
        return (
            holder is not None and (holder.decode() if isinstance(holder, bytes) else holder) == by
        )


__all__ = [
    "PluralKitApi",
    "PluralKitSpeakers",
    "PluralKitUnavailable",
    "ProxiedMessage",
    "parse_message",
    "reply_in_embeds",
]
