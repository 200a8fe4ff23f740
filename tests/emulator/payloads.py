"""Discord's JSON shapes (API v10), snowflakes as strings, as hikari's entity factory reads them."""

from __future__ import annotations

from typing import Any

from tests.emulator import ids
from tests.emulator.models import (
    JSON,
    ApplicationCommand,
    Channel,
    Guild,
    Member,
    Message,
    Role,
    User,
    Webhook,
)
from tests.emulator.state import World


def user(u: User) -> JSON:
    return {
        "id": str(u.id),
        "username": u.username,
        "discriminator": "0",
        "global_name": u.global_name,
        "avatar": u.avatar,
        "bot": u.bot,
        "public_flags": 0,
    }


def own_user(u: User) -> JSON:
    return {
        **user(u),
        "mfa_enabled": False,
        "flags": 0,
        "verified": True,
        "email": None,
        "locale": "en-US",
    }


def role(r: Role) -> JSON:
    payload: JSON = {
        "id": str(r.id),
        "name": r.name,
        "color": 0,
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": r.position,
        "permissions": str(r.permissions),
        "managed": r.managed,
        "mentionable": False,
        "flags": 0,
    }
    if r.bot_id is not None:
        payload["tags"] = {"bot_id": str(r.bot_id)}
    return payload


