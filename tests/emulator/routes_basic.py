"""Read-mostly routes: gateway info, users, the application, guilds, channels, DMs."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from tests.emulator import ids, payloads
from tests.emulator.core import (
    UNKNOWN_GUILD,
    UNKNOWN_MEMBER,
    UNKNOWN_USER,
    Core,
    unknown,
)
from tests.emulator.models import Guild
from tests.emulator.rest import RECORD, Route, json_response, no_content


class BasicRoutes:
    def __init__(self, core: Core, gateway_url: Callable[[], str]) -> None:
        self.core = core
        self._gateway_url = gateway_url

    def routes(self) -> list[Route]:
        return [
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway_bot),
            ("GET", "/users/@me", self.get_me),
            ("POST", "/users/@me/channels", self.create_dm),
            ("GET", "/users/{user_id}", self.get_user),
            ("GET", "/applications/@me", self.get_application),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/roles", self.get_roles),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild_id}/threads/active", self.get_active_threads),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("POST", "/channels/{channel_id}/typing", self.trigger_typing),
        ]

    def _guild(self, request: web.Request) -> Guild:
        try:
            return self.core.world.guilds[int(request.match_info["guild_id"])]
        except (KeyError, ValueError):
            raise unknown("Guild", UNKNOWN_GUILD) from None

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self._gateway_url()})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "url": self._gateway_url(),
                "shards": self.core.settings.shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": self.core.settings.max_concurrency,
                },
            }
        )

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response(payloads.own_user(self.core.world.bot))

    async def get_user(self, request: web.Request) -> web.Response:
        try:
            found = self.core.world.users[int(request.match_info["user_id"])]
        except (KeyError, ValueError):
            raise unknown("User", UNKNOWN_USER) from None
        return json_response(payloads.user(found))

    async def create_dm(self, request: web.Request) -> web.Response:
        body = request[RECORD].json or {}
        try:
            recipient = self.core.world.users[int(body.get("recipient_id") or 0)]
        except (KeyError, ValueError):
            raise unknown("User", UNKNOWN_USER) from None
        channel = self.core.world.dm_channel(recipient)
        return json_response(payloads.channel(self.core.world, channel))

    async def get_application(self, request: web.Request) -> web.Response:
        return json_response(
            payloads.application(self.core.world, self.core.settings.application_flags)
        )

    async def get_guild(self, request: web.Request) -> web.Response:
        return json_response(payloads.rest_guild(self._guild(request)))

    async def get_roles(self, request: web.Request) -> web.Response:
        return json_response([payloads.role(r) for r in self._guild(request).roles.values()])

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        world = self.core.world
        guild = self._guild(request)
        channels = [world.channels[c] for c in guild.channel_ids]
        return json_response(
            [payloads.channel(world, c) for c in channels if not c.is_thread and not c.deleted]
        )

    async def get_active_threads(self, request: web.Request) -> web.Response:
        world = self.core.world
        guild = self._guild(request)
        threads = [
            world.channels[c]
            for c in guild.channel_ids
            if world.channels[c].is_thread and not world.channels[c].deleted
        ]
        return json_response(
            {"threads": [payloads.channel(world, t) for t in threads], "members": []}
        )

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        try:
            found = guild.members[int(request.match_info["user_id"])]
        except (KeyError, ValueError):
            raise unknown("Member", UNKNOWN_MEMBER) from None
        return json_response(payloads.member(self.core.world, found))

    async def get_channel(self, request: web.Request) -> web.Response:
        channel = self.core.channel(request.match_info["channel_id"])
        self.core.require_bot_permission(channel, ids.VIEW_CHANNEL)
        return json_response(payloads.channel(self.core.world, channel))

    async def trigger_typing(self, request: web.Request) -> web.Response:
        channel = self.core.channel(request.match_info["channel_id"])
        self.core.require_bot_permission(channel, ids.VIEW_CHANNEL)
        self.core.world.typing.append((channel.id, self.core.world.now()))
        return no_content()
