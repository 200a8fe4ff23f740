"""A personality as a TOML file (the seed-file format of DESIGN.md), both ways.

`dump_toml` writes it (a small serializer: tomllib only reads, and no TOML writer is in the
lock files); `import_toml` reads an uploaded file with the loader's rules (size cap, UTF-8,
syntax with its line, unknown keys with a suggestion, types and ranges), so an upload is either
one whole valid personality or a specific error. `parse_toml(dump_toml(p)) == p` for every
valid personality, whatever its strings hold (quotes, `'''`, `\"\"\"`, backslashes, CR, control
characters): tests/personalities/test_toml_io.py checks it with generated hostile strings.
"""

from __future__ import annotations

import math
import unicodedata

from tzurot.personalities.models import Personality

# Fields in the order of DESIGN.md, then the newer ones; the card is its own table.
EXPORT_FIELDS = (
    "name",
    "display_name",
    "slug",
    "aliases",
    "avatar_url",
    "model",
    "preset",
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "max_tokens",
    "context_window",
    "owner_id",
    "public",
    "error_message",
    "system_prompt",
)


def dump_toml(personality: Personality) -> str:
    """The TOML file `parse_toml` reads back to an equal personality. `None` fields are left out."""
    lines = [
        f"{key} = {toml_value(value)}"
        for key in EXPORT_FIELDS
        if (value := getattr(personality, key)) is not None
    ]
    card = personality.card.model_dump(exclude_defaults=True)
    if card:
        lines += ["", "[card]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in card.items()]
    return "\n".join(lines) + "\n"


def export_filename(personality: Personality) -> str:
    return f"{personality.slug}.toml"


def import_toml(data: bytes) -> Personality:
    """One personality from an uploaded file; raises `PersonalityFileError` (with its line)."""
    from tzurot.personalities.loader import parse_toml  # the loader imports this module

    return parse_toml(data)


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("cannot write nan or inf")  # never valid for a personality
        return repr(value)
    if isinstance(value, str):
        return _multiline_string(value) if "\n" in value else _basic_string(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    category = unicodedata.category(ch)
    if category == "Cc":
        return f"\\u{ord(ch):04x}"
    if category == "Cs":
        raise ValueError("a lone surrogate cannot be written as UTF-8")
    return ch


def _basic_string(value: str) -> str:
    return '"' + "".join(_escape(ch) for ch in value) + '"'


def _multiline_string(value: str) -> str:
    """A `\"\"\"` string that keeps newlines readable: every third quote in a row is escaped
    (one or two may stand anywhere, even just before the closing delimiter); backslashes, CR
    and other control characters are escaped; a newline right after the opening delimiter is
    dropped by TOML, so the value starts on the next line."""
    out: list[str] = []
    quotes = 0
    for ch in value:
        if ch == '"':
            quotes += 1
            if quotes == 3:
                out.append('\\"')
                quotes = 0
            else:
                out.append('"')
            continue
        quotes = 0
        out.append(ch if ch in "\n\t" else _escape(ch))
    return '"""\n' + "".join(out) + '"""'