def member(world: World, m: Member, *, with_user: bool = True) -> JSON:
    payload: JSON = {
        "nick": m.nick,
        "avatar": None,
        "roles": [str(r) for r in m.role_ids],
        "joined_at": ids.iso(m.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }
    if with_user:
        payload["user"] = user(world.users[m.user_id])
    return payload


def _overwrites(c: Channel) -> list[JSON]:
    return [
        {"id": str(o.id), "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}
        for o in c.overwrites.values()
    ]


def channel(world: World, c: Channel) -> JSON:
    if c.is_dm:
        assert c.recipient_id is not None
        return {
            "id": str(c.id),
            "type": c.type,
            "last_message_id": None,
            "flags": 0,
            "recipients": [user(world.users[c.recipient_id])],
        }
    base: JSON = {
        "id": str(c.id),
        "type": c.type,
        "guild_id": str(c.guild_id),
        "name": c.name,
        "parent_id": str(c.parent_id) if c.parent_id else None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
        "nsfw": False,
    }
    if c.is_thread:
        return {
            **base,
            "owner_id": str(c.owner_id),
            "message_count": len(world.channel_messages(c.id)),
            "member_count": 1,
            "total_message_sent": len(world.channel_messages(c.id)),
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": ids.iso(c.created_at),
                "locked": False,
                "create_timestamp": ids.iso(c.created_at),
            },
        }
    return {
        **base,
        "position": c.position,
        "permission_overwrites": _overwrites(c),
        "topic": c.topic,
        "default_auto_archive_duration": 1440,
    }


def _guild_fields(g: Guild) -> JSON:
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(g.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "application_id": None,
        "widget_enabled": False,
        "widget_channel_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "max_video_channel_users": 25,
        "max_members": 500000,
        "max_presences": None,
        "vanity_url_code": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "en-US",
        "features": [],
        "roles": [role(r) for r in g.roles.values()],
        "emojis": [],
        "stickers": [],
    }


def rest_guild(g: Guild) -> JSON:
    return {**_guild_fields(g), "approximate_member_count": len(g.members)}


def gateway_guild(world: World, g: Guild, *, initially_unavailable: bool) -> JSON:
    """GUILD_CREATE data. ``unavailable: false`` marks a guild listed in READY (hikari then
    fires GuildAvailableEvent); a guild joined later has no ``unavailable`` key (GuildJoinEvent).
    """
    channels = [world.channels[cid] for cid in g.channel_ids if not world.channels[cid].deleted]
    payload: JSON = {
        **_guild_fields(g),
        "joined_at": ids.iso(g.joined_at),
        "large": False,
        "member_count": len(g.members),
        "members": [member(world, m) for m in g.members.values()],
        "channels": [channel(world, c) for c in channels if not c.is_thread],
        "threads": [channel(world, c) for c in channels if c.is_thread],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
    }
    if initially_unavailable:
        payload["unavailable"] = False
    return payload


def webhook(world: World, w: Webhook, *, with_token: bool = True, with_user: bool = True) -> JSON:
    """An incoming webhook (type 1). Discord includes ``token`` for incoming webhooks, and
    ``user`` (the creator) except when fetched by token."""
    payload: JSON = {
        "id": str(w.id),
        "type": 1,
        "guild_id": str(w.guild_id),
        "channel_id": str(w.channel_id),
        "name": w.name,
        "avatar": w.avatar,
        "application_id": str(w.application_id) if w.application_id else None,
    }
    if with_user:
        payload["user"] = user(world.users[w.creator_id])
    if with_token:
        payload["token"] = w.token
    return payload


def message(world: World, m: Message, *, include_content: bool = True, nested: bool = True) -> JSON:
    if m.webhook_id is not None:
        author: JSON = {
            "id": str(m.webhook_id),
            "username": m.username or m.author.username,
            "discriminator": "0000",
            "global_name": None,
            "avatar": None,
            "bot": True,
        }
    else:
        author = user(m.author)
    payload: JSON = {
        "id": str(m.id),
        "channel_id": str(m.channel_id),
        "author": author,
        "content": m.content if include_content else "",
        "timestamp": ids.iso(m.created_at),
        "edited_timestamp": ids.iso(m.edited_at) if m.edited_at else None,
        "tts": m.tts,
        "mention_everyone": False,
        "mentions": [user(world.users[uid]) for uid in m.mention_ids],
        "mention_roles": [],
        "attachments": m.attachments if include_content else [],
        "embeds": m.embeds if include_content else [],
        "components": m.components if include_content else [],
        "pinned": False,
        "type": m.type,
        "flags": m.flags,
    }
    if m.guild_id is not None:
        payload["guild_id"] = str(m.guild_id)
        guild = world.guilds[m.guild_id]
        author_member = guild.members.get(m.author.id)
        if m.webhook_id is None and author_member is not None:
            payload["member"] = member(world, author_member, with_user=False)
    if m.webhook_id is not None:
        payload["webhook_id"] = str(m.webhook_id)
    if m.application_id is not None:
        payload["application_id"] = str(m.application_id)
    if m.nonce is not None:
        payload["nonce"] = m.nonce
    if m.message_reference is not None:
        payload["message_reference"] = m.message_reference
        referenced = world.messages.get(m.reply_to_id or 0)
        if nested:
            payload["referenced_message"] = (
                message(world, referenced, include_content=include_content, nested=False)
                if referenced is not None and not referenced.deleted
                else None
            )
    return payload


def without_content(data: JSON) -> JSON:
    """A message payload as a bot without the MESSAGE_CONTENT intent sees it."""
    stripped: JSON = {
        **data,
        "content": "",
        "attachments": [],
        "embeds": [],
        "components": [],
    }
    referenced = data.get("referenced_message")
    if isinstance(referenced, dict):
        stripped["referenced_message"] = without_content(referenced)
    return stripped


def application(world: World, flags: int) -> JSON:
    return {
        "id": str(world.application_id),
        "name": world.bot.username,
        "icon": None,
        "description": "Discord emulator application",
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": user(world.owner),
        "verify_key": "00" * 32,
        "flags": flags,
        "tags": [],
        "approximate_guild_count": len(world.guilds),
        "approximate_user_install_count": 0,
        "integration_types_config": {
            "0": {
                "oauth2_install_params": {
                    "scopes": ["bot", "applications.commands"],
                    "permissions": "0",
                }
            },
            "1": {},
        },
        "bot": user(world.bot),
    }


def command(c: ApplicationCommand) -> JSON:
    body = c.body
    payload: JSON = {
        "id": str(c.id),
        "application_id": str(c.application_id),
        "version": str(c.version),
        "type": c.type,
        "name": c.name,
        "description": body.get("description", ""),
        "options": body.get("options") or [],
        "default_member_permissions": body.get("default_member_permissions"),
        "nsfw": bool(body.get("nsfw", False)),
        "name_localizations": body.get("name_localizations"),
        "description_localizations": body.get("description_localizations"),
    }
    if c.guild_id is not None:
        payload["guild_id"] = str(c.guild_id)
    else:
        payload["integration_types"] = body.get("integration_types") or [0]
        payload["contexts"] = body.get("contexts")
    return payload


def error(code: int, message: str, errors: dict[str, Any] | None = None) -> JSON:
    payload: JSON = {"message": message, "code": code}
    if errors:
        payload["errors"] = errors
    return payload


def field_error(field: str, code: str, message: str) -> dict[str, Any]:
    """Discord's nested 50035 error tree for one top-level field."""
    return {field: {"_errors": [{"code": code, "message": message}]}}
