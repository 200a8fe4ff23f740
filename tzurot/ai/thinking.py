"""Separating a model's "thinking" from the reply users see.

Rules:
- `<think>…</think>` and its kin (any case, attributes allowed) are removed with their content,
  unless the opening tag sits inside an inline code span or a fenced code block.
- An opening tag needs its closing tag to count: a reply that opens `<think>` and never closes
  it keeps its text (the lone tag at the very start is dropped), so the reply is never lost.
- A closing tag with no opening tag before it (models whose template pre-fills `<think>`) makes
  everything before it thinking, provided some reply follows it.
- Text without any of these tags is returned unchanged.
"""

from __future__ import annotations

import bisect
import re
import sys

THINKING_TAGS = (
    "think",
    "thinking",
    "ant_thinking",
    "reflection",
    "thought",
    "reasoning",
    "scratchpad",
)
_TAGS = "|".join(THINKING_TAGS)
_OPEN = re.compile(rf"<(?P<tag>{_TAGS})(?:\s[^<>]*)?>", re.IGNORECASE)
_ANY_CLOSE = re.compile(rf"</(?:{_TAGS})\s*>", re.IGNORECASE)
_LEADING_OPEN = re.compile(rf"\A\s*<(?:{_TAGS})(?:\s[^<>]*)?>\s*", re.IGNORECASE)
# Fenced blocks (an unclosed fence runs to the end), then ``double`` and `single` code spans.
_CODE = re.compile(r"```[\s\S]*?(?:```|\Z)|``[^\n]*?``|`[^`\n]+`")


def strip_thinking(text: str) -> tuple[str, str | None]:
    """Return (visible reply, thinking text or None)."""
    code = [m.span() for m in _CODE.finditer(text)]
    blocks = _leading_orphan(text, code) + _tagged_blocks(text, code)
    if not blocks:
        if _LEADING_OPEN.match(text) and not _ANY_CLOSE.search(text):
            return _LEADING_OPEN.sub("", text, count=1), None
        return text, None

    blocks.sort()
    visible, prev = "", 0
    for start, end, _ in blocks:
        visible = _glue(visible, text[prev:start])
        prev = max(prev, end)
    visible = _glue(visible, text[prev:]).strip()
    thinking = "\n\n".join(inner.strip() for *_, inner in blocks if inner.strip())
    return visible, thinking or None


def _tagged_blocks(text: str, code: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    blocks: list[tuple[int, int, str]] = []
    never_closed: set[str] = set()  # a tag with no closer after here has none further on either
    pos = 0
    while opening := _OPEN.search(text, pos):
        tag = opening["tag"].lower()
        span = _code_span_at(opening.start(), code)
        if span is not None:
            pos = span[1]
            continue
        closing = None
        if tag not in never_closed:
            closing = re.compile(rf"</{tag}\s*>", re.IGNORECASE).search(text, opening.end())
        if closing is None:
            never_closed.add(tag)
            pos = opening.end()
            continue
        blocks.append((opening.start(), closing.end(), text[opening.end() : closing.start()]))
        pos = closing.end()
    return blocks


def _leading_orphan(text: str, code: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    closing = next(
        (m for m in _ANY_CLOSE.finditer(text) if _code_span_at(m.start(), code) is None), None
    )
    if closing is None or not text[closing.end() :].strip():
        return []
    if any(
        _code_span_at(m.start(), code) is None for m in _OPEN.finditer(text, 0, closing.start())
    ):
        return []
    return [(0, closing.end(), text[: closing.start()])]


def _code_span_at(index: int, code: list[tuple[int, int]]) -> tuple[int, int] | None:
    i = bisect.bisect_right(code, (index, sys.maxsize)) - 1
    if i >= 0 and code[i][0] <= index < code[i][1]:
        return code[i]
    return None


def _glue(left: str, right: str) -> str:
    """Join the text around a removed block, keeping at most the larger gap it left."""
    lhs, rhs = left.rstrip(), right.lstrip()
    if not lhs or not rhs:
        return left + right
    left_gap, right_gap = left[len(lhs) :], right[: len(right) - len(rhs)]
    newlines = max(left_gap.count("\n"), right_gap.count("\n"))
    separator = "\n" * min(newlines, 2) if newlines else " " if left_gap or right_gap else ""
    return lhs + separator + rhs
