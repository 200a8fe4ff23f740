"""The emulator plays PluralKit: its v2 API (systems, members, proxied messages) and proxying.

``emu.pluralkit`` serves ``GET /systems/{ref}``, ``GET /members/{ref}`` and ``GET
/messages/{id}`` at ``emu.pluralkit.url`` (``http://127.0.0.1:PORT/pluralkit/v2``), with
PluralKit's JSON models and errors (404 ``{"message": ..., "code": 20001|20006}``; 429 ``{
"message": "429: too many requests", "retry_after": <ms>, "code": 0}`` with the
``X-RateLimit-*`` headers).

Build a system: ``system = emu.pluralkit.add_system(user)``, ``emu.pluralkit.add_member(system,
"Ash", prefix="a:")``. Then ``await emu.pluralkit.proxy(channel, user, "a: @Lilith hi")`` does
what PluralKit does: the user's message is posted (MESSAGE_CREATE), then reposted through
PluralKit's webhook in that channel under the member's name and avatar, without the proxy tags
(MESSAGE_CREATE with ``webhook_id``; a reply quotes its target in an embed, as PluralKit's
webhooks cannot reply), and the original is deleted (MESSAGE_DELETE). The message lookup then
answers for both ids.

Script it: ``latency`` (seconds before every answer), ``lag`` (the API knows a proxied message
only this long after the repost), ``fail_next(status, count)`` (5xx, or 429 with
``retry_after_ms``), ``garbage_next(count)`` (200 with a body that is no message),
``limit_per_second`` (answer 429 beyond it, per scope, as PluralKit does), ``down`` (the
connection is dropped). Observe: ``requests`` ((path, status) in order), ``lookups(id)``.
"""

from __future__ import annotations

import asyncio
import datetime
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from tests.emulator import ids
from tests.emulator.models import JSON, Channel, Message, User, Webhook

if TYPE_CHECKING:
    from tests.emulator.server import DiscordEmulator

PLURALKIT_APPLICATION_ID = 466378653216014359
PREFIX = "/pluralkit/v2"


@dataclass
class PkMember:
    id: str
    uuid: str
    name: str
    display_name: str | None = None
    avatar_url: str | None = None
    prefix: str | None = None
    suffix: str | None = None

    @property
    def shown_name(self) -> str:
        return self.display_name or self.name

    def model(self, system: PkSystem | None = None) -> JSON:
        out: JSON = {
            "id": self.id,
            "uuid": self.uuid,
            "name": self.name,
            "display_name": self.display_name,
            "color": None,
            "birthday": None,
            "pronouns": None,
            "avatar_url": self.avatar_url,
            "webhook_avatar_url": None,
            "banner": None,
            "description": None,
            "created": "2024-01-01T00:00:00.000000Z",
            "proxy_tags": [{"prefix": self.prefix, "suffix": self.suffix}],
            "keep_proxy": False,
            "tts": False,
            "autoproxy_enabled": True,
            "message_count": 0,
            "last_message_timestamp": None,
            "privacy": None,
        }
        if system is not None:
            out["system"] = system.id
        return out


@dataclass
class PkSystem:
    id: str
    uuid: str
    user_id: int
    name: str | None = None
    tag: str | None = None
    members: list[PkMember] = field(default_factory=list)

    def model(self) -> JSON:
        return {
            "id": self.id,
            "uuid": self.uuid,
            "name": self.name,
            "description": None,
            "tag": self.tag,
            "pronouns": None,
            "avatar_url": None,
            "banner": None,
            "color": None,
            "created": "2024-01-01T00:00:00.000000Z",
            "privacy": None,
        }


@dataclass
class PkMessage:
    """A message PluralKit proxied: ``id`` is its webhook message, ``original`` the user's."""

    id: int
    original: int
    sender: int
    channel: int
    guild: int | None
    system: PkSystem
    member: PkMember
    timestamp: datetime.datetime
    known_from: float  # loop time from which the API answers for it

    def model(self) -> JSON:
        return {
            "timestamp": ids.iso(self.timestamp),
            "id": str(self.id),
            "original": str(self.original),
            "sender": str(self.sender),
            "channel": str(self.channel),
            "guild": str(self.guild) if self.guild is not None else None,
            "system": self.system.model(),
            "member": self.member.model(),
        }


@dataclass
class _Fault:
    status: int
    count: int
    retry_after_ms: int = 1000
    garbage: bool = False


def _short_id() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5))


