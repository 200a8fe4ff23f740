"""Calling a chat model: one attempt per call, failures turned into ProviderError.

Retries belong to the job queue (which honours Retry-After and the job's time budget), so
neither litellm nor the OpenAI SDK under it may retry on its own.

litellm takes seconds to import, so this module does not import it: `LiteLLMProvider.warm_up()`
imports it in a worker thread, and `complete()` waits for that import if it has not finished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Protocol

from tzurot.ai._litellm import load_litellm, loaded_litellm
from tzurot.ai.errors import ErrorCategory, ProviderError
from tzurot.ai.models import ChatMessage, Completion, ModelTarget
from tzurot.ai.thinking import strip_thinking
from tzurot.logs import get_logger

log = get_logger(__name__)


class ChatModel(Protocol):
    """A model client. `sampling` holds only the values that are set (`top_p`,
    `frequency_penalty`, `presence_penalty`): an unset one is the model's own default."""

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        target: ModelTarget,
        *,
        temperature: float,
        max_tokens: int,
        timeout: float,
        **sampling: float,
    ) -> Completion: ...


SAMPLING_PARAMETERS = ("top_p", "frequency_penalty", "presence_penalty")


class LiteLLMProvider:
    """ChatModel over `litellm.acompletion`. Cheap to construct: litellm loads on `warm_up()`."""

    def __init__(self) -> None:
        self._import: asyncio.Task[ModuleType] | None = None

    async def warm_up(self) -> None:
        """Import and configure litellm in a worker thread, without blocking the event loop.

        Idempotent and safe to run concurrently with `complete()`; call it once at start-up
        (as a background task) so the first generation does not wait ~3 s for the import.
        """
        await self._litellm()

    async def _litellm(self) -> ModuleType:
        module = loaded_litellm()
        if module is not None:
            return module
        loop = asyncio.get_running_loop()
        pending = self._import
        if pending is None or pending.get_loop() is not loop:
            # One import per provider and loop; concurrent callers share it (load_litellm's
            # lock covers other providers). Shielded: a cancelled caller leaves it running.
            pending = self._import = loop.create_task(
                asyncio.to_thread(load_litellm), name="import-litellm"
            )
        return await asyncio.shield(pending)

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        target: ModelTarget,
        *,
        temperature: float,
        max_tokens: int,
        timeout: float,
        **sampling: float,
    ) -> Completion:
        unknown = set(sampling) - set(SAMPLING_PARAMETERS)
        if unknown:
            raise TypeError(f"unknown sampling parameters: {sorted(unknown)}")
        litellm = await self._litellm()  # outside the timeout: the call's budget is the model's
        started = time.monotonic()
        error: ProviderError | None = None
        request: dict[str, Any] = {
            "model": target.model,
            "messages": [m.wire() for m in messages],
            "api_base": target.api_base,
            "api_key": target.api_key.get_secret_value() if target.api_key else None,
            "temperature": temperature,
            "max_tokens": max_tokens,
            **{name: value for name, value in sampling.items() if value is not None},
            "timeout": timeout,
            "num_retries": 0,  # litellm's own retries
            "max_retries": 0,  # the OpenAI SDK's retries
            # litellm's per-call opt-out: no success/failure logging callback gets this call's
            # prompt or reply even if one is registered some day (configure_litellm relies on it
            # to skip the redaction copies). Costs nothing per call; it is never sent upstream.
            "no-log": True,
        }
        try:
            async with asyncio.timeout(timeout):
                try:
                    response = await litellm.acompletion(**request)
                except litellm.UnsupportedParamsError:
                    # Raised before anything is sent (e.g. temperature on o-series models):
                    # let litellm drop what this model lacks and make the one real call.
                    response = await litellm.acompletion(**request, drop_params=True)
            completion = _completion(response, target)
        except Exception as exc:
            from tzurot.ai.litellm_errors import classify  # loaded with litellm, by now

            error = classify(exc, secrets=[request["api_key"]] if request["api_key"] else [])
        if error is not None:
            # Raised outside the except block, so the original exception (whose request holds
            # headers and the key) is not chained as __context__; and the traceback's frame no
            # longer holds the key either.
            request.clear()
            log.info(
                "llm call failed",
                model=target.model,
                category=error.category,
                seconds=round(time.monotonic() - started, 3),
            )
            raise error from None
        log.debug(
            "llm call done", model=completion.model, seconds=round(time.monotonic() - started, 3)
        )
        return completion


def _completion(response: Any, target: ModelTarget) -> Completion:
    choices = getattr(response, "choices", None) or []
    message = getattr(choices[0], "message", None) if choices else None
    finish_reason = getattr(choices[0], "finish_reason", None) if choices else None
    raw = getattr(message, "content", None) or ""
    visible, tagged = strip_thinking(raw if isinstance(raw, str) else str(raw))
    visible = visible.strip()
    reasoning = getattr(message, "reasoning_content", None)
    thinking = "\n\n".join(
        part.strip() for part in (reasoning, tagged) if isinstance(part, str) and part.strip()
    )
    if not visible:
        detail = f" (finish_reason: {finish_reason})" if finish_reason else ""
        raise ProviderError(
            ErrorCategory.EMPTY_RESPONSE, f"The model returned an empty reply.{detail}"
        )
    usage = getattr(response, "usage", None)
    return Completion(
        content=visible,
        thinking=thinking or None,
        model=getattr(response, "model", None) or target.model,
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        finish_reason=finish_reason,
    )
