"""Snowflakes, timestamps, tokens and the permission / intent bits the emulator needs."""

from __future__ import annotations

import base64
import datetime
import secrets
import time

import hikari

DISCORD_EPOCH_MS = 1_420_070_400_000
API_PREFIX = "/api/v10"

# Permission bits (hikari's own enum, so they cannot drift from what the client computes).
VIEW_CHANNEL = int(hikari.Permissions.VIEW_CHANNEL)
SEND_MESSAGES = int(hikari.Permissions.SEND_MESSAGES)
SEND_MESSAGES_IN_THREADS = int(hikari.Permissions.SEND_MESSAGES_IN_THREADS)
MANAGE_MESSAGES = int(hikari.Permissions.MANAGE_MESSAGES)
MANAGE_CHANNELS = int(hikari.Permissions.MANAGE_CHANNELS)
MANAGE_GUILD = int(hikari.Permissions.MANAGE_GUILD)
READ_MESSAGE_HISTORY = int(hikari.Permissions.READ_MESSAGE_HISTORY)
MANAGE_WEBHOOKS = int(hikari.Permissions.MANAGE_WEBHOOKS)
ADMINISTRATOR = int(hikari.Permissions.ADMINISTRATOR)
ALL_PERMISSIONS = int(hikari.Permissions.all_permissions())

EVERYONE_PERMISSIONS = int(
    hikari.Permissions.VIEW_CHANNEL
    | hikari.Permissions.SEND_MESSAGES
    | hikari.Permissions.SEND_MESSAGES_IN_THREADS
    | hikari.Permissions.READ_MESSAGE_HISTORY
    | hikari.Permissions.ADD_REACTIONS
    | hikari.Permissions.EMBED_LINKS
    | hikari.Permissions.ATTACH_FILES
    | hikari.Permissions.USE_APPLICATION_COMMANDS
    | hikari.Permissions.CREATE_PUBLIC_THREADS
)
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | int(
    hikari.Permissions.MANAGE_WEBHOOKS
    | hikari.Permissions.MANAGE_MESSAGES
    | hikari.Permissions.MENTION_ROLES
    | hikari.Permissions.USE_EXTERNAL_EMOJIS
)

# Intent bits.
INTENT_GUILDS = int(hikari.Intents.GUILDS)
INTENT_GUILD_MEMBERS = int(hikari.Intents.GUILD_MEMBERS)
INTENT_GUILD_WEBHOOKS = int(hikari.Intents.GUILD_WEBHOOKS)
INTENT_GUILD_MESSAGES = int(hikari.Intents.GUILD_MESSAGES)
INTENT_DM_MESSAGES = int(hikari.Intents.DM_MESSAGES)
INTENT_MESSAGE_CONTENT = int(hikari.Intents.MESSAGE_CONTENT)
PRIVILEGED_INTENTS = int(hikari.Intents.ALL_PRIVILEGED)

# Application flags saying which privileged intents the "developer portal" switched on.
APP_FLAG_GUILD_MEMBERS = int(hikari.ApplicationFlags.GUILD_MEMBERS_INTENT)
APP_FLAG_MESSAGE_CONTENT = int(hikari.ApplicationFlags.MESSAGE_CONTENT_INTENT)
APP_FLAG_PRESENCES = int(hikari.ApplicationFlags.GUILD_PRESENCES_INTENT)

# Channel types.
GUILD_TEXT = 0
DM = 1
PUBLIC_THREAD = 11
THREAD_TYPES = frozenset({10, 11, 12})

# Message flags.
FLAG_EPHEMERAL = 64
FLAG_LOADING = 128
FLAG_IS_VOICE_MESSAGE = 1 << 13


class SnowflakeFactory:
    """Strictly increasing snowflakes whose timestamp part is the current time."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate

    def next_on_shard(self, shard_id: int, shard_count: int) -> int:
        """The next snowflake whose shard ``(id >> 22) % shard_count`` is ``shard_id`` (its
        timestamp moves up to ``shard_count - 1`` ms ahead)."""
        if shard_count < 1 or not 0 <= shard_id < shard_count:
            raise ValueError(f"shard {shard_id} of {shard_count} does not exist")
        candidate = self.next()
        timestamp = candidate >> 22
        offset = (shard_id - timestamp) % shard_count
        if offset == 0:
            return candidate
        self._last = (timestamp + offset) << 22
        return self._last


def shard_of(snowflake: int, shard_count: int) -> int:
    """Discord's shard formula: ``(guild_id >> 22) % shard_count``."""
    return (snowflake >> 22) % max(1, shard_count)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def iso(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def bot_token(bot_user_id: int) -> str:
    """A token in Discord's shape: base64(user id) . timestamp-ish . HMAC-ish.

    hikari reads the bot's id from the first segment (``applications.get_token_id``), so it
    must be base64 of the decimal id; Discord leaves the padding off, and so do we.
    """
    first = base64.b64encode(str(bot_user_id).encode()).decode().rstrip("=")
    return f"{first}.EMULATR.{secrets.token_urlsafe(27)}"


def new_token(nbytes: int = 48) -> str:
    return secrets.token_urlsafe(nbytes)
