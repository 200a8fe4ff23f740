"""Split a reply into Discord-sized messages (2000 characters each).

Break points, best first: blank lines; line breaks and the edges of code blocks; sentence ends;
spaces; then, inside a code block, its line breaks and spaces; last, a hard cut. A chunk ends at
the last break point of the best kind that fits, so a code block that fits in a message is never
cut. A code block that does not fit is closed at the end of one chunk and reopened, with its
language tag, at the start of the next.

Code fences follow Discord rather than CommonMark: every ``` opens or closes a block wherever it
sits in a line, pairing up from the left (the way ``str.count("```")`` counts them). An unclosed
block is closed at the end of the last chunk.

Whitespace at a break point is dropped (and at the ends of the text, as Discord trims messages
anyway), except inside a code block, where only the one line break or run of spaces at the cut
goes, so indentation survives. Nothing else is lost: every chunk is a slice of the text plus the
fences added around it; `plan_chunks` says which.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

DISCORD_LIMIT = 2000
FENCE = "```"
CLOSE_FENCE = "\n```"
# The least room (limit minus footer) that always fits a reopened fence, some content and a
# closing fence.
MIN_ROOM = 20

_NON_WS = re.compile(r"\S")
# Whitespace we break at: any, except the no-break spaces.
_BREAK = r"[^\S\xa0\u2007\u202f]+"
# A run of breakable whitespace, noting whether a sentence ends right before it.
_PROSE_RUN = re.compile(rf"(?P<stop>[.!?…][)\]\"'’”»*_~]*)?(?P<ws>{_BREAK})")
# CJK sentence ends need no space after them.
_CJK_STOP = re.compile(r"(?<=[。！？])(?=\S)")
_CODE_SPACES = re.compile(r"(?<=\S)[ \t]+(?=\S)")
# Discord's language tag: letters and a few symbols, then straight to a new line.
_LANG_TAG = re.compile(r"([A-Za-z0-9_+\-.#]+)\r?\n")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One message of a split text: ``text[start:end]`` with the fences and footer added to it."""

    start: int
    end: int
    reopen: str = ""  # "```lang\n" when the chunk starts inside a code block
    close: str = ""  # "\n```" when it ends inside one
    footer: str = ""  # "\n" + footer, on the last chunk only

    def render(self, text: str) -> str:
        return f"{self.reopen}{text[self.start : self.end]}{self.close}{self.footer}"


def split_message(text: str, limit: int = DISCORD_LIMIT, footer: str | None = None) -> list[str]:
    """Split ``text`` into messages of at most ``limit`` characters each.

    The footer, if given, goes on its own line at the end of the last message. Text that is
    empty or only whitespace gives no messages at all.
    """
    return [chunk.render(text) for chunk in plan_chunks(text, limit, footer)]


def plan_chunks(text: str, limit: int = DISCORD_LIMIT, footer: str | None = None) -> list[Chunk]:
    """Where `split_message` cuts ``text``, and what it adds to each piece."""
    footer_part = f"\n{footer}" if footer and not footer.isspace() else ""
    if FENCE in footer_part:
        raise ValueError("the footer must not contain a code fence")
    if limit - len(footer_part) < MIN_ROOM:
        raise ValueError(f"limit {limit} leaves less than {MIN_ROOM} characters beside the footer")
    return _Splitter(text, limit, footer_part).run()


@dataclass(frozen=True, slots=True)
class _Block:
    open_start: int
    header_end: int  # after "```" and, if there is one, the language tag and its line break
    close_start: int  # len(text) when the block is never closed
    close_end: int
    reopen: str
    # The first and last non-blank characters of the code, or -1 when there are none.
    first_code: int
    last_code: int


class _BreakPoints:
    """Break points of one kind: a chunk may end at ``ends[i]`` and the next begin at
    ``nexts[i]``; sorted by end."""

    def __init__(self, points: set[tuple[int, int]], in_code: bool) -> None:
        ordered = sorted(points)
        self.ends = [end for end, _ in ordered]
        self.nexts = [nxt for _, nxt in ordered]
        self.in_code = in_code

    def last_in(self, low: int, high: int) -> tuple[int, int] | None:
        """The last break point ending in ``(low, high]``."""
        i = bisect_right(self.ends, high) - 1
        if i >= 0 and self.ends[i] > low:
            return self.ends[i], self.nexts[i]
        return None


