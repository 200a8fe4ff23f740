"""A finished generation as the text a user reads, and the names it is posted under."""

from __future__ import annotations

import re

from tzurot.ai.contracts import GenerationFailure, GenerationResult
from tzurot.discord.delivery.splitting import split_message

BOT_SUFFIX = ""  # appended to webhook usernames if a deployment wants to mark them as bots
MAX_USERNAME = 80
# Discord refuses webhook usernames containing these (any case).
_REFUSED_IN_USERNAMES = re.compile(r"discord|clyde", re.IGNORECASE)


def reply_text(result: GenerationResult) -> str:
    """The reply, or the personality's error message with a spoiler naming the failure."""
    if result.status == "completed" and result.content:
        return result.content
    return failure_text(result.error_message, result.failure)


def failure_text(error_message: str | None, failure: GenerationFailure | None) -> str:
    message = error_message or "Something went wrong."
    if failure is None:
        return message
    return f"{message}\n||(error: {failure.category}; ref: {failure.reference_id})||"


def webhook_username(display_name: str) -> str:
    def soften(match: re.Match[str]) -> str:  # "Discord" -> "Disc0rd", "clyde" -> "clyd3"
        word = match.group()
        return word[:4] + "0" + word[5:] if len(word) == 7 else word[:4] + "3"

    name = _REFUSED_IN_USERNAMES.sub(soften, display_name)
    return (name + BOT_SUFFIX)[:MAX_USERNAME].strip() or "Tzurot"


def bot_prefix(display_name: str) -> str:
    """What starts a reply the bot posts as itself (DMs, or no webhook): who is speaking."""
    return f"**{display_name}:** "


MESSAGE_LIMIT = 2000


def reply_chunks(text: str, display_name: str) -> list[str]:
    """The messages a reply's text is posted as. Room is left for the name in front, so every
    chunk also fits when posted as the bot itself; a streamed reply is laid out the same way."""
    return split_message(text, limit=MESSAGE_LIMIT - len(bot_prefix(display_name)))
