"""litellm's process-wide switches, set once before the first call or token count."""

from __future__ import annotations

import litellm

_configured = False


def configure_litellm() -> None:
    """Quiet, local litellm: no telemetry, no debug banners, no tokenizer downloads."""
    global _configured  # noqa: PLW0603 - one process-wide switch, like litellm's own settings
    if _configured:
        return
    litellm.telemetry = False
    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" prints on every error
    litellm.drop_params = True  # a model that lacks e.g. temperature still gets the call
    litellm.turn_off_message_logging = True  # prompts never reach litellm's loggers
    # token_counter would fetch llama/cohere tokenizers from huggingface.co, blocking the event
    # loop for ~20 s when offline; the bundled tiktoken encoding is close enough for budgeting.
    litellm.disable_hf_tokenizer_download = True
    _configured = True
