"""``@Name`` mentions of personalities in a message, parsed the way the original bot does.

Each ``@`` may be followed by a name of up to a few words, and which words belong to the name is
only known by looking them up: ``@Bambi Prime hi`` tries "Bambi Prime hi", then "Bambi Prime",
then "Bambi". Discord's own mention tokens (``<@123>``), e-mail addresses and ``@everyone`` /
``@here`` are not mentions of a personality.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

T = TypeVar("T")

_SMART_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"'})
# Discord's user, nickname and role mention tokens.
_DISCORD_TOKEN = re.compile(r"<@[!&]?\d+>")
# The words after an "@": no line break, and no other mention or token, within a name.
_WORD = re.compile(r"[^\s@<>]+")
_HORIZONTAL_SPACE = re.compile(r"[^\S\n\r\u2028\u2029]+")
# Invisible characters that can sit at either end of a pasted or deliberately broken name.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
# Words are joined by single spaces, so a space can be left at either end once punctuation goes.
_TRAILING = ".,!?;:…)]}\"' " + _INVISIBLE
_LEADING = "\"'([{ " + _INVISIBLE
_BROADCASTS = frozenset({"everyone", "here"})


def mention_candidates(
    content: str, *, max_words: int = 4, max_positions: int = 10
) -> list[list[str]]:
    """The names each ``@`` in ``content`` may stand for, longest first, one list per ``@``.

    Only ``@`` signs with at least one candidate count towards ``max_positions``.
    """
    if max_words < 1 or max_positions < 0:
        raise ValueError("max_words must be at least 1 and max_positions not negative")
    content = content.translate(_SMART_QUOTES)
    positions: list[list[str]] = []
    at = content.find("@")
    while at != -1 and len(positions) < max_positions:
        if not _is_foreign(content, at):
            words = _words_after(content, at + 1, max_words)
            if words and _clean_name(words[0]).lower() not in _BROADCASTS:
                names: list[str] = []
                for count in range(len(words), 0, -1):
                    name = _clean_name(" ".join(words[:count]))
                    if name and name not in names:
                        names.append(name)
                if names:
                    positions.append(names)
        at = content.find("@", at + 1)
    return positions


async def resolve_mentions(
    content: str,
    lookup_many: Callable[[list[str]], Awaitable[Mapping[str, T]]],
    *,
    key: Callable[[T], str],
    limit: int = 5,
    max_words: int = 4,
    max_positions: int = 10,
) -> list[T]:
    """The things ``lookup_many`` finds for the mentions in ``content``, in mention order.

    Every candidate of every ``@`` is looked up in ONE call (``lookup_many`` gets the distinct
    candidates and returns those it found); for each ``@`` the longest candidate found wins.
    Results are de-duplicated by ``key`` and capped at ``limit``.
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    positions = mention_candidates(content, max_words=max_words, max_positions=max_positions)
    if not positions or limit == 0:
        return []
    known = await lookup_many(list(dict.fromkeys(name for names in positions for name in names)))
    found: list[T] = []
    seen: set[str] = set()
    for names in positions:
        match = next((known[name] for name in names if name in known), None)
        if match is None:
            continue
        identity = key(match)
        if identity not in seen:
            seen.add(identity)
            found.append(match)
            if len(found) >= limit:
                break
    return found


def _is_foreign(content: str, at: int) -> bool:
    """Whether the ``@`` at ``at`` belongs to something else: a Discord mention token, an
    e-mail address, or a URL path such as ``https://example.social/@someone``."""
    if at == 0:
        return False
    before = content[at - 1]
    if before == "<":
        return _DISCORD_TOKEN.match(content, at - 1) is not None
    return before.isalnum() or before in "_/"


def _words_after(content: str, start: int, max_words: int) -> list[str]:
    words: list[str] = []
    pos = start
    while len(words) < max_words:
        word = _WORD.match(content, pos)
        if word is None:
            break
        words.append(word.group())
        space = _HORIZONTAL_SPACE.match(content, word.end())
        if space is None:
            break
        pos = space.end()
    return words


def _clean_name(name: str) -> str:
    """Drop trailing punctuation, a possessive ``'s`` and opening quotes:
    ``"Lilith's!`` -> ``Lilith``."""
    name = name.rstrip(_TRAILING)
    if name[-2:].lower() == "'s":
        name = name[:-2].rstrip(_TRAILING)
    return name.lstrip(_LEADING)
