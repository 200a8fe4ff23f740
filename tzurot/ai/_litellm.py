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
    # Off, because with it on litellm silently re-sends any request answered 422 (and turns a
    # second 422 into an empty reply). The provider asks for dropping per call instead, only
    # after litellm refused a parameter locally, before anything was sent.
    litellm.drop_params = False
    litellm.turn_off_message_logging = True  # prompts never reach litellm's loggers
    # token_counter would fetch llama/cohere tokenizers from huggingface.co, blocking the event
    # loop for ~20 s when offline; the bundled tiktoken encoding is close enough for budgeting.
    litellm.disable_hf_tokenizer_download = True
    _configured = True
