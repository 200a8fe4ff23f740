"""What a character's names and texts may contain: the rules Discord and our lookups impose.

Names, display names and aliases (a character posts under its display name as a webhook
username, and is summoned by any of them with `@Name`):
- 1 to 80 characters after whitespace is collapsed (80 is Discord's webhook username limit);
- no control or invisible characters (format characters such as zero-width joiners, which
  would make two names look alike), no lone surrogates;
- no `@` (so no `@everyone` / `@here`, and no `@Name` inside a name) and no backtick;
- not `everyone` or `here`, and none of the words Discord refuses in webhook usernames:
  `discord` and `clyde`, case-insensitive, also inside words (`MyDiscordPal`), as Discord does;
- no Discord markup tokens: `<@123>`, `<@!1>`, `<@&1>` (users, roles), `<#1>` (channels),
  `<:emoji:1>`, `</command:1>`, `<t:1>`.
Uniqueness (case-insensitive across names, slugs, display names and aliases) is the store's
index's job: see `PersonalityStore`.

Free texts (prompt, card fields, error message): no control characters but newline, tab and
carriage return; no lone surrogates (they cannot be written as UTF-8).
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_CHARS = 80
RESERVED_WORDS = ("discord", "clyde")
_BROADCASTS = frozenset({"everyone", "here"})
_DISCORD_MARKUP = re.compile(r"<(?:@[!&]?\d+|#\d+|a?:[^:>\s]*:\d+|/[^:>]+:\d+|t:-?\d+(?::\w)?)>")
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def clean_label(value: str) -> str:
    """A name, display name or alias, normalized (NFKC, single spaces); raises ValueError."""
    if not isinstance(value, str):
        raise ValueError("must be text")
    value = " ".join(unicodedata.normalize("NFKC", value).split())
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_NAME_CHARS:
        raise ValueError(f"must be at most {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in value):
        raise ValueError("must not contain control or invisible characters")
    if _DISCORD_MARKUP.search(value):
        raise ValueError("must not contain Discord mentions or markup such as <@123> or <#123>")
    if "@" in value or "`" in value:
        raise ValueError("must not contain '@' or '`'")
    folded = value.casefold()
    if folded in _BROADCASTS:
        raise ValueError(f"{value!r} is reserved by Discord")
    for word in RESERVED_WORDS:
        if word in folded:
            raise ValueError(f"must not contain the word {word!r} (Discord refuses it)")
    return value


def check_text(value: str) -> str:
    """A free text (prompt, card field, error message); raises ValueError."""
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in "\n\t\r":
            raise ValueError("must not contain control characters (newlines and tabs are fine)")
        if category == "Cs":
            raise ValueError("must not contain lone surrogates (not valid Unicode text)")
    return value
