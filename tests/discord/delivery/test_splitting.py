"""Tests for splitting replies into Discord messages.

`check_split` is the contract: every chunk fits, none is blank, fences balance in each, and
each chunk is exactly (fence reopened) + a slice of the text + (fence closed) + (footer), where
the fences added are checked against an independent scan of the text and the text between two
slices is whitespace that sat at the split point.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tzurot.discord.delivery.splitting import (
    CLOSE_FENCE,
    MIN_ROOM,
    Chunk,
    plan_chunks,
    split_message,
)

FENCE = "```"
_TAG = re.compile(r"([A-Za-z0-9_+\-.#]+)\r?\n")


@dataclass
class FenceScan:
    """A plain re-reading of Discord's fence rule: ``` pair up from the left."""

    text: str

    def __post_init__(self) -> None:
        self.starts: list[int] = []
        i = self.text.find(FENCE)
        while i != -1:
            self.starts.append(i)
            i = self.text.find(FENCE, i + 3)

    def inside_fence(self, pos: int) -> bool:
        return any(start < pos < start + 3 for start in self.starts)

    def in_code(self, pos: int) -> bool:
        return sum(start + 3 <= pos for start in self.starts) % 2 == 1

    def tag_at(self, pos: int) -> str:
        """The language tag of the block that ``pos`` is in, if ``pos`` is past the tag."""
        opener = [start for start in self.starts if start + 3 <= pos][-1]
        tag = _TAG.match(self.text, opener + 3)
        return tag.group(1) if tag and tag.end() <= pos else ""


def _no_whitespace(text: str) -> str:
    return "".join(text.split())


def _splits_pair(text: str, pos: int) -> bool:
    if not 0 < pos < len(text):
        return False
    before, after = text[pos - 1], text[pos]
    return (before, after) == ("\r", "\n") or (
        "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff"
    )


def check_split(text: str, limit: int, footer: str | None = None) -> list[str]:
    plan = plan_chunks(text, limit, footer)
    chunks = split_message(text, limit, footer)
    assert chunks == [chunk.render(text) for chunk in plan]

    if not text.strip():
        assert chunks == []
        return chunks
    assert chunks

    for rendered in chunks:
        assert len(rendered) <= limit
        assert rendered.strip()
        assert rendered.count(FENCE) % 2 == 0

    footer_part = f"\n{footer}" if footer and footer.strip() else ""
    assert [chunk.footer for chunk in plan] == [""] * (len(plan) - 1) + [footer_part]

    scan = FenceScan(text)
    room = limit - len(footer_part)
    previous_end = 0
    for chunk in plan:
        assert previous_end <= chunk.start < chunk.end <= len(text)
        _check_gap(text, scan, previous_end, chunk.start)
        for pos in (chunk.start, chunk.end):
            assert not scan.inside_fence(pos)
            assert not _splits_pair(text, pos)
        _check_repairs(chunk, scan, room)
        previous_end = chunk.end
    assert not text[previous_end:].strip()

    bodies = [
        rendered.removeprefix(chunk.reopen).removesuffix(chunk.footer).removesuffix(chunk.close)
        for rendered, chunk in zip(chunks, plan, strict=True)
    ]
    assert [len(body) for body in bodies] == [chunk.end - chunk.start for chunk in plan]
    assert _no_whitespace("".join(bodies)) == _no_whitespace(text)
    return chunks


def _check_gap(text: str, scan: FenceScan, start: int, end: int) -> None:
    """What was dropped between two chunks is whitespace; inside code, only the one line break
    or run of spaces at the cut (indentation is kept)."""
    gap = text[start:end]
    assert not gap.strip()
    if start > 0 and scan.in_code(start):
        assert gap in ("", "\n", "\r\n") or set(gap) <= {" ", "\t"}


