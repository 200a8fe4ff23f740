"""Separating a model's "thinking" from the reply users see.

Rules:
- `<think>…</think>` and its kin (any case, attributes allowed) are removed with their content,
  unless the opening tag sits inside an inline code span or a fenced code block.
- An opening tag needs its closing tag to count: a reply that opens `<think>` and never closes
  it keeps its text (the lone tag at the very start is dropped), so the reply is never lost.
- A closing tag with no opening tag before it (models whose template pre-fills `<think>`) makes
  everything before it thinking, provided some reply follows it.
- Text without any of these tags is returned unchanged.

While a reply streams in, `streamable(raw so far)` is what may be shown: it never holds text
from inside a thinking block, whatever comes next. An opened block not closed yet hides
everything from its tag on (the final `strip_thinking` may give that text back: the whole
reply when the tag was a lone leading one or was never closed), as does a tag still arriving
at the end (`<`, `<thi`, `</thin`). Whether a tag sits in code is decided as `strip_thinking`
decides it; a backtick on the last line that may still open a code span leaves the tags after
it undecided, which hides an opening tag and does not yet count a closing one.

The limit: a template that pre-fills `<think>` sends only the closing tag, so until that tag
arrives its thinking looks like a reply. Nothing in the text can tell in advance. A caller that
knows (or has seen: `prefilled_thinking`) that a model does this passes `prefilled=True`, and
nothing is shown before the first closing tag (a reply that turns out to have none appears when
it is final). Without it, such thinking is shown until its closing tag arrives, then withdrawn.
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
# A tag still arriving at the very end of the text: `<`, `<thi`, `</thinking `, `<think a="`.
_TAG_NAMES = "|".join(sorted({name[:i] for name in THINKING_TAGS for i in range(len(name) + 1)}))
_PARTIAL_TAG = re.compile(
    rf"<(?:/?(?:{_TAG_NAMES})|(?:{_TAGS})\s[^<>]*|/(?:{_TAGS})\s+)\Z", re.IGNORECASE
)


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


def streamable(raw: str, *, prefilled: bool = False) -> str:
    """The part of a reply still arriving (`raw`: all of it so far) that is safe to show now.

    Never any text from inside a thinking block, however the rest arrives (see the module's
    docstring); `strip_thinking` on the whole reply stays the final word. With `prefilled`
    (the model's template opens the thinking), nothing shows before the first closing tag.
    """
    code = [m.span() for m in _CODE.finditer(raw)]
    cut = len(raw)
    if (partial := _PARTIAL_TAG.search(raw)) and _code_span_at(partial.start(), code) is None:
        cut = partial.start()
    settled = _settled_end(raw, code, cut)
    opening = next(
        (m for m in _OPEN.finditer(raw, 0, cut) if _code_span_at(m.start(), code) is None), None
    )
    closing = next(
        (m for m in _ANY_CLOSE.finditer(raw, 0, settled) if _code_span_at(m.start(), code) is None),
        None,
    )
    blocks: list[tuple[int, int]] = []  # removed, as strip_thinking removes them
    if closing is not None and (opening is None or opening.start() > closing.start()):
        blocks.append((0, closing.end()))  # what came before the first closing tag: thinking
    elif prefilled and (opening is None or opening.start() >= settled):
        return ""
    stop, pos = cut, blocks[0][1] if blocks else 0
    while opening := _OPEN.search(raw, pos, cut):
        span = _code_span_at(opening.start(), code)
        if span is not None:
            pos = span[1]
            continue
        tag = opening["tag"].lower()
        end = re.compile(rf"</{tag}\s*>", re.IGNORECASE).search(raw, opening.end(), cut)
        if end is None:
            stop = opening.start()  # still thinking: nothing after the tag is safe yet
            break
        blocks.append((opening.start(), end.end()))
        pos = end.end()
    visible, prev = "", 0
    for start, end_at in blocks:
        visible = _glue(visible, raw[prev:start])
        prev = end_at
    return _glue(visible, raw[prev:stop]).strip()


def prefilled_thinking(raw: str) -> bool:
    """Whether a whole reply began inside thinking that its template opened: a closing tag
    with no opening tag before it (what `strip_thinking` takes as pre-filled thinking)."""
    code = [m.span() for m in _CODE.finditer(raw)]
    return bool(_leading_orphan(raw, code))


def _settled_end(text: str, code: list[tuple[int, int]], cut: int) -> int:
    """Where the text stops being sure of its code spans: at the first backtick of the last
    line that is in no span yet (more text may close a span opened there), else at `cut`."""
    index = text.find("`", text.rfind("\n", 0, cut) + 1, cut)
    while index != -1:
        span = _code_span_at(index, code)
        if span is None:
            return index
        index = text.find("`", span[1], cut)
    return cut
