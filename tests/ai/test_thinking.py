"""Thinking text never reaches users, and replies without it are left alone."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tzurot.ai.thinking import THINKING_TAGS, strip_thinking

_ANY_TAG = re.compile(rf"</?\s*(?:{'|'.join(THINKING_TAGS)})", re.IGNORECASE)


@pytest.mark.parametrize("tag", THINKING_TAGS)
def test_each_tag_is_removed_with_its_content(tag: str) -> None:
    visible, thinking = strip_thinking(f"<{tag}>planning the answer</{tag}>\n\nHello there!")
    assert visible == "Hello there!"
    assert thinking == "planning the answer"


def test_tags_match_in_any_case_and_with_attributes() -> None:
    visible, thinking = strip_thinking('<THINKING type="deep">hmm</Thinking>Fine, thanks.')
    assert (visible, thinking) == ("Fine, thanks.", "hmm")


def test_several_blocks_are_joined_and_the_gaps_tidied() -> None:
    text = "Intro.\n\n<think>one</think>\n\nMiddle <reflection>two</reflection> end."
    visible, thinking = strip_thinking(text)
    assert visible == "Intro.\n\nMiddle end."
    assert thinking == "one\n\ntwo"


def test_tags_inside_inline_code_are_kept() -> None:
    text = "Wrap it in `<think>` and `</think>` tags."
    assert strip_thinking(text) == (text, None)


def test_tags_inside_fenced_code_are_kept() -> None:
    text = "Example:\n```xml\n<think>\nsteps\n</think>\n```\nThat is the format."
    assert strip_thinking(text) == (text, None)


def test_code_inside_thinking_goes_with_it() -> None:
    text = "<think>try `x = 1`\n```py\nprint(x)\n```</think>Use `x = 2`."
    assert strip_thinking(text) == ("Use `x = 2`.", "try `x = 1`\n```py\nprint(x)\n```")


def test_thinking_then_code_block_mentioning_tags() -> None:
    text = "<think>plan</think>Here:\n```\n<think>literal</think>\n```"
    assert strip_thinking(text) == ("Here:\n```\n<think>literal</think>\n```", "plan")


def test_unclosed_opening_tag_never_loses_the_reply() -> None:
    visible, thinking = strip_thinking("<think>\nHere is my whole answer.")
    assert visible == "Here is my whole answer."
    assert thinking is None


def test_unclosed_tag_in_the_middle_is_left_alone() -> None:
    text = "I like the <thinking> part of this game."
    assert strip_thinking(text) == (text, None)


def test_closing_tag_without_opening_ends_prefilled_thinking() -> None:
    visible, thinking = strip_thinking("Let me consider this.\n</think>\n\nThe answer is 4.")
    assert (visible, thinking) == ("The answer is 4.", "Let me consider this.")


def test_only_thinking_leaves_an_empty_reply() -> None:
    assert strip_thinking("<think>nothing to say</think>  \n") == ("", "nothing to say")


@given(st.text() | st.text(alphabet="<>/` \nthinkg", max_size=80))
def test_text_without_tags_survives_unchanged(text: str) -> None:
    if _ANY_TAG.search(text):
        return
    assert strip_thinking(text) == (text, None)


_PLAIN = st.text(alphabet=st.characters(blacklist_characters="<>`"), max_size=200)


@given(_PLAIN, _PLAIN.filter(lambda s: s.strip() != ""))
def test_thinking_block_then_reply(thought: str, reply: str) -> None:
    visible, thinking = strip_thinking(f"<think>{thought}</think>{reply}")
    assert visible == reply.strip()
    assert thinking == (thought.strip() or None)


# -- streamable: what may be shown while the reply is still arriving -------------------------

from tzurot.ai.thinking import (  # noqa: E402  # noqa: E402
    _CODE,
    _OPEN,
    _leading_orphan,
    _tagged_blocks,
    prefilled_thinking,
    streamable,
)

SECRET = "X"  # in these replies, only thinking holds it


def thinking_spans(text: str) -> list[tuple[int, int]]:
    """Where the thinking is in a whole reply, as strip_thinking decides it."""
    code = [m.span() for m in _CODE.finditer(text)]
    spans = []
    for start, _end, inner in _tagged_blocks(text, code):
        opening = _OPEN.match(text, start)
        assert opening is not None
        spans.append((opening.end(), opening.end() + len(inner)))
    spans += [(0, len(inner)) for _, _, inner in _leading_orphan(text, code)]
    return spans


def mark_thinking(text: str) -> str:
    """`text` with every `x` inside a thinking block made a SECRET (nothing else changes)."""
    chars = list(text)
    for start, end in thinking_spans(text):
        for i in range(start, end):
            if chars[i] == "x":
                chars[i] = SECRET
    return "".join(chars)


def assert_never_shown(reply: str) -> None:
    """No prefix of `reply` shows any of its thinking (pre-filled thinking: with the hint)."""
    prefilled = prefilled_thinking(reply)
    for end in range(len(reply) + 1):
        prefix = reply[:end]
        shown = streamable(prefix, prefilled=prefilled)
        assert SECRET not in shown, (prefix, shown)
        assert SECRET not in streamable(prefix, prefilled=True), prefix
        if not prefilled:
            assert shown == streamable(prefix, prefilled=False)


TRICKY = [
    "<think>XXX</think>\n\nHello there, friend.",
    "Intro.\n\n<think>X X</think>\n\nMiddle <reflection>XX</reflection> end.",
    '<THINKING type="deep">XX</Thinking>Fine, thanks.',
    "Wrap it in `<think>` and `</think>` tags. <think>XX</think>Done.",
    "Example:\n```xml\n<think>\nsteps\n</think>\n```\nThat is it. <think>X</think> ok",
    "<think>try `y = 1`\n```py\nprint(X)\n```</think>Use `y = 2`.",
    "<think>a `XX </think> b` <think>XXX</think> tail",
    "``<think>`xx</think> y`` <think>X</think>z",
    "<think>X ``</think> XX`` XX</think> reply",
    "<reasoning>X <think>XX</think> XX</reasoning> after",
    "Let me consider this. XXX\n</think>\n\nThe answer is 4.",
    "XX ``</think> XX`` XX</think> reply",
    "a < b and c <thinker> d <think>XX</think>e",
    "<think>\nXX\n</think>\n<think>XX</think>\n\nTwo blocks, then text <scratchpad>X</scratchpad>.",
]


@pytest.mark.parametrize("text", TRICKY)
def test_no_prefix_of_a_tricky_reply_shows_thinking(text: str) -> None:
    reply = text.replace("X", "x")
    reply = mark_thinking(reply)
    assert SECRET in reply  # the example does hold thinking
    assert_never_shown(reply)


_PIECES = st.sampled_from(
    ["<think>", "</think>", "<thinking>", "</thinking>", '<think a="1">', "</think >",
     "`", "``", "```", "\n", " ", "x", "x x", "<", "</", "<thi", "think", ">", "y"]
)  # fmt: skip


@given(st.lists(_PIECES, max_size=14))
def test_no_prefix_of_any_reply_shows_thinking(pieces: list[str]) -> None:
    assert_never_shown(mark_thinking("".join(pieces)))


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Hello <", "Hello"),
        ("Hello <thi", "Hello"),
        ("Hello <think", "Hello"),
        ('Hello <think type="de', "Hello"),
        ("Hello <think>half a tho", "Hello"),
        ("<think>done</think>Hi </thin", "Hi"),
        ("<think>done</think>Hi <b", "Hi <b"),
        ("a < b", "a < b"),
        ("Use `<thi", "Use `"),
        ("Use `<think>` here", "Use `<think>` here"),
        ("```\n<think>", "```\n<think>"),
        ("<think>plan</think>\n\nHello wor", "Hello wor"),
    ],
)
def test_what_may_be_shown_now(raw: str, shown: str) -> None:
    assert streamable(raw) == shown


def test_an_open_block_hides_the_rest_until_it_closes() -> None:
    assert streamable("Sure. <think>maybe I should") == "Sure."
    assert streamable("Sure. <think>maybe I should</think> Here it is.") == "Sure. Here it is."


def test_pre_filled_thinking_shows_only_after_its_closing_tag() -> None:
    # Without the hint it cannot be told from a reply until the closing tag arrives.
    assert streamable("Let me consider") == "Let me consider"
    assert streamable("Let me consider", prefilled=True) == ""
    assert streamable("Let me consider</think>\n\nThe ans", prefilled=True) == "The ans"
    assert streamable("Let me consider</think>\n\nThe ans") == "The ans"
    assert prefilled_thinking("Let me consider</think>\n\nThe answer.")
    assert not prefilled_thinking("<think>a</think>The answer.")


@pytest.mark.parametrize("text", [t.replace("X", "x") for t in TRICKY])
def test_the_whole_reply_streams_as_it_ends(text: str) -> None:
    # Once all of a reply has arrived, what shows is the final reply.
    assert streamable(text) == strip_thinking(text)[0].strip()
