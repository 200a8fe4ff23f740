"""A finished generation as the text a user reads."""

from __future__ import annotations

from tzurot.ai.contracts import GenerationResult

BOT_SUFFIX = ""  # appended to webhook usernames if a deployment wants to mark them as bots
MAX_USERNAME = 80


def reply_text(result: GenerationResult) -> str:
    """The reply, or the personality's error message with a spoiler naming the failure."""
    if result.status == "completed" and result.content:
        return result.content
    failure = result.failure
    message = result.error_message or "Something went wrong."
    if failure is None:
        return message
    return f"{message}\n||(error: {failure.category}; ref: {failure.reference_id})||"


def webhook_username(display_name: str) -> str:
    # Discord refuses webhook names containing "discord" or "clyde" and over 80 characters.
    name = display_name.replace("discord", "disc0rd").replace("Discord", "Disc0rd")
    name = name.replace("clyde", "clyd3").replace("Clyde", "Clyd3")
    return (name + BOT_SUFFIX)[:MAX_USERNAME] or "Tzurot"


def dm_prefix(display_name: str) -> str:
    return f"**{display_name}:** "
