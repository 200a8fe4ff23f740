"""Calling a chat model: one attempt per call, failures turned into ProviderError.

Retries belong to the job queue (which honours Retry-After and the job's time budget), so
neither litellm nor the OpenAI SDK under it may retry on its own.

litellm takes seconds to import, so this module does not import it: `LiteLLMProvider.warm_up()`
imports it in a worker thread, and `complete()` waits for that import if it has not finished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from tzurot.ai._litellm import load_litellm, loaded_litellm
from tzurot.ai.errors import ErrorCategory, ProviderError
from tzurot.ai.models import ChatMessage, Completion, ModelTarget
from tzurot.ai.thinking import strip_thinking
from tzurot.logs import get_logger

log = get_logger(__name__)


TextCallback = Callable[[str], Awaitable[None]]


class ChatModel(Protocol):
    """A model client. `sampling` holds only the values that are set (`top_p`,
    `frequency_penalty`, `presence_penalty`): an unset one is the model's own default.

    With `on_text`, the reply is streamed: `on_text(raw)` is awaited after each piece of
    content with all the raw content so far (thinking tags included: see
    `thinking.streamable`; reasoning the provider sends apart never goes to it). The returned
    Completion is the same as without `on_text` for the same model output."""

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        target: ModelTarget,
        *,
        temperature: float,
        max_tokens: int,
        timeout: float,
        on_text: TextCallback | None = None,
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
        on_text: TextCallback | None = None,
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
        if on_text is not None:
            request["stream"] = True
            request["stream_options"] = {"include_usage": True}
        callback = _Callback(on_text)
        try:
            # The whole call, streamed or not, sits inside the attempt's budget.
            async with asyncio.timeout(timeout):
                try:
                    response = await litellm.acompletion(**request)
                except litellm.UnsupportedParamsError:
                    # Raised before anything is sent (e.g. temperature on o-series models):
                    # let litellm drop what this model lacks and make the one real call.
                    response = await litellm.acompletion(**request, drop_params=True)
                if on_text is None:
                    reply = _reply_of(response)
                else:
                    reply = await _read_stream(response, callback)
            completion = _completion(reply, target)
        except Exception as exc:
            from tzurot.ai.litellm_errors import classify  # loaded with litellm, by now

            error = classify(exc, secrets=[request["api_key"]] if request["api_key"] else [])
        if callback.error is not None:
            request.clear()
            raise callback.error  # the caller's own failure (e.g. its stream), not the model's
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


@dataclass
class _Reply:
    """What a model call returned, read the same way from a response and from a stream."""

    content: str = ""
    reasoning: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Callback:
    """Runs `on_text`, keeping its exception apart: it is the caller's, never a ProviderError."""

    def __init__(self, on_text: TextCallback | None) -> None:
        self._on_text = on_text
        self.error: Exception | None = None

    async def __call__(self, raw: str) -> None:
        if self._on_text is None:
            return
        try:
            await self._on_text(raw)
        except Exception as exc:
            self.error = exc
            raise


def _reply_of(response: Any) -> _Reply:
    choices = getattr(response, "choices", None) or []
    message = getattr(choices[0], "message", None) if choices else None
    raw = getattr(message, "content", None) or ""
    reasoning = getattr(message, "reasoning_content", None)
    usage = getattr(response, "usage", None)
    return _Reply(
        content=raw if isinstance(raw, str) else str(raw),
        reasoning=reasoning if isinstance(reasoning, str) else None,
        finish_reason=getattr(choices[0], "finish_reason", None) if choices else None,
        model=getattr(response, "model", None),
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
    )


async def _read_stream(stream: Any, on_text: _Callback) -> _Reply:
    """Read a litellm stream to its end; `on_text` gets the content so far after each delta."""
    content: list[str] = []
    reasoning: list[str] = []
    reply = _Reply()
    try:
        async for chunk in stream:
            reply.model = reply.model or getattr(chunk, "model", None)
            usage = getattr(chunk, "usage", None)
            if usage is not None:
                reply.prompt_tokens = getattr(usage, "prompt_tokens", None)
                reply.completion_tokens = getattr(usage, "completion_tokens", None)
            choices = getattr(chunk, "choices", None) or []
            if not choices:
                continue
            finish = getattr(choices[0], "finish_reason", None)
            reply.finish_reason = finish or reply.finish_reason
            delta = getattr(choices[0], "delta", None)
            thought = getattr(delta, "reasoning_content", None)
            if isinstance(thought, str) and thought:
                reasoning.append(thought)
            text = getattr(delta, "content", None)
            if isinstance(text, str) and text:
                content.append(text)
                await on_text("".join(content))
    finally:
        # A stream left early (a timeout, a failed callback) gives its connection back now.
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
    reply.content = "".join(content)
    reply.reasoning = "".join(reasoning) or None
    return reply


def _completion(reply: _Reply, target: ModelTarget) -> Completion:
    """The Completion of a reply: the one place that strips thinking and refuses empty ones."""
    visible, tagged = strip_thinking(reply.content)
    visible = visible.strip()
    thinking = "\n\n".join(
        part.strip() for part in (reply.reasoning, tagged) if isinstance(part, str) and part.strip()
    )
    if not visible:
        finish_reason = reply.finish_reason
        detail = f" (finish_reason: {finish_reason})" if finish_reason else ""
        raise ProviderError(
            ErrorCategory.EMPTY_RESPONSE, f"The model returned an empty reply.{detail}"
        )
    return Completion(
        content=visible,
        thinking=thinking or None,
        model=reply.model or target.model,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        finish_reason=reply.finish_reason,
    )
