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
