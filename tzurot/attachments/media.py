"""Asking models about media: describing an image (VISION_MODEL chain), transcribing audio.

litellm is configured as for chat (`tzurot.ai._litellm`: local cost map, no telemetry) and
imported lazily, in a worker thread when it is not loaded yet. One attempt per model and no
litellm or OpenAI SDK retries: retrying is the job queue's business, so provider failures are
raised as `ProviderError` (classified, secrets redacted) and the queue decides. Replies are
checked: no text, or text of the wrong type, is a clear `ProviderError`; long text is capped.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from pydantic import SecretStr

from tzurot.ai._litellm import load_litellm, loaded_litellm
from tzurot.ai.errors import ErrorCategory, ProviderError
from tzurot.ai.models import ModelTarget
from tzurot.ai.thinking import strip_thinking
from tzurot.attachments.models import MediaError
from tzurot.logs import get_logger

log = get_logger(__name__)

MAX_DESCRIPTION_CHARS = 4000
MAX_TRANSCRIPT_CHARS = 20_000
DESCRIBE_TIMEOUT_SECONDS = 60.0
TRANSCRIBE_TIMEOUT_SECONDS = 120.0
DESCRIBE_MAX_TOKENS = 700
DESCRIBE_PROMPT = (
    "Describe this image for someone who cannot see it: what it shows, the setting, people's "
    "expressions and actions, the mood, and any text in it (quoted exactly). Be factual and "
    "concise, a short paragraph or two; do not guess who real people are."
)


def data_url(data: bytes, mime: str) -> str:
    """The bytes as a `data:` URL, the form image parts take."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def cap_text(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


async def _litellm() -> ModuleType:
    module = loaded_litellm()
    return module if module is not None else await asyncio.to_thread(load_litellm)


def _key(api_key: str | SecretStr | None) -> str | None:
    if isinstance(api_key, SecretStr):
        return api_key.get_secret_value() or None
    return api_key or None


async def describe_image(
    data: bytes,
    mime: str,
    *,
    models: Sequence[str | ModelTarget],
    api_base: str | None = None,
    api_key: str | SecretStr | None = None,
    timeout: float = DESCRIBE_TIMEOUT_SECONDS,
    prompt: str = DESCRIBE_PROMPT,
    max_tokens: int = DESCRIBE_MAX_TOKENS,
) -> str:
    """A description of the image by the first model of `models` that answers.

    A plain model string uses `api_base` / `api_key`; a `ModelTarget` brings its own (falling
    back to those when unset). `timeout` is per model. When every model fails, the first
    retryable `ProviderError` is raised (so the job is retried), else the last one.
    """
    if not models:
        raise MediaError("no vision model is configured")
    litellm = await _litellm()
    url = data_url(data, mime)
    errors: list[ProviderError] = []
    for entry in models:
        target = entry if isinstance(entry, ModelTarget) else ModelTarget(model=entry)
        request: dict[str, Any] = {
            "model": target.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": prompt},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            ],
            "api_base": target.api_base or api_base,
            "api_key": _key(target.api_key) or _key(api_key),
            "max_tokens": max_tokens,
            "timeout": timeout,
            "num_retries": 0,
            "max_retries": 0,
            "no-log": True,
        }
        started = time.monotonic()
        error: ProviderError | None = None
        text = ""
        try:
            async with asyncio.timeout(timeout):
                response = await litellm.acompletion(**request)
            text = _description(response)
        except Exception as exc:
            error = _classify(exc, request["api_key"])
        request.clear()  # the key leaves this frame before anything is logged or raised
        if error is None:
            log.debug("image described", model=target.model, seconds=_since(started))
            return text
        log.info(
            "image description failed",
            model=target.model,
            category=error.category,
            seconds=_since(started),
        )
        errors.append(error)
    raise next((e for e in errors if e.retryable), errors[-1]) from None


async def transcribe_audio(
    data: bytes,
    filename: str,
    *,
    model: str,
    api_base: str | None = None,
    api_key: str | SecretStr | None = None,
    timeout: float = TRANSCRIBE_TIMEOUT_SECONDS,
    language: str | None = None,
) -> str:
    """The transcript of the audio. `filename`'s extension tells the API the format, so pass
    one that matches the bytes (`Sniffed.extension`). No speech at all is a `MediaError`."""
    litellm = await _litellm()
    request: dict[str, Any] = {
        "model": model,
        "file": (filename, data),
        "api_base": api_base,
        "api_key": _key(api_key),
        # json: every OpenAI transcription model takes it (litellm's verbose_json default is
        # refused by gpt-4o-transcribe).
        "response_format": "json",
        "timeout": timeout,
        "num_retries": 0,
        "max_retries": 0,
        "no-log": True,
    }
    if language:
        request["language"] = language
    started = time.monotonic()
    error: ProviderError | None = None
    text = ""
    try:
        async with asyncio.timeout(timeout):
            response = await litellm.atranscription(**request)
        text = _transcript(response)
    except Exception as exc:
        error = _classify(exc, request["api_key"])
    request.clear()
    if error is not None:
        log.info(
            "transcription failed", model=model, category=error.category, seconds=_since(started)
        )
        raise error from None
    log.debug("audio transcribed", model=model, seconds=_since(started))
    if not text:
        raise MediaError("no speech was recognised")
    return text


def _classify(exc: Exception, api_key: str | None) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    from tzurot.ai.litellm_errors import classify  # loaded with litellm, by now

    return classify(exc, secrets=[api_key] if api_key else [])


def _description(response: Any) -> str:
    choices = getattr(response, "choices", None) or []
    message = getattr(choices[0], "message", None) if choices else None
    raw = getattr(message, "content", None)
    if isinstance(raw, list):  # content parts, as some providers answer
        texts = [p.get("text") for p in raw if isinstance(p, dict)]
        raw = "".join(t for t in texts if isinstance(t, str)) if texts else None
    if raw is not None and not isinstance(raw, str):
        raise ProviderError(ErrorCategory.EMPTY_RESPONSE, "The vision model's reply held no text.")
    visible, _ = strip_thinking(raw or "")
    visible = visible.strip()
    if not visible:
        raise ProviderError(
            ErrorCategory.EMPTY_RESPONSE, "The vision model returned an empty description."
        )
    return cap_text(visible, MAX_DESCRIPTION_CHARS)


def _transcript(response: Any) -> str:
    raw = response.get("text") if isinstance(response, dict) else getattr(response, "text", None)
    if not isinstance(raw, str):
        raise ProviderError(
            ErrorCategory.EMPTY_RESPONSE, "The transcription model's reply held no text."
        )
    return cap_text(raw.strip(), MAX_TRANSCRIPT_CHARS)


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