def _check_repairs(chunk: Chunk, scan: FenceScan, room: int) -> None:
    if scan.in_code(chunk.start):
        tag = scan.tag_at(chunk.start)
        assert chunk.reopen == f"{FENCE}{tag}\n" or (
            chunk.reopen == f"{FENCE}\n" and len(tag) + 8 > room // 2
        )
    else:
        assert chunk.reopen == ""
    assert chunk.close == (CLOSE_FENCE if scan.in_code(chunk.end) else "")


def _rejoin_plain(chunks: list[str], text: str) -> None:
    """For text without fences: the chunks, with the whitespace dropped between them put back,
    are the text itself."""
    pos = 0
    for chunk in chunks:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        assert text.startswith(chunk, pos)
        pos += len(chunk)
    assert not text[pos:].strip()


# --- Hypothesis -------------------------------------------------------------------------------

_PIECES = [
    "word",
    "a",
    "Hello",
    "x" * 23,
    "y" * 70,
    ". ",
    "! ",
    "? ",
    '." ',
    "… ",
    " ",
    "  ",
    "\t",
    "\n",
    "\n\n",
    "\n\n\n",
    "\r\n",
    "\r\n\r\n",
    "    indented",
    FENCE,
    "```python\n",
    "```js\r\n",
    "```c++\n",
    "\n```\n",
    "``",
    "`",
    "e\u0301",
    "\u0301",
    "👍🏽",
    "🇺🇸",
    "👩\u200d💻",
    "\ud83d\ude00",
    "漢字。",
    "\xa0",
    "שלום",
    "\u200b",
]

_piece = st.one_of(st.sampled_from(_PIECES), st.text(max_size=6))
# Hypothesis keeps plain lists short; drawing the length first gives long texts as often.
texts = (
    st.integers(1, 150)
    .flatmap(lambda size: st.lists(_piece, min_size=size, max_size=size))
    .map("".join)
)
plain_texts = texts.map(lambda text: text.replace("`", "'"))
footers = st.one_of(
    st.none(),
    st.sampled_from(["", "-# sent by a bot", "\n", "x", "— footer —"]),
    st.text(max_size=12).filter(lambda footer: FENCE not in footer),
)


def _limit_for(text: str, footer: str | None, low: int, high: int) -> st.SearchStrategy[int]:
    """A limit in ``[low, high]`` (plus the footer's length) that mostly makes ``text`` split."""
    footer_len = len(footer) + 1 if footer and footer.strip() else 0
    high = max(low, min(high, len(text)))
    return st.integers(low, high).map(lambda limit: limit + footer_len)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, footer=footers, data=st.data())
def test_split_properties(text: str, footer: str | None, data: st.DataObject) -> None:
    limit = data.draw(_limit_for(text, footer, 50, 250), label="limit")
    check_split(text, limit, footer)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, footer=footers, data=st.data())
def test_split_properties_at_the_smallest_limits(
    text: str, footer: str | None, data: st.DataObject
) -> None:
    limit = data.draw(_limit_for(text, footer, MIN_ROOM, MIN_ROOM + 15), label="limit")
    check_split(text, limit, footer)


