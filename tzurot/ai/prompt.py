"""Prompt assembly: system message, labelled chat log and the new message, within a token budget.

Budget: the personality's context window, less 5% kept free, less the reply's tokens (at most a
quarter of the window). The system message and the new message always go in (the system
message's card, then its prompt, are cut if they alone would not fit). Long-term memory comes
next, within a quarter of the window: the facts about the user first (newest first), then the
recalled memories (most similar first), each labelled with its date. History fills what is
left, newest first, and is then put back in chronological order.

Two variants: with `group_replies`, the replies other characters already gave to the same
message (`following`) come after it, so this character answers with them in view; and for
/chime-in there is no new message: the log ends with a note asking the character to join in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tzurot.ai.models import ChatMessage
from tzurot.conversations.models import ChatTurn
from tzurot.personalities.models import (
    DEFAULT_CONTEXT_WINDOW,
    DEFAULT_MAX_TOKENS,
    Personality,
    normalize_ref,
)

TokenCounter = Callable[[str], int]

# Chat formats wrap every message in a few tokens of their own.
MESSAGE_OVERHEAD_TOKENS = 4
FREE_FRACTION = 0.05
MAX_REPLY_FRACTION = 0.25
MAX_MEMORY_FRACTION = 0.25


@dataclass(frozen=True)
class MemoryLine:
    """A recalled memory as the prompt shows it."""

    at: datetime
    text: str


_CARD_LABELS = (
    ("character_info", "Character info"),
    ("personality_traits", "Personality traits"),
    ("tone", "Tone"),
    ("age", "Age"),
    ("appearance", "Appearance"),
    ("likes", "Likes"),
    ("dislikes", "Dislikes"),
    ("conversational_goals", "Conversational goals"),
    ("conversational_examples", "Conversational examples"),
)


def litellm_token_counter(model: str) -> TokenCounter:
    """Count with litellm's tokenizer for `model`; len/4 if litellm cannot. Never networked.
    Counts are remembered (the same system prompt and history turns come back every turn)."""

    def count(text: str) -> int:
        return _cached_count(model, text)

    return count


@functools.lru_cache(maxsize=2048)
def _cached_count(model: str, text: str) -> int:
    # litellm is imported here, not at module import: the gateway must not wait for it.
    import litellm

    from tzurot.ai._litellm import configure_litellm

    configure_litellm()
    try:
        return int(litellm.token_counter(model=model, text=text))
    except Exception:
        return len(text) // 4


def reply_reserve(personality: Personality, reply_tokens: int | None = None) -> int:
    """Tokens kept out of the prompt: 5% of the window plus the reply (capped at 25%)."""
    window = personality.context_window or DEFAULT_CONTEXT_WINDOW
    if reply_tokens is None:
        reply_tokens = personality.max_tokens or DEFAULT_MAX_TOKENS
    reply = reply_tokens
    return int(window * FREE_FRACTION) + min(reply, int(window * MAX_REPLY_FRACTION))


def build_messages(
    personality: Personality,
    *,
    user_message: str,
    user_name: str,
    history: Sequence[ChatTurn],
    participants: Sequence[str],
    now: datetime,
    location: str | None,
    model: str,
    reply_tokens: int | None = None,
    count_tokens: TokenCounter | None = None,
    images: Sequence[str] = (),
    facts: Sequence[str] = (),
    memories: Sequence[MemoryLine] = (),
    following: Sequence[ChatTurn] = (),
    chime_in: bool = False,
) -> list[ChatMessage]:
    count = count_tokens or litellm_token_counter(model)
    window = personality.context_window or DEFAULT_CONTEXT_WINDOW
    budget = window - reply_reserve(personality, reply_tokens)

    if chime_in:
        current = ChatMessage(role="user", content=_chime_in_note(personality))
    else:
        current = ChatMessage(
            role="user", content=_labelled(user_name, user_message), images=tuple(images)
        )
    remaining = budget - count(current.content) - 2 * MESSAGE_OVERHEAD_TOKENS
    context = _context(now, location, participants)
    system, system_tokens = _fit_system(personality, context, remaining, count)
    remaining -= system_tokens
    recalled = _memory_section(
        user_name, facts, memories, min(remaining, int(window * MAX_MEMORY_FRACTION)), count
    )
    if recalled:
        system += "\n\n" + recalled
        remaining -= count(recalled) + 1

    # The replies after the message are the newest turns: they go in first.
    after, remaining = _fit_turns(following, personality, remaining, count)
    kept, remaining = _fit_turns(history, personality, remaining, count)
    return [ChatMessage(role="system", content=system), *kept, current, *after]


def _fit_turns(
    turns: Sequence[ChatTurn], personality: Personality, remaining: int, count: TokenCounter
) -> tuple[list[ChatMessage], int]:
    """The newest of `turns` that fit in `remaining` tokens, oldest first, and what is left."""
    kept: list[ChatMessage] = []
    for turn in reversed(turns):
        if not turn.content.strip():
            continue
        message = _turn_message(turn, personality)
        cost = count(message.content) + MESSAGE_OVERHEAD_TOKENS
        if cost > remaining:
            break
        kept.append(message)
        remaining -= cost
    kept.reverse()
    return kept, remaining


def split_at(history: Sequence[ChatTurn], at: datetime) -> tuple[list[ChatTurn], list[ChatTurn]]:
    """(the turns up to `at`, the turns after it): for group_replies, the other characters'
    replies to the message (written after it) follow it in the prompt."""
    when = _aware(at)
    before = [t for t in history if _aware(t.at) <= when]
    after = [t for t in history if _aware(t.at) > when]
    return before, after


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _chime_in_note(personality: Personality) -> str:
    me = _name(personality.display_name)
    return (
        f"[Nobody has addressed {me} directly. {me} now joins the conversation above of their "
        "own accord: reply to what was said most recently, in character, as one message.]"
    )


def _turn_message(turn: ChatTurn, personality: Personality) -> ChatMessage:
    if turn.role == "assistant" and _is_self(turn, personality):
        return ChatMessage(role="assistant", content=turn.content)
    # People and other personalities alike speak to this one as labelled user messages.
    return ChatMessage(role="user", content=_labelled(turn.speaker, turn.content))


def _is_self(turn: ChatTurn, personality: Personality) -> bool:
    return normalize_ref(turn.personality or turn.speaker) in personality.refs()


def _labelled(speaker: str, content: str) -> str:
    return f"{_name(speaker)}: {content}"


def _name(name: str) -> str:
    # A name is one line, so it cannot smuggle a fake "System:" line into the log.
    return " ".join(name.split()) or "someone"


def _memory_section(
    user_name: str,
    facts: Sequence[str],
    memories: Sequence[MemoryLine],
    budget: int,
    count: TokenCounter,
) -> str:
    """Facts, then memories, as many as fit in `budget` tokens ("" if none does)."""
    name = _name(user_name)
    blocks: list[tuple[str, list[str]]] = [
        (f"## What you know about {name}", [f"- {_one_line(f)}" for f in facts]),
        (
            "## Memories of earlier conversations (most relevant first)",
            [f"- [{_day(m.at)}] {_one_line(m.text)}" for m in memories],
        ),
    ]
    out: list[str] = []
    spent = 0
    for heading, lines in blocks:
        if not lines:
            continue
        kept: list[str] = []
        cost = count(heading) + 1
        for line in lines:
            line_cost = count(line) + 1
            if spent + cost + line_cost > budget:
                break
            kept.append(line)
            cost += line_cost
        if kept:
            out.append("\n".join([heading, *kept]))
            spent += cost
    return "\n\n".join(out)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _day(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%d")


# --- the system message ------------------------------------------------------------------------


def _rules(personality: Personality) -> str:
    me = personality.display_name
    return (
        f"You are {me}, a character talking with people in a Discord chat.\n"
        f"- Stay in character as {me}. Never claim to be another character or personality, "
        "even when other characters speak in the chat.\n"
        "- Write Discord markdown (**bold**, *italics*, `code`, ``` code blocks ```, > quotes).\n"
        "- Never write @everyone or @here, and never try to mention roles or users.\n"
        '- Chat messages are shown as "Name: message". Reply as yourself only, without '
        "a name prefix, and do not write other people's lines."
    )


def _card(personality: Personality) -> str:
    lines = []
    for field, label in _CARD_LABELS:
        value = str(getattr(personality.card, field)).strip()
        if value:
            lines.append(f"{label}: {value}")
    return "## Character\n" + "\n".join(lines) if lines else ""


def _context(now: datetime, location: str | None, participants: Sequence[str]) -> str:
    when = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(UTC)
    lines = [f"Current date and time: {when.strftime('%A, %d %B %Y, %H:%M')} UTC"]
    if location:
        lines.append(f"Location: {location}")
    names = list(dict.fromkeys(_name(p) for p in participants if p.strip()))
    if names:
        lines.append(f"Participants: {', '.join(names)}")
    return "## Context\n" + "\n".join(lines)


def _fit_system(
    personality: Personality, context: str, budget: int, count: TokenCounter
) -> tuple[str, int]:
    """The system message and its token count, cut to `budget` if need be."""
    rules, card, prompt = _rules(personality), _card(personality), personality.system_prompt.strip()

    def join(card_text: str, prompt_text: str) -> str:
        return "\n\n".join(part for part in (rules, card_text, prompt_text, context) if part)

    full = join(card, prompt)
    tokens = count(full)
    if tokens <= budget:
        return full, tokens
    # Too big: the card gives way first, then the personality's own prompt. Never raise.
    fitted = _shrink(lambda c: join(c, prompt), card, budget, count)
    if fitted is None:
        fitted = _shrink(lambda p: join("", p), prompt, budget, count)
    if fitted is None:
        bare = join("", "")
        fitted = bare, count(bare)
    return fitted


def _shrink(
    make: Callable[[str], str], text: str, budget: int, count: TokenCounter
) -> tuple[str, int] | None:
    """Cut `text` until `make(text)` fits `budget`: (result, tokens), or None if it never does."""
    allowance = budget - count(make(""))
    while allowance > 0:
        text = _truncate(text, allowance, count)
        if not text:
            return None
        result = make(text)
        tokens = count(result)
        if tokens <= budget:
            return result, tokens
        allowance -= max(1, tokens - budget)  # tokens need not add up across a join
    return None


def _truncate(text: str, tokens: int, count: TokenCounter) -> str:
    """The longest prefix (cut at a word) of `text` that fits in `tokens`; "" if none does."""
    if tokens <= 0 or not text:
        return ""
    size = count(text)
    if size <= tokens:
        return text
    chars = int(len(text) * tokens / size)
    while chars > 0:
        cut = text[:chars]
        if " " in cut:
            cut = cut.rsplit(" ", 1)[0]
        candidate = cut.rstrip() + " …"
        if count(candidate) <= tokens:
            return candidate
        chars = int(chars * 0.9)
    return ""
