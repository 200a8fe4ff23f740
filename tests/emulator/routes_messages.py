"""Channel messages and webhooks (create, execute, edit, delete)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from tests.emulator import ids, payloads
from tests.emulator.core import (
    UNKNOWN_CHANNEL,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    Core,
    DiscordError,
    invalid_form,
    unknown,
)
from tests.emulator.models import Channel, Message, RecordedRequest, User, Webhook
from tests.emulator.rest import RECORD, Route, json_response, no_content

MAX_WEBHOOKS_PER_CHANNEL = 15
_FORBIDDEN_NAME_PARTS = ("clyde", "discord")
_FORBIDDEN_NAMES = ("everyone", "here")


class InteractionWebhooks(Protocol):
    """The interaction routes own ``/webhooks/{application_id}/{interaction_token}/...``."""

    async def followup(self, request: web.Request) -> web.StreamResponse: ...
    async def followup_message(self, request: web.Request) -> web.StreamResponse: ...


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _int_param(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise invalid_form(name, "NUMBER_TYPE_COERCE", f'Value "{raw}" is not int.') from None


def _snowflake_param(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise invalid_form(name, "SNOWFLAKE_TYPE_INVALID", f'Value "{raw}" is not snowflake.')
    return value


def validate_webhook_name(field: str, name: object) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= 80:
        raise invalid_form(field, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 80 in length.")
    lowered = name.lower()
    for part in _FORBIDDEN_NAME_PARTS:
        if part in lowered:
            raise invalid_form(
                field, "USERNAME_INVALID_CONTAINS", f'Username cannot contain "{part}"'
            )
    if lowered in _FORBIDDEN_NAMES:
        raise invalid_form(field, "USERNAME_INVALID", "Username is invalid")


class MessageRoutes:
    def __init__(self, core: Core, interactions: InteractionWebhooks) -> None:
        self.core = core
        self.interactions = interactions

    def routes(self) -> list[Route]:
        c = "/channels/{channel_id}"
        w = "/webhooks/{webhook_id}/{token}"
        return [
            ("GET", c + "/messages", self.list_messages),
            ("POST", c + "/messages", self.create_message),
            ("GET", c + "/messages/{message_id}", self.get_message),
            ("PATCH", c + "/messages/{message_id}", self.edit_message),
            ("DELETE", c + "/messages/{message_id}", self.delete_message),
            ("PUT", c + "/messages/{message_id}/reactions/{emoji}/@me", self.add_reaction),
            ("GET", c + "/webhooks", self.channel_webhooks),
            ("POST", c + "/webhooks", self.create_webhook),
            ("GET", "/guilds/{guild_id}/webhooks", self.guild_webhooks),
            ("GET", "/webhooks/{webhook_id}", self.get_webhook),
            ("DELETE", "/webhooks/{webhook_id}", self.delete_webhook),
            ("GET", w, self.get_webhook),
            ("DELETE", w, self.delete_webhook),
            ("POST", w, self.execute_webhook),
            ("GET", w + "/messages/{message_id}", self.webhook_message),
            ("PATCH", w + "/messages/{message_id}", self.webhook_message),
            ("DELETE", w + "/messages/{message_id}", self.webhook_message),
        ]

    # -- channel messages ---------------------------------------------------------------

    def _send_permission(self, channel: Channel) -> int:
        return ids.SEND_MESSAGES_IN_THREADS if channel.is_thread else ids.SEND_MESSAGES

    async def list_messages(self, request: web.Request) -> web.Response:
        """Newest first, at most ``limit`` (1-100, default 50) messages; ``before``, ``after``
        and ``around`` (mutually exclusive) page by id. ``around`` gives up to ``limit // 2``
        older messages plus the anchor (if it exists) and newer ones up to ``limit``. Deleted
        and ephemeral messages are not history; without Read Message History the list is
        empty, without View Channel it is 403/50001."""
        channel = self.core.channel(request.match_info["channel_id"])
        self.core.require_bot_permission(channel, ids.VIEW_CHANNEL)
        query = request.query
        limit = _int_param("limit", query.get("limit", "50"))
        if limit < 1:
            raise invalid_form(
                "limit", "NUMBER_TYPE_MIN", "int value should be greater than or equal to 1."
            )
        if limit > 100:
            raise invalid_form(
                "limit", "NUMBER_TYPE_MAX", "int value should be less than or equal to 100."
            )
        anchors = {
            k: _snowflake_param(k, query[k]) for k in ("before", "after", "around") if k in query
        }
        if len(anchors) > 1:
            raise invalid_form(
                "around" if "around" in anchors else "after",
                "INVALID_QUERY_COMBINATION",
                "before, after and around are mutually exclusive.",
            )
        world = self.core.world
        if not world.channel_permissions(channel, world.bot.id) & ids.READ_MESSAGE_HISTORY:
            return json_response([])
        found = sorted(
            (m for m in world.channel_messages(channel.id) if not m.deleted and not m.is_ephemeral),
            key=lambda m: m.id,
        )
        if "before" in anchors:
            chosen = [m for m in found if m.id < anchors["before"]][-limit:]
        elif "after" in anchors:
            chosen = [m for m in found if m.id > anchors["after"]][:limit]
        elif "around" in anchors:
            older = [m for m in found if m.id < anchors["around"]]
            older = older[len(older) - limit // 2 :] if limit // 2 else []
            newer = [m for m in found if m.id >= anchors["around"]][: limit - len(older)]
            chosen = older + newer
        else:
            chosen = found[-limit:]
        newest_first = sorted(chosen, key=lambda m: m.id, reverse=True)
        return json_response([payloads.message(world, m) for m in newest_first])

    async def create_message(self, request: web.Request) -> web.Response:
        record: RecordedRequest = request[RECORD]
        channel = self.core.channel(request.match_info["channel_id"])
        self.core.require_dm_open(channel)
        self.core.require_bot_permission(channel, self._send_permission(channel))
        body = record.json or {}
        self.core.validate_message_body(body, record.files)
        message = self.core.new_message(
            channel, self.core.world.bot, body, record.files, source="bot"
        )
        self.core.echo_create(message)
        return json_response(payloads.message(self.core.world, message))

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self.core.channel(request.match_info["channel_id"])
        self.core.require_bot_permission(channel, ids.READ_MESSAGE_HISTORY)
        message = self.core.message_in(channel, request.match_info["message_id"])
        return json_response(payloads.message(self.core.world, message))

    async def edit_message(self, request: web.Request) -> web.Response:
        record: RecordedRequest = request[RECORD]
        channel = self.core.channel(request.match_info["channel_id"])
        self.core.require_bot_permission(channel, ids.VIEW_CHANNEL)
        message = self.core.message_in(channel, request.match_info["message_id"])
        if message.author.id != self.core.world.bot.id or message.webhook_id is not None:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self.core.apply_edit(message, record.json or {}, record.files)
        self.core.echo_update(message)
        return json_response(payloads.message(self.core.world, message))

    async def delete_message(self, request: web.Request) -> web.Response:
        channel = self.core.channel(request.match_info["channel_id"])
        self.core.require_bot_permission(channel, ids.VIEW_CHANNEL)
        message = self.core.message_in(channel, request.match_info["message_id"])
        if message.author.id != self.core.world.bot.id:
            self.core.require_bot_permission(channel, ids.MANAGE_MESSAGES)
        self._delete(message)
        return no_content()

    async def add_reaction(self, request: web.Request) -> web.Response:
        channel = self.core.channel(request.match_info["channel_id"])
        self.core.require_bot_permission(channel, ids.VIEW_CHANNEL)
        self.core.message_in(channel, request.match_info["message_id"])
        return no_content()

    def _delete(self, message: Message) -> None:
        message.deleted = True
        self.core.world.changed()
        self.core.echo_delete(message)

    # -- webhook management ----------------------------------------------------------------

    async def channel_webhooks(self, request: web.Request) -> web.Response:
        """The channel's webhooks, each with ``token`` (Discord includes it for incoming
        webhooks), ``user`` and ``application_id`` (set when an application created it)."""
        channel = self.core.channel(request.match_info["channel_id"])
        self.core.require_bot_permission(channel, ids.MANAGE_WEBHOOKS)
        world = self.core.world
        found = [w for w in world.webhooks.values() if w.channel_id == channel.id and not w.deleted]
        return json_response([payloads.webhook(world, w) for w in found])

    async def guild_webhooks(self, request: web.Request) -> web.Response:
        world = self.core.world
        guild = world.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise unknown("Guild", 10004)
        if not world.base_permissions(guild, world.bot.id) & ids.MANAGE_WEBHOOKS:
            raise DiscordError(403, 50013, "Missing Permissions")
        found = [w for w in world.webhooks.values() if w.guild_id == guild.id and not w.deleted]
        return json_response([payloads.webhook(world, w) for w in found])

    async def create_webhook(self, request: web.Request) -> web.Response:
        record: RecordedRequest = request[RECORD]
        world = self.core.world
        channel = self.core.channel(request.match_info["channel_id"])
        if channel.guild_id is None or channel.is_thread:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        self.core.require_bot_permission(channel, ids.MANAGE_WEBHOOKS)
        body = record.json or {}
        validate_webhook_name("name", body.get("name"))
        live = [w for w in world.webhooks.values() if w.channel_id == channel.id and not w.deleted]
        if len(live) >= MAX_WEBHOOKS_PER_CHANNEL:
            raise DiscordError(400, 30007, "Maximum number of webhooks reached (15)")
        webhook = Webhook(
            id=world.snowflakes.next(),
            token=ids.new_token(),
            guild_id=channel.guild_id,
            channel_id=channel.id,
            name=str(body["name"]),
            application_id=world.application_id,
            creator_id=world.bot.id,
            avatar="emulated-avatar-hash" if body.get("avatar") else None,
        )
        world.webhooks[webhook.id] = webhook
        world.changed()
        self.core.gateway.queue(
            "WEBHOOKS_UPDATE", {"guild_id": str(webhook.guild_id), "channel_id": str(channel.id)}
        )
        return json_response(payloads.webhook(world, webhook))

    def _webhook(self, request: web.Request, *, executing: bool = False) -> Webhook:
        """The live webhook named in the URL (and matching its token, when one is given).
        Without a token the bot needs Manage Webhooks in its channel; with one, a refusal
        scripted on the channel (``refuse_webhooks``) answers instead."""
        world = self.core.world
        try:
            webhook = world.webhooks[int(request.match_info["webhook_id"])]
        except (KeyError, ValueError):
            raise unknown("Webhook", UNKNOWN_WEBHOOK) from None
        if webhook.deleted:
            raise unknown("Webhook", UNKNOWN_WEBHOOK)
        token = request.match_info.get("token")
        channel = world.channels.get(webhook.channel_id)
        if token is None:
            if channel is not None:
                self.core.require_bot_permission(channel, ids.MANAGE_WEBHOOKS)
            return webhook
        if token != webhook.token:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        refusal = channel.webhook_refusal if channel is not None else None
        if refusal is not None and (executing or not refusal.execute_only):
            refusal.refused += 1
            request[RECORD].injected_fault = True
            raise DiscordError(refusal.status, refusal.code, refusal.message)
        return webhook

    def _is_interaction(self, request: web.Request) -> bool:
        return request.match_info.get("webhook_id") == str(self.core.world.application_id) and (
            "token" in request.match_info
        )

    async def get_webhook(self, request: web.Request) -> web.Response:
        webhook = self._webhook(request)
        by_token = "token" in request.match_info
        return json_response(payloads.webhook(self.core.world, webhook, with_user=not by_token))

    async def delete_webhook(self, request: web.Request) -> web.Response:
        webhook = self._webhook(request)
        webhook.deleted = True
        self.core.world.changed()
        self.core.gateway.queue(
            "WEBHOOKS_UPDATE",
            {"guild_id": str(webhook.guild_id), "channel_id": str(webhook.channel_id)},
        )
        return no_content()

    # -- webhook messages ---------------------------------------------------------------

    async def execute_webhook(self, request: web.Request) -> web.StreamResponse:
        if self._is_interaction(request):
            return await self.interactions.followup(request)
        record: RecordedRequest = request[RECORD]
        webhook = self._webhook(request, executing=True)
        body = record.json or {}
        self.core.validate_message_body(body, record.files)
        if body.get("username") is not None:
            validate_webhook_name("username", body["username"])
        thread = self._thread(webhook, record.query.get("thread_id"))
        target = thread or self.core.world.channels[webhook.channel_id]
        author = User(id=webhook.id, username=str(body.get("username") or webhook.name), bot=True)
        message = self.core.new_message(
            target,
            author,
            body,
            record.files,
            source="webhook",
            webhook_id=webhook.id,
            application_id=webhook.application_id,
            username=body.get("username"),
            avatar_url=body.get("avatar_url"),
            thread_id=thread.id if thread else None,
        )
        self.core.echo_create(message)
        if _truthy(record.query.get("wait")):
            return json_response(payloads.message(self.core.world, message))
        return no_content()

    def _thread(self, webhook: Webhook, raw_thread_id: str | None) -> Channel | None:
        if raw_thread_id is None:
            return None
        thread = self.core.world.channels.get(int(raw_thread_id))
        if thread is None or thread.deleted:
            raise unknown("Channel", UNKNOWN_CHANNEL)
        if not thread.is_thread or thread.parent_id != webhook.channel_id:
            raise invalid_form(
                "thread_id", "THREAD_INVALID", "Thread is not in the webhook's channel"
            )
        return thread

    async def webhook_message(self, request: web.Request) -> web.StreamResponse:
        if self._is_interaction(request):
            return await self.interactions.followup_message(request)
        record: RecordedRequest = request[RECORD]
        webhook = self._webhook(request)
        try:
            message = self.core.world.messages[int(request.match_info["message_id"])]
        except (KeyError, ValueError):
            raise unknown("Message", UNKNOWN_MESSAGE) from None
        if message.webhook_id != webhook.id or message.deleted:
            raise unknown("Message", UNKNOWN_MESSAGE)
        if message.thread_id is not None and record.query.get("thread_id") != str(
            message.thread_id
        ):
            raise unknown(
                "Message", UNKNOWN_MESSAGE
            )  # Discord needs ?thread_id= for thread messages
        if request.method == "DELETE":
            self._delete(message)
            return no_content()
        if request.method == "PATCH":
            self.core.apply_edit(message, record.json or {}, record.files)
            self.core.echo_update(message)
        return json_response(payloads.message(self.core.world, message))
