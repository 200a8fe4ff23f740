"""State shared by the REST handlers, the gateway and the test-facing API."""

from __future__ import annotations

import logging
import secrets
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.emulator import components, ids, payloads
from tests.emulator.gateway import Gateway, Session, shard_for
from tests.emulator.models import (
    JSON,
    Attachment,
    Channel,
    Message,
    Revision,
    UploadedFile,
    User,
)
from tests.emulator.state import World

LOGGER = logging.getLogger("tests.emulator")

MAX_CONTENT = 2000
MAX_EMBEDS = 10


@dataclass
class Settings:
    """Knobs a test may turn. Times in seconds."""

    interaction_deadline: float = 3.0
    interaction_token_ttl: float = 15 * 60
    # Discord sends MESSAGE_CREATE/UPDATE/DELETE for the bot's own and its webhooks' messages.
    echo_bot_messages: bool = True
    # GET /gateway/bot: the recommended shard count and session_start_limit.max_concurrency
    # (hikari waits 5 s between startup windows of max_concurrency shards: raise it to start
    # several shards of one GatewayBot at once).
    shards: int = 1
    max_concurrency: int = 1
    # Which privileged intents the "developer portal" enabled (IDENTIFY asking for others: 4014).
    application_flags: int = field(
        default=ids.APP_FLAG_GUILD_MEMBERS | ids.APP_FLAG_MESSAGE_CONTENT | ids.APP_FLAG_PRESENCES
    )

    @property
    def allowed_privileged_intents(self) -> int:
        allowed = 0
        if self.application_flags & ids.APP_FLAG_GUILD_MEMBERS:
            allowed |= ids.INTENT_GUILD_MEMBERS
        if self.application_flags & ids.APP_FLAG_MESSAGE_CONTENT:
            allowed |= ids.INTENT_MESSAGE_CONTENT
        if self.application_flags & ids.APP_FLAG_PRESENCES:
            allowed |= int(
                ids.PRIVILEGED_INTENTS & ~(ids.INTENT_GUILD_MEMBERS | ids.INTENT_MESSAGE_CONTENT)
            )
        return allowed


class DiscordError(Exception):
    """Raised by handlers; the middleware turns it into Discord's JSON error response."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.payload = payloads.error(code, message, errors)
        self.headers = headers or {}


def unknown(what: str, code: int) -> DiscordError:
    return DiscordError(404, code, f"Unknown {what}")


UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_USER = 10013
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
UNKNOWN_COMMAND = 10063
MISSING_ACCESS = 50001
CANNOT_MESSAGE_USER = 50007
MISSING_PERMISSIONS = 50013
INVALID_FORM_BODY = 50035


def invalid_form(field_name: str, code: str, message: str) -> DiscordError:
    return DiscordError(
        400, INVALID_FORM_BODY, "Invalid Form Body", payloads.field_error(field_name, code, message)
    )


def invalid_form_at(path: Sequence[str | int], code: str, message: str) -> DiscordError:
    """A 50035 whose error tree nests ``path``, e.g. ``data.components.0.components.0.label``."""
    tree: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path):
        tree = {str(part): tree}
    return DiscordError(400, INVALID_FORM_BODY, "Invalid Form Body", tree)


def form_error(error: components.FormError, prefix: Sequence[str | int] = ()) -> DiscordError:
    return invalid_form_at([*prefix, *error.path], error.code, error.message)


def cdn_filename(filename: str) -> str:
    """The filename part of a CDN URL (Discord replaces what a path cannot hold)."""
    cleaned = "".join("_" if ch in "/\\?#%" or ord(ch) < 32 else ch for ch in filename)
    return urllib.parse.quote(cleaned or "file", safe="")


def cdn_query() -> str:
    """Discord's signed-URL parameters: expiry and issue time (hex seconds) and a signature."""
    issued = int(time.time())
    return f"ex={issued + 86400:x}&is={issued:x}&hm={secrets.token_hex(32)}"


