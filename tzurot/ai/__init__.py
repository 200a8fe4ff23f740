"""The ai module: model calls through litellm, the error taxonomy, prompt assembly, thinking."""

from tzurot.ai.errors import RETRYABLE, ErrorCategory, ProviderError, classify, redact
from tzurot.ai.models import ChatMessage, Completion, ModelTarget
from tzurot.ai.prompt import TokenCounter, build_messages, litellm_token_counter, reply_reserve
from tzurot.ai.provider import ChatModel, LiteLLMProvider
from tzurot.ai.thinking import THINKING_TAGS, strip_thinking

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
