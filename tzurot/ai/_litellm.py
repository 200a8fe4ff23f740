"""The one door to litellm: imported lazily (it takes seconds), switched once, process-wide.

`import litellm` costs ~3 s of CPU, so nothing imports it at module import time: the provider
loads it in a worker thread (`LiteLLMProvider.warm_up`), and everything else that needs it calls
`load_litellm()` / `configure_litellm()`, which import it on first use and apply the switches
below exactly once. `tzurot/__init__.py` has already set the offline / local-cost-map
environment before any of this runs.

The switches turn off per-call work we never use (measured by `bench.litellm_overhead`). What
litellm still does on every call, with no public setting to skip it (~1 ms, a third of its CPU
per call, measured there with private overrides that we do not apply): a cost calculation while
it fills the response's `_hidden_params`, and a background "success handler" task that builds a
standard logging payload (and looks the cost up again) for callbacks we do not have.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

_lock = threading.Lock()
_litellm: ModuleType | None = None


def loaded_litellm() -> ModuleType | None:
    """The configured litellm module if it has been loaded already, else None (never imports)."""
    return _litellm


def load_litellm() -> ModuleType:
    """Import litellm (seconds, the first time) and apply our switches once. Thread-safe."""
    global _litellm  # noqa: PLW0603 - one process-wide switch, like litellm's own settings
    if _litellm is not None:
        return _litellm
    with _lock:
        if _litellm is None:
            import litellm

            _configure(litellm)
            _litellm = litellm
    return _litellm


def configure_litellm() -> None:
    """Quiet, local, lean litellm: no telemetry, no downloads, no per-call work we do not use."""
    load_litellm()


def _configure(litellm: Any) -> None:  # the module: its settings are plain attributes
    litellm.telemetry = False
    # One retry layer (ours): litellm's OpenAI embedding path reads a per-call max_retries=0
    # as "unset" and falls back to this default (2), so one call would be three requests.
    litellm.DEFAULT_MAX_RETRIES = 0
    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" prints on every error
    # Off, because with it on litellm silently re-sends any request answered 422 (and turns a
    # second 422 into an empty reply). The provider asks for dropping per call instead, only
    # after litellm refused a parameter locally, before anything was sent.
    litellm.drop_params = False
    # token_counter would fetch llama/cohere tokenizers from huggingface.co, blocking the event
    # loop for ~20 s when offline; the bundled tiktoken encoding is close enough for budgeting.
    litellm.disable_hf_tokenizer_download = True
    # Off (litellm's default): redaction only feeds logging callbacks, we register none, and the
    # provider passes `no-log` so no success/failure callback would see a prompt. On, it
    # deep-copies every reply to redact it for nobody: ~0.3-0.5 ms CPU per call, 10-15%
    # (bench.litellm_overhead, "ours before" against "ours").
    litellm.turn_off_message_logging = False
    # Never clamp max_tokens to the model's window (LITELLM_MODIFY_PARAMS could turn it on):
    # that token-counts the whole prompt on every call; prompt.py already budgets the prompt.
    litellm.modify_params = False
    # We never stream; should a sync stream ever run, no success-logging thread job per chunk.
    litellm.disable_streaming_logging = True
    # No cost computed into streamed usage chunks (the default; we never read a cost).
    litellm.include_cost_in_streaming_usage = False