class Core:
    """The world, the gateway and the settings, plus the message operations all routes share."""

    def __init__(self, world: World, gateway: Gateway, settings: Settings) -> None:
        self.world = world
        self.gateway = gateway
        self.settings = settings
        self.resume_gateway_url = ""  # set by the server once it knows its port
        self.cdn_base = ""  # "http://127.0.0.1:PORT", set by the server once it knows its port

    # -- validation --------------------------------------------------------------------------

    @staticmethod
    def validate_message_body(
        body: JSON,
        files: list[UploadedFile],
        *,
        editing: bool = False,
        where: Sequence[str | int] = (),
        flags: int | None = None,
    ) -> None:
        """Discord's checks on a message body; component errors nest under ``where`` (e.g.
        ``("data",)`` for an interaction callback). ``flags``: the message's flags when an
        edit does not send them (components V2)."""
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            raise invalid_form(
                "content", "STRING_TYPE_CONVERT", "Could not interpret value as string."
            )
        if content and len(content) > MAX_CONTENT:
            raise invalid_form(
                "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
            )
        embeds = body.get("embeds") or []
        if len(embeds) > MAX_EMBEDS:
            raise invalid_form(
                "embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length."
            )
        if body.get("components") is not None:
            message_flags = int(body.get("flags") or flags or 0)
            try:
                components.validate_message_components(body["components"], message_flags)
            except components.FormError as error:
                raise form_error(error, where) from None
        has_something = (
            content or embeds or files or body.get("components") or body.get("sticker_ids")
        )
        if not editing and not has_something and not body.get("poll"):
            raise DiscordError(400, 50006, "Cannot send an empty message")

    def require_bot_permission(self, channel: Channel, permission: int) -> None:
        """Discord answers 403/50001 when the bot cannot even see the channel, 403/50013 when
        it sees it but lacks ``permission``."""
        granted = self.world.channel_permissions(channel, self.world.bot.id)
        if not granted & ids.VIEW_CHANNEL:
            raise DiscordError(403, MISSING_ACCESS, "Missing Access")
        if not granted & permission:
            raise DiscordError(403, MISSING_PERMISSIONS, "Missing Permissions")

    def require_dm_open(self, channel: Channel) -> None:
        """Sending to a DM: 403/50007 when the user blocked the bot, closed their DMs, or
        shares no guild with it."""
        if not channel.is_dm or channel.recipient_id is None:
            return
        world = self.world
        recipient = world.users.get(channel.recipient_id)
        shares_a_guild = any(
            channel.recipient_id in g.members and world.bot.id in g.members
            for g in world.guilds.values()
        )
        if recipient is None or recipient.dms_closed or not shares_a_guild:
            raise DiscordError(403, CANNOT_MESSAGE_USER, "Cannot send messages to this user")

    # -- lookups -----------------------------------------------------------------------------

    def channel(self, raw_id: str) -> Channel:
        """The channel in the URL; deleted (or never existing) ones are 404/10003."""
        try:
            found = self.world.channels[int(raw_id)]
        except (KeyError, ValueError):
            raise unknown("Channel", UNKNOWN_CHANNEL) from None
        if found.deleted:
            raise unknown("Channel", UNKNOWN_CHANNEL)
        return found

    def message_in(self, channel: Channel, raw_id: str) -> Message:
        try:
            message = self.world.messages[int(raw_id)]
        except (KeyError, ValueError):
            raise unknown("Message", UNKNOWN_MESSAGE) from None
        if message.channel_id != channel.id or message.deleted:
            raise unknown("Message", UNKNOWN_MESSAGE)
        return message

    # -- messages ------------------------------------------------------------------------------

    def attachments_for(
        self,
        body: JSON,
        files: list[UploadedFile],
        channel_id: int,
        existing: Sequence[JSON] = (),
    ) -> list[JSON]:
        """The message's attachments: for each ``attachments`` entry, an uploaded file
        (``files[n]``) stored on the emulator's CDN, or (when editing) an attachment the
        message already has, kept by its id."""
        by_index = {str(i): f for i, f in enumerate(files)}
        by_field = {f.field: f for f in files}
        kept = {str(a.get("id")): a for a in existing}
        out: list[JSON] = []
        for entry in body.get("attachments") or []:
            upload = by_field.get(f"files[{entry.get('id')}]") or by_index.get(str(entry.get("id")))
            if upload is None:
                if str(entry.get("id")) in kept:
                    out.append(kept[str(entry.get("id"))])
                continue
            filename = str(entry.get("filename") or upload.filename or "file")
            stored = self.store_file(
                filename,
                upload.data,
                upload.content_type,
                f"attachments/{channel_id}",
                description=entry.get("description"),
            )
            out.append(stored.payload())
        return out

    def store_file(
        self,
        filename: str,
        data: bytes,
        content_type: str | None,
        folder: str,
        *,
        size: int | None = None,
        redirect_to: str | None = None,
        description: str | None = None,
        duration_secs: float | None = None,
        waveform: str | None = None,
    ) -> Attachment:
        """Put a file on the emulator's CDN: ``{cdn_base}/{folder}/{id}/{filename}?ex=...``."""
        if not self.cdn_base:
            raise RuntimeError("start the emulator first: attachment URLs need its port")
        attachment_id = self.world.snowflakes.next()
        path = f"{folder}/{attachment_id}/{cdn_filename(filename)}?{cdn_query()}"
        attachment = Attachment(
            id=attachment_id,
            filename=filename,
            data=data,
            content_type=content_type,
            url=f"{self.cdn_base}/{path}",
            proxy_url=f"{self.cdn_base}/media/{path}",
            size=len(data) if size is None else size,
            redirect_to=redirect_to,
            description=description,
            duration_secs=duration_secs,
            waveform=waveform,
        )
        self.world.cdn[attachment_id] = attachment
        return attachment

    def reference_for(self, channel: Channel, body: JSON) -> JSON | None:
        reference = body.get("message_reference")
        if not reference:
            return None
        target = self.world.messages.get(int(reference.get("message_id") or 0))
        if target is None or target.deleted:
            if reference.get("fail_if_not_exists", True):
                raise invalid_form(
                    "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
            return None
        return {
            "type": 0,
            "message_id": str(target.id),
            "channel_id": str(target.channel_id),
            **({"guild_id": str(target.guild_id)} if target.guild_id else {}),
        }

    def new_message(
        self,
        channel: Channel,
        author: User,
        body: JSON,
        files: list[UploadedFile],
        *,
        source: str,
        **fields: Any,
    ) -> Message:
        content = str(body.get("content") or "")
        reference = self.reference_for(channel, body)
        message = Message(
            id=self.world.snowflakes.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            content=content,
            source=source,
            posted_at=self.world.now(),
            allowed_mentions=body.get("allowed_mentions"),
            message_reference=reference,
            embeds=list(body.get("embeds") or []),
            attachments=self.attachments_for(body, files, channel.id),
            components=components.number(body.get("components") or []),
            mention_ids=self.world.mentioned_ids(content),
            flags=int(body.get("flags") or 0),
            tts=bool(body.get("tts", False)),
            type=19 if reference else 0,
            nonce=body.get("nonce"),
            **fields,
        )
        return self.world.add_message(message)

    def apply_edit(
        self,
        message: Message,
        body: JSON,
        files: list[UploadedFile],
        *,
        where: Sequence[str | int] = (),
    ) -> None:
        self.validate_message_body(body, files, editing=True, where=where, flags=message.flags)
        if "content" in body:
            message.content = str(body.get("content") or "")
            message.mention_ids = self.world.mentioned_ids(message.content)
        if "embeds" in body:
            message.embeds = list(body.get("embeds") or [])
        if "components" in body:
            message.components = components.number(body.get("components") or [])
        if "allowed_mentions" in body:
            message.allowed_mentions = body.get("allowed_mentions")
        if "attachments" in body:
            message.attachments = self.attachments_for(
                body, files, message.channel_id, message.attachments
            )
        if "flags" in body and body["flags"] is not None:
            # Only SUPPRESS_EMBEDS (4) and IS_COMPONENTS_V2 may change on an edit.
            mutable = 4 | components.FLAG_IS_COMPONENTS_V2
            message.flags = (message.flags & ~mutable) | (int(body["flags"]) & mutable)
        message.flags &= ~ids.FLAG_LOADING
        message.edits.append(body)
        message.revisions.append(Revision(self.world.now(), message.content))
        message.edited_at = ids.utcnow()
        self.world.changed()

    # -- gateway echoes ------------------------------------------------------------------------

    def message_event(self, message: Message) -> JSON:
        """MESSAGE_CREATE/UPDATE data with content; ``tailor`` withholds it per session."""
        return payloads.message(self.world, message)

    def tailor(self, session: Session, event: str, data: JSON) -> JSON | None:
        """A dispatch as this session receives it: guild MESSAGE_* events are withheld when
        the bot cannot view the channel; without the MESSAGE_CONTENT intent content, embeds,
        attachments and components are blank, except in DMs, when the bot is mentioned or
        wrote the message."""
        if not event.startswith("MESSAGE_") or "guild_id" not in data:
            return data
        world = self.world
        channel = world.channels.get(int(data.get("channel_id") or 0))
        if channel is not None and not (
            world.channel_permissions(channel, world.bot.id) & ids.VIEW_CHANNEL
        ):
            return None
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            return data
        if session.intents & ids.INTENT_MESSAGE_CONTENT:
            return data
        bot_id = str(world.bot.id)
        mentioned = any(m.get("id") == bot_id for m in data.get("mentions") or [])
        if mentioned or (data.get("author") or {}).get("id") == bot_id:
            return data
        return payloads.without_content(data)

    def echo_create(self, message: Message) -> None:
        if self.settings.echo_bot_messages and not message.is_ephemeral:
            self.gateway.queue("MESSAGE_CREATE", self.message_event(message))

    def echo_update(self, message: Message) -> None:
        if self.settings.echo_bot_messages and not message.is_ephemeral:
            self.gateway.queue("MESSAGE_UPDATE", self.message_event(message))

    def echo_delete(self, message: Message) -> None:
        if self.settings.echo_bot_messages and not message.is_ephemeral:
            data: JSON = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id is not None:
                data["guild_id"] = str(message.guild_id)
            self.gateway.queue("MESSAGE_DELETE", data)

    def ready_payloads(self, session: Session) -> list[tuple[str, JSON]]:
        world = self.world
        guilds = [
            g
            for g in world.guilds.values()
            if shard_for(g.id, session.shard_count) == session.shard_id
        ]
        ready: JSON = {
            "v": 10,
            "user": payloads.own_user(world.bot),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "resume_gateway_url": self.resume_gateway_url,
            "shard": [session.shard_id, session.shard_count],
            "application": {
                "id": str(world.application_id),
                "flags": self.settings.application_flags,
            },
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
        }
        guild_creates = [
            ("GUILD_CREATE", payloads.gateway_guild(world, g, initially_unavailable=True))
            for g in guilds
        ]
        return [("READY", ready), *guild_creates]

    def member_chunk(self, request: JSON) -> JSON | None:
        guild = self.world.guilds.get(int(request.get("guild_id") or 0))
        if guild is None:
            return None
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": [payloads.member(self.world, m) for m in guild.members.values()],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if request.get("nonce"):
            chunk["nonce"] = request["nonce"]
        return chunk