@settings(max_examples=400, deadline=None)
@given(text=st.text(min_size=1, max_size=400), data=st.data())
def test_split_properties_on_arbitrary_unicode(text: str, data: st.DataObject) -> None:
    check_split(text, data.draw(_limit_for(text, None, MIN_ROOM, 120), label="limit"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=plain_texts, data=st.data())
def test_plain_text_rejoins_exactly(text: str, data: st.DataObject) -> None:
    limit = data.draw(_limit_for(text, None, 50, 250), label="limit")
    _rejoin_plain(check_split(text, limit), text)


# --- Examples ---------------------------------------------------------------------------------


def _paragraph(n: int, words: int) -> str:
    sentences = [f"Sentence {n}.{i} says something about the matter at hand." for i in range(words)]
    return " ".join(sentences)


def test_a_short_reply_is_one_chunk() -> None:
    assert split_message("Hello there!") == ["Hello there!"]
    assert split_message("x" * 2000) == ["x" * 2000]


def test_a_5000_character_reply_splits_at_paragraphs() -> None:
    paragraphs = [_paragraph(n, 4) for n in range(24)]
    text = "\n\n".join(paragraphs)
    assert 4900 < len(text) < 5300
    chunks = check_split(text, 2000)
    assert len(chunks) == 3
    for chunk in chunks:
        assert len(chunk) <= 2000
        assert chunk.startswith("Sentence ")
        assert chunk.endswith("at hand.")
    for paragraph in paragraphs:
        assert sum(paragraph in chunk for chunk in chunks) == 1
    _rejoin_plain(chunks, text)


def test_a_long_paragraph_splits_at_sentences_then_words() -> None:
    text = _paragraph(1, 60)
    chunks = check_split(text, 500)
    assert all(chunk.endswith("at hand.") for chunk in chunks)

    words = " ".join(f"word{i}" for i in range(400))
    chunks = check_split(words, 300)
    assert all(re.fullmatch(r"word\d+( word\d+)*", chunk) for chunk in chunks)
    assert all(len(chunk) > 290 for chunk in chunks[:-1])


def test_a_single_3000_character_word_is_cut_hard() -> None:
    assert check_split("w" * 3000, 2000) == ["w" * 2000, "w" * 1000]


def test_text_of_only_newlines_gives_nothing() -> None:
    assert split_message("\n" * 5000) == []
    assert split_message("\r\n \n\t\n", footer="-# footer") == []
    assert split_message("") == []


def test_surrounding_whitespace_is_trimmed() -> None:
    assert split_message("\n\n  Hello.  \n") == ["Hello."]


def test_a_long_code_block_is_reopened_with_its_language() -> None:
    lines = [f"    result_{i} = compute(value_{i}, factor={i})  # step {i}" for i in range(120)]
    text = "Here is the script:\n\n```python\n" + "\n".join(lines) + "\n```\n\nHope that helps."
    chunks = check_split(text, 2000)
    assert len(chunks) >= 4
    # The block cannot fit whole anywhere, but it still starts a message of its own.
    assert chunks[0] == "Here is the script:"
    for chunk in chunks[1:-1]:
        assert chunk.endswith("\n```")
    for chunk in chunks[1:]:
        assert chunk.startswith("```python\n    result_")
    assert chunks[-1].endswith("```\n\nHope that helps.")
    # Cut only between lines: each line is whole, indentation included, in one chunk.
    for line in lines:
        assert sum(f"\n{line}\n" in chunk for chunk in chunks) == 1


def test_a_code_block_that_fits_is_kept_whole() -> None:
    code = "```js\n" + "\n".join(f"console.log({i});" for i in range(60)) + "\n```"
    assert len(code) < 2000
    text = _paragraph(1, 25) + "\n" + code + "\n" + _paragraph(2, 25)
    chunks = check_split(text, 2000)
    assert sum(code in chunk for chunk in chunks) == 1


def test_a_code_block_right_against_text_can_still_start_a_chunk() -> None:
    code = "```\n" + "x = 1\n" * 10 + "```"
    text = "y" * 60 + code + "z" * 10
    chunks = check_split(text, 80)
    assert code in chunks[1]


def test_an_unclosed_code_block_is_closed() -> None:
    assert split_message("Look:\n```py\nprint(1)") == ["Look:\n```py\nprint(1)\n```"]
    chunks = check_split("```py\n" + "print('hi')\n" * 20, 60)
    assert all(chunk.startswith("```py\n") and chunk.endswith("\n```") for chunk in chunks)


def test_inline_fences_count_as_blocks() -> None:
    text = "run ```make all``` then " + "wait " * 30
    chunks = check_split(text, 60)
    assert "```make all```" in chunks[0]


def test_a_huge_language_tag_is_dropped_when_reopening() -> None:
    text = "```" + "t" * 30 + "\n" + "code line\n" * 20 + "```"
    plan = plan_chunks(text, 50)
    check_split(text, 50)
    assert all(chunk.reopen in ("", "```\n") for chunk in plan)
    assert len(plan) > 2


def test_footer_goes_on_the_last_chunk_only() -> None:
    text = "\n\n".join(_paragraph(n, 4) for n in range(24))
    chunks = check_split(text, 2000, footer="-# model: test")
    assert chunks[-1].endswith("at hand.\n-# model: test")
    assert not any("-# model" in chunk for chunk in chunks[:-1])
    assert split_message("Hi", footer="-# f") == ["Hi\n-# f"]


def test_footer_space_is_reserved_when_the_rest_almost_fits() -> None:
    text = "a" * 1995
    chunks = check_split(text, 2000, footer="-# twenty characters")
    assert len(chunks) == 2
    assert chunks[-1].endswith("\n-# twenty characters")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="fence"):
        split_message("hi", footer="```")
    with pytest.raises(ValueError, match="limit"):
        split_message("hi", limit=MIN_ROOM - 1)
    with pytest.raises(ValueError, match="limit"):
        split_message("hi", limit=40, footer="f" * 30)


