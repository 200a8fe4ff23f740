"""What a user reads when a generation fails: in the personality's voice where it has words."""

from __future__ import annotations

from tzurot.ai.errors import ErrorCategory
from tzurot.personalities.models import Personality

# What a user reads when a personality has no error_message of its own.
BUILT_IN_ERROR_MESSAGES: dict[str, str] = {
    ErrorCategory.AUTHENTICATION: "I can't reach my model right now: its API key was refused.",
    ErrorCategory.QUOTA_EXCEEDED: "I'm out of credits with my model provider for the moment.",
    ErrorCategory.CONTENT_POLICY: "My model provider declined to answer that.",
    ErrorCategory.MODEL_NOT_FOUND: "The model I'm set up to use doesn't exist any more.",
    ErrorCategory.BAD_REQUEST: "My model provider couldn't make sense of that request.",
    ErrorCategory.CONTEXT_WINDOW: "This conversation got too long for my model to read.",
    ErrorCategory.RATE_LIMIT: "Too many people are talking to me at once; try again shortly.",
    ErrorCategory.SERVER_ERROR: "My model provider is having trouble right now.",
    ErrorCategory.TIMEOUT: "My model took too long to answer.",
    ErrorCategory.NETWORK: "I couldn't reach my model provider.",
    ErrorCategory.EMPTY_RESPONSE: "My model answered with nothing at all.",
    ErrorCategory.USER_KEY_REJECTED: (
        "I couldn't answer: the API key you added for this model's provider was refused. "
        "Add a working one with `/settings apikey set`."
    ),
    ErrorCategory.NO_API_KEY: (
        "I can't answer yet: no API key is set up for my model's provider. Add your own with "
        "`/settings apikey set`, or ask the bot's operator."
    ),
}
# Failures the user can fix themselves: always told in these words (a personality's own error
# message would hide what to do).
ACTIONABLE: frozenset[str] = frozenset({ErrorCategory.USER_KEY_REJECTED, ErrorCategory.NO_API_KEY})
DEFAULT_ERROR_MESSAGE = "Something went wrong while I was thinking."


def error_message_for(personality: Personality, category: str) -> str:
    """What a user reads when a generation fails: the personality's own words, else ours."""
    return in_voice(personality.error_message, category)


def in_voice(own_message: str | None, category: str) -> str:
    if category in ACTIONABLE:
        return BUILT_IN_ERROR_MESSAGES[category]
    return own_message or BUILT_IN_ERROR_MESSAGES.get(category, DEFAULT_ERROR_MESSAGE)