class PluralKitApi:
    def __init__(self, emu: DiscordEmulator) -> None:
        self._emu = emu
        self.systems: dict[int, PkSystem] = {}  # by Discord user id
        self.messages: dict[int, PkMessage] = {}  # by both ids
        self.requests: list[tuple[str, int]] = []
        self.latency = 0.0
        self.lag = 0.0
        self.limit_per_second: int | None = None
        self.down = False
        self.rate_limited = 0  # 429s answered because of limit_per_second
        self._faults: list[_Fault] = []
        self._windows: dict[str, tuple[int, int]] = {}  # scope -> (second, count)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._emu.port}{PREFIX}"

    def install(self, app: web.Application) -> None:
        app.router.add_get(PREFIX + "/systems/{ref}", self._system)
        app.router.add_get(PREFIX + "/members/{ref}", self._member)
        app.router.add_get(PREFIX + "/messages/{id}", self._message)

    # -- the world ------------------------------------------------------------------------------

    def add_system(
        self, user: User, *, name: str | None = None, tag: str | None = None
    ) -> PkSystem:
        system = PkSystem(
            id=_short_id(), uuid=secrets.token_hex(16), user_id=user.id, name=name, tag=tag
        )
        self.systems[user.id] = system
        return system

    def add_member(
        self,
        system: PkSystem,
        name: str,
        *,
        display_name: str | None = None,
        avatar_url: str | None = None,
        prefix: str | None = None,
        suffix: str | None = None,
    ) -> PkMember:
        if prefix is None and suffix is None:
            raise ValueError("a member needs a proxy tag (prefix and/or suffix)")
        member = PkMember(
            id=_short_id(), uuid=secrets.token_hex(16), name=name, display_name=display_name,
            avatar_url=avatar_url, prefix=prefix, suffix=suffix,
        )  # fmt: skip
        system.members.append(member)
        return member

    def fail_next(self, status: int, count: int = 1, *, retry_after_ms: int = 1000) -> None:
        """The next ``count`` API requests answer ``status`` (429: with ``retry_after_ms``)."""
        self._faults.append(_Fault(status, count, retry_after_ms))

    def garbage_next(self, count: int = 1) -> None:
        """The next ``count`` API requests answer 200 with a body that is no PluralKit model."""
        self._faults.append(_Fault(200, count, garbage=True))

    def lookups(self, message_id: int | str) -> int:
        """How many times ``GET /messages/{message_id}`` was asked."""
        path = f"/messages/{message_id}"
        return sum(1 for p, _ in self.requests if p == path)

    def system_lookups(self, user: User) -> int:
        path = f"/systems/{user.id}"
        return sum(1 for p, _ in self.requests if p == path)

    # -- proxying -------------------------------------------------------------------------------

    def _match(self, user: User, content: str) -> tuple[PkMember, str]:
        system = self.systems.get(user.id)
        if system is None:
            raise AssertionError(f"{user.username} has no PluralKit system")
        for member in system.members:
            prefix, suffix = member.prefix or "", member.suffix or ""
            if content.startswith(prefix) and content.endswith(suffix):
                inner = content[len(prefix) : len(content) - len(suffix)].strip()
                if inner:
                    return member, inner
        raise AssertionError(f"no proxy tags of {user.username}'s members match {content!r}")

    def _webhook(self, channel: Channel) -> Webhook:
        world = self._emu.world
        target = world.permission_channel(channel)
        for webhook in world.webhooks.values():
            if (
                webhook.channel_id == target.id
                and webhook.application_id == PLURALKIT_APPLICATION_ID
                and not webhook.deleted
            ):
                return webhook
        assert target.guild_id is not None
        # PluralKit's bot made the webhook (Discord names it as the webhook's user).
        world.users.setdefault(
            PLURALKIT_APPLICATION_ID,
            User(id=PLURALKIT_APPLICATION_ID, username="PluralKit", bot=True),
        )
        webhook = Webhook(
            id=world.snowflakes.next(), token=ids.new_token(), guild_id=target.guild_id,
            channel_id=target.id, name="PluralKit Proxy Webhook",
            application_id=PLURALKIT_APPLICATION_ID, creator_id=PLURALKIT_APPLICATION_ID,
        )  # fmt: skip
        world.webhooks[webhook.id] = webhook
        world.changed()
        return webhook

    async def proxy(
        self,
        channel: Channel,
        user: User,
        content: str,
        *,
        reply_to: Message | None = None,
        delay: float = 0.05,
        delete_delay: float = 0.05,
    ) -> tuple[Message, Message]:
        """``user`` writes ``content`` with a member's proxy tags: (the original, deleted
        ``delete_delay`` s after the repost; the webhook repost, ``delay`` s after it)."""
        emu = self._emu
        member, inner = self._match(user, content)
        original = await emu.post_message(channel, user, content, reply_to=reply_to)
        await asyncio.sleep(delay)
        repost = await self.repost(original, member, inner, reply_to=reply_to)
        await asyncio.sleep(delete_delay)
        await self.delete(original)
        return original, repost

    async def repost(
        self, original: Message, member: PkMember, content: str, *, reply_to: Message | None = None
    ) -> Message:
        """PluralKit's webhook posts ``content`` as ``member`` (MESSAGE_CREATE) and records it."""
        emu = self._emu
        world = emu.world
        channel = world.channels[original.channel_id]
        webhook = self._webhook(channel)
        system = self.systems[original.author.id]
        name = member.shown_name + (f" {system.tag}" if system.tag else "")
        embeds: list[JSON] = []
        if reply_to is not None:
            link = f"https://discord.com/channels/{reply_to.guild_id}/{reply_to.channel_id}/{reply_to.id}"
            shown = reply_to.username or reply_to.author.username
            embeds.append(
                {
                    "type": "rich",
                    "author": {"name": f"{shown} ↩️"},
                    "description": f"**[Reply to:]({link})** {reply_to.content[:100]}",
                }
            )
        message = Message(
            id=world.snowflakes.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=User(id=webhook.id, username=name, bot=True),
            content=content,
            source="webhook",
            posted_at=world.now(),
            webhook_id=webhook.id,
            application_id=PLURALKIT_APPLICATION_ID,
            username=name,
            avatar_url=member.avatar_url,
            thread_id=channel.id if channel.is_thread else None,
            embeds=embeds,
            mention_ids=world.mentioned_ids(content),
        )
        world.add_message(message)
        record = PkMessage(
            id=message.id, original=original.id, sender=original.author.id, channel=channel.id,
            guild=channel.guild_id, system=system, member=member, timestamp=ids.utcnow(),
            known_from=time.monotonic() + self.lag,
        )  # fmt: skip
        self.messages[message.id] = record
        self.messages[original.id] = record
        await emu.gateway.dispatch("MESSAGE_CREATE", emu.core.message_event(message))
        return message

    async def delete(self, message: Message) -> None:
        """PluralKit deletes the original: MESSAGE_DELETE."""
        message.deleted = True
        self._emu.world.changed()
        data: JSON = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        await self._emu.gateway.dispatch("MESSAGE_DELETE", data)

    # -- the API --------------------------------------------------------------------------------

    async def _answer(self, request: web.Request, scope: str) -> web.Response | None:
        """A scripted answer (fault, rate limit, latency), or None to answer normally."""
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.down:
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise web.HTTPServiceUnavailable()
        if self._faults:
            fault = self._faults[0]
            fault.count -= 1
            if fault.count <= 0:
                self._faults.pop(0)
            if fault.garbage:
                return web.json_response({"id": 12, "member": "nobody", "sender": None})
            if fault.status == 429:
                return self._too_many(fault.retry_after_ms, scope)
            return web.json_response({"message": "500: internal server error", "code": 0},
                                     status=fault.status)  # fmt: skip
        if self.limit_per_second is not None:
            second = int(time.monotonic())
            at, used = self._windows.get(scope, (second, 0))
            used = used + 1 if at == second else 1
            self._windows[scope] = (second, used)
            if used > self.limit_per_second:
                self.rate_limited += 1
                left = int((second + 1 - time.monotonic()) * 1000) + 1
                return self._too_many(left, scope)
        return None

    def _too_many(self, retry_after_ms: int, scope: str) -> web.Response:
        reset = int(time.time() * 1000) + retry_after_ms
        return web.json_response(
            {"message": "429: too many requests", "retry_after": retry_after_ms, "code": 0},
            status=429,
            headers={
                "X-RateLimit-Limit": str(self.limit_per_second or 10),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
                "X-RateLimit-Scope": scope,
            },
        )

    def _record(self, request: web.Request, response: web.Response) -> web.Response:
        self.requests.append((request.path.removeprefix(PREFIX), response.status))
        return response

    async def _system(self, request: web.Request) -> web.Response:
        scripted = await self._answer(request, "generic_get")
        if scripted is not None:
            return self._record(request, scripted)
        ref = request.match_info["ref"]
        found = next(
            (s for s in self.systems.values() if ref in (str(s.user_id), s.id, s.uuid)),
            None,
        )
        if found is None:
            return self._record(request, _not_found("System", 20001))
        return self._record(request, web.json_response(found.model()))

    async def _member(self, request: web.Request) -> web.Response:
        scripted = await self._answer(request, "generic_get")
        if scripted is not None:
            return self._record(request, scripted)
        ref = request.match_info["ref"]
        for system in self.systems.values():
            for member in system.members:
                if ref in (member.id, member.uuid):
                    return self._record(request, web.json_response(member.model(system)))
        return self._record(request, _not_found("Member", 20002))

    async def _message(self, request: web.Request) -> web.Response:
        scripted = await self._answer(request, "message")
        if scripted is not None:
            return self._record(request, scripted)
        raw = request.match_info["id"]
        found = self.messages.get(int(raw)) if raw.isdigit() else None
        if found is None or time.monotonic() < found.known_from:
            return self._record(request, _not_found("Message", 20006))
        return self._record(request, web.json_response(found.model()))


def _not_found(what: str, code: int) -> web.Response:
    return web.json_response({"message": f"{what} not found.", "code": code}, status=404)