def test_crlf_and_surrogate_pairs_are_never_split() -> None:
    text = "```\n" + "ab\r\n" * 100 + "```"
    check_split(text, 50)
    pairs = "\ud83d\ude00" * 200
    for limit in range(MIN_ROOM, 60):
        for chunk in check_split(pairs, limit):
            assert not chunk.startswith("\ude00")


def test_combining_marks_stay_with_their_letter() -> None:
    text = "e\u0301" * 300 + " 👩\u200d💻" * 40 + " 👍🏽🇺🇸" * 40
    for limit in (50, 51, 73):
        for chunk in check_split(text, limit):
            assert chunk[0] not in "\u0301\u200d🏽"
            assert chunk[-1] != "\u200d"


def test_a_letter_with_endless_combining_marks_is_still_cut() -> None:
    check_split("e" + "\u0301" * 500, 50)


def test_cjk_text_splits_after_full_stops() -> None:
    text = "漢字の文章です。" * 100
    chunks = check_split(text, 100)
    assert all(chunk.endswith("。") for chunk in chunks)


# --- Large inputs -----------------------------------------------------------------------------


def _big_text(seed: int, size: int) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        part = rng.choice(_PIECES + ["lorem ipsum dolor sit amet "] * 8)
        parts.append(part)
        total += len(part)
    return "".join(parts)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "text",
    [
        pytest.param(_big_text(1, 100_000), id="mixed"),
        pytest.param(_paragraph(0, 2000), id="one-paragraph"),
        pytest.param("x" * 100_000, id="one-word"),
        pytest.param("```py\n" + "print(1)\n" * 12_000 + "```", id="one-code-block"),
        pytest.param("```\nx" + " \n" * 50_000 + "x\n```", id="blank-code"),
        pytest.param("```" * 33_000, id="fences"),
        pytest.param("e" + "\u0301" * 100_000, id="combining"),
        pytest.param("\n" * 100_000, id="newlines"),
    ],
)
def test_huge_inputs_split_in_linear_time(text: str) -> None:
    for limit in (2000, 50):
        check_split_fast(text, limit)


def check_split_fast(text: str, limit: int) -> None:
    """The cheap part of `check_split`, for inputs too big for its per-chunk fence scans."""
    plan = plan_chunks(text, limit)
    chunks = [chunk.render(text) for chunk in plan]
    assert all(len(chunk) <= limit and chunk.strip() for chunk in chunks)
    assert all(chunk.count(FENCE) % 2 == 0 for chunk in chunks)
    bodies = "".join(text[chunk.start : chunk.end] for chunk in plan)
    assert _no_whitespace(bodies) == _no_whitespace(text)
