"""The ai module: model calls through litellm, the error taxonomy, prompt assembly, thinking.

Importing the package (or any of its pure modules: errors, contracts, models, thinking) never
imports litellm, which takes seconds: the names that need it (the provider, prompt assembly,
`classify`) are resolved on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tzurot.ai.errors import RETRYABLE, ErrorCategory, ProviderError, redact
from tzurot.ai.models import ChatMessage, Completion, ModelTarget
from tzurot.ai.thinking import THINKING_TAGS, strip_thinking

if TYPE_CHECKING:
    from tzurot.ai.litellm_errors import classify
    from tzurot.ai.prompt import TokenCounter, build_messages, litellm_token_counter, reply_reserve
    from tzurot.ai.provider import ChatModel, LiteLLMProvider

_LAZY = {
    "ChatModel": "tzurot.ai.provider",
    "LiteLLMProvider": "tzurot.ai.provider",
    "TokenCounter": "tzurot.ai.prompt",
    "build_messages": "tzurot.ai.prompt",
    "litellm_token_counter": "tzurot.ai.prompt",
    "reply_reserve": "tzurot.ai.prompt",
    "classify": "tzurot.ai.litellm_errors",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "RETRYABLE",
    "THINKING_TAGS",
    "ChatMessage",
    "ChatModel",
    "Completion",
    "ErrorCategory",
    "LiteLLMProvider",
    "ModelTarget",
    "ProviderError",
    "TokenCounter",
    "build_messages",
    "classify",
    "litellm_token_counter",
    "redact",
    "reply_reserve",
    "strip_thinking",
]
