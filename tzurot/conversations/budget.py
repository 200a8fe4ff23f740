"""Fitting a transcript into a token budget: the newest turns win, each with its speaker named."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from tzurot.conversations.models import ChatTurn

log = structlog.get_logger(__name__)

TokenCounter = Callable[[str], int]


def counted_text(turn: ChatTurn) -> str:
    """What a turn costs: its text as the model sees it, labelled with the speaker."""
    return f"{turn.speaker}: {turn.content}"


def fit_to_budget(
    turns: Sequence[ChatTurn], budget_tokens: int, count_tokens: TokenCounter
) -> list[ChatTurn]:
    """The newest turns (oldest first) that fit in `budget_tokens`, without gaps: the first
    turn, counting back from the newest, that does not fit ends the selection."""
    kept: list[ChatTurn] = []
    remaining = budget_tokens
    for turn in reversed(turns):
        cost = count_tokens(counted_text(turn))
        if cost > remaining:
            break
        kept.append(turn)
        remaining -= cost
    kept.reverse()
    return kept


def approximate_tokens(text: str) -> int:
    """About four characters a token, never zero: the fallback when no tokenizer is known."""
    return len(text) // 4 + 1


def litellm_counter(model: str) -> TokenCounter:
    """Count tokens with litellm's tokenizer for `model`, or approximately if litellm cannot.

    Offline: litellm counts with tiktoken files it ships; the Hugging Face tokenizers it would
    download (llama, cohere models) are switched off, as `tzurot.ai` does.
    """
    import litellm  # lazy: importing litellm takes seconds

    litellm.disable_hf_tokenizer_download = True
    failed = False

    def count(text: str) -> int:
        nonlocal failed
        if not failed:
            try:
                return int(litellm.token_counter(model=model, text=text))
            except Exception as error:
                failed = True
                log.warning("token counting falls back to an estimate", model=model, error=error)
        return approximate_tokens(text)

    return count