class _Splitter:
    def __init__(self, text: str, limit: int, footer: str) -> None:
        self.text = text
        self.limit = limit
        self.footer = footer
        self.content_end = len(text.rstrip())
        self.blocks = self._find_blocks(limit - len(footer))
        self.block_starts = [block.open_start for block in self.blocks]
        self.break_points = self._find_break_points()

    def run(self) -> list[Chunk]:
        text, limit = self.text, self.limit
        chunks: list[Chunk] = []
        pos = self._skip_whitespace(0)
        while pos < self.content_end:
            reopen = self._reopen_at(pos)
            close = CLOSE_FENCE if self._in_code(self.content_end) else ""
            size = len(reopen) + self.content_end - pos + len(close) + len(self.footer)
            if size <= limit:
                chunks.append(Chunk(pos, self.content_end, reopen, close, self.footer))
                break
            end, nxt = self._next_break(pos, reopen)
            if self._in_code(end):
                chunks.append(Chunk(pos, end, reopen, CLOSE_FENCE))
            else:
                # Only a hard cut can leave whitespace at the end of the chunk.
                while end - 1 > pos and text[end - 1].isspace():
                    end -= 1
                chunks.append(Chunk(pos, end, reopen))
            pos = nxt if self._in_code(nxt) else self._skip_whitespace(nxt)
        return chunks

    def _next_break(self, pos: int, reopen: str) -> tuple[int, int]:
        room = self.limit - len(reopen)
        if self._in_code(pos):
            # A chunk of nothing but blank code lines is useless; end after some code.
            found = _NON_WS.search(self.text, pos, pos + room + 1)
            low = found.start() if found else pos + room
        else:
            low = pos
        for points in self.break_points:
            high = pos + room - (len(CLOSE_FENCE) if points.in_code else 0)
            point = points.last_in(low, high)
            if point is not None:
                return point
        cut = self._hard_cut(pos, low, room)
        return cut, cut

    def _hard_cut(self, pos: int, low: int, room: int) -> int:
        text = self.text
        high = min(pos + room, self.content_end - 1)
        # Give up on keeping grapheme clusters whole after a few tries (a base with dozens of
        # combining marks); a \r\n, a surrogate pair or a fence is never cut.
        for cut in range(high, max(low, high - 32), -1):
            if self._may_cut(cut, pos, room) and _is_clean_cut(text, cut):
                return cut
        for cut in range(high, pos, -1):
            if self._may_cut(cut, pos, room) and not _splits_pair(text, cut):
                return cut
        raise AssertionError("unreachable: MIN_ROOM always leaves a place to cut")

    def _may_cut(self, cut: int, pos: int, room: int) -> bool:
        block = self._block_at(cut)
        if block is None:
            return True
        if not block.open_start + len(FENCE) <= cut <= block.close_start:
            return False  # inside a fence
        return cut <= pos + room - len(CLOSE_FENCE)

    def _skip_whitespace(self, pos: int) -> int:
        found = _NON_WS.search(self.text, pos)
        return found.start() if found else len(self.text)

    def _block_at(self, pos: int) -> _Block | None:
        """The code block that ``pos`` (a place between two characters) lies strictly inside."""
        i = bisect_right(self.block_starts, pos - 1) - 1
        if i < 0:
            return None
        block = self.blocks[i]
        return block if pos <= block.close_start or pos < block.close_end else None

    def _in_code(self, pos: int) -> bool:
        block = self._block_at(pos)
        return block is not None and block.open_start + len(FENCE) <= pos <= block.close_start

    def _reopen_at(self, pos: int) -> str:
        block = self._block_at(pos)
        if block is None:
            return ""
        # A cut inside the language tag itself (only when nothing better fits) loses the tag.
        return block.reopen if pos >= block.header_end else f"{FENCE}\n"

    def _find_blocks(self, room: int) -> list[_Block]:
        text = self.text
        blocks: list[_Block] = []
        start = text.find(FENCE)
        while start != -1:
            header_end = start + len(FENCE)
            lang = ""
            tag = _LANG_TAG.match(text, header_end)
            if tag:
                lang, header_end = tag.group(1), tag.end()
            reopen = f"{FENCE}{lang}\n"
            if len(reopen) + len(CLOSE_FENCE) > room // 2:
                reopen = f"{FENCE}\n"  # an absurdly long tag would crowd out the code
            close_start = text.find(FENCE, header_end)
            close_end = close_start + len(FENCE)
            if close_start == -1:
                close_start = close_end = len(text)
            first = _NON_WS.search(text, header_end, close_start)
            last = close_start - 1
            while last >= header_end and text[last].isspace():
                last -= 1
            blocks.append(
                _Block(
                    start,
                    header_end,
                    close_start,
                    close_end,
                    reopen,
                    first.start() if first else -1,
                    last if first else -1,
                )
            )
            start = text.find(FENCE, close_end) if close_end < len(text) else -1
        return blocks

    def _find_break_points(self) -> list[_BreakPoints]:
        """Break points of each kind, best first; each kind includes the better ones."""
        text, content_end = self.text, self.content_end
        paragraph: set[tuple[int, int]] = set()
        line: set[tuple[int, int]] = set()
        sentence: set[tuple[int, int]] = set()
        word: set[tuple[int, int]] = set()
        code_line: set[tuple[int, int]] = set()
        code_word: set[tuple[int, int]] = set()

        prose_start = 0
        for block in [*self.blocks, None]:
            prose_end = block.open_start if block else len(text)
            for run in _PROSE_RUN.finditer(text, prose_start, prose_end):
                start, end = run.span("ws")
                if end >= content_end:
                    continue
                newlines = text.count("\n", start, end)
                if newlines >= 2:
                    kind = paragraph
                elif newlines == 1:
                    kind = line
                elif run.group("stop"):
                    kind = sentence
                else:
                    kind = word
                kind.add((start, end))
            for stop in _CJK_STOP.finditer(text, prose_start, prose_end):
                sentence.add((stop.start(), stop.start()))
            if block is None:
                break
            # Just before and just after a block, so a block can start or end a chunk even when
            # nothing separates it from the text around it.
            before = block.open_start
            while before > prose_start and text[before - 1].isspace():
                before -= 1
            line.add((before, block.open_start))
            after = self._skip_whitespace(block.close_end)
            if after < content_end:
                line.add((block.close_end, after))

            if block.first_code != -1:
                newline = text.find("\n", block.header_end, block.close_start)
                while newline != -1:
                    end = newline - 1 if text[newline - 1] == "\r" else newline
                    if block.first_code < end and newline + 1 <= block.last_code:
                        code_line.add((end, newline + 1))
                    newline = text.find("\n", newline + 1, block.close_start)
                for run in _CODE_SPACES.finditer(text, block.header_end, block.close_start):
                    if block.first_code < run.start() and run.end() <= block.last_code:
                        code_word.add(run.span())
            prose_start = block.close_end

        line |= paragraph
        sentence |= line
        word |= sentence
        code_word |= code_line
        return [
            _BreakPoints(paragraph, in_code=False),
            _BreakPoints(line, in_code=False),
            _BreakPoints(sentence, in_code=False),
            _BreakPoints(word, in_code=False),
            _BreakPoints(code_line, in_code=True),
            _BreakPoints(code_word, in_code=True),
        ]


def _splits_pair(text: str, cut: int) -> bool:
    before, after = text[cut - 1], text[cut]
    return (before == "\r" and after == "\n") or (
        "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff"
    )


def _is_clean_cut(text: str, cut: int) -> bool:
    """Whether ``cut`` keeps together what a reader sees as one character (as far as is cheap
    to tell: combining marks, joiners, variation selectors, skin tones and flags)."""
    if _splits_pair(text, cut):
        return False
    before, after = text[cut - 1], text[cut]
    if before == "\u200d" or after == "\u200d":
        return False
    if unicodedata.category(after) in ("Mn", "Mc", "Me"):
        return False
    if "\ufe00" <= after <= "\ufe0f" or "\U0001f3fb" <= after <= "\U0001f3ff":
        return False
    regional = ("\U0001f1e6", "\U0001f1ff")
    return not (regional[0] <= before <= regional[1] and regional[0] <= after <= regional[1])
