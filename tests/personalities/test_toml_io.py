"""The TOML writer: any string survives tomllib, and an export imports back unchanged."""

from __future__ import annotations

import tomllib

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tzurot.personalities import CharacterCard, Personality
from tzurot.personalities.models import normalize_ref
from tzurot.personalities.toml_io import EXPORT_FIELDS, dump_toml, import_toml, toml_value

_HOSTILE = st.sampled_from(
    ['"', '""', '"""', '""""', "'''", "\\", "\\n", "\n", "\r\n", "\r", "\t", "\x00", "\x1b",
     "\x7f", "\u2028", "\ufeff", "#", "[card]", "= x", "\\u0000", 'x"""\n"""'],
)  # fmt: skip
_ANY_TEXT = st.lists(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=6) | _HOSTILE, max_size=10
).map("".join)


@settings(max_examples=500)
@given(_ANY_TEXT)
def test_any_string_round_trips_through_tomllib(value: str) -> None:
    assert tomllib.loads(f"x = {toml_value(value)}\n")["x"] == value


def test_every_personality_field_is_exported() -> None:
    assert set(EXPORT_FIELDS) | {"card"} == set(Personality.model_fields)


_TEXT = st.lists(
    st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=6)
    | st.sampled_from(['"', '"""', "'''", '""""', "\\", "\n", "\r\n", "\r", "\t"]),
    max_size=10,
).map("".join)
_LABEL = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp"), exclude_characters="@`<"),
    min_size=1,
    max_size=16,
)


@st.composite
def personalities(draw: st.DrawFn) -> Personality:
    try:
        return Personality(
            name=draw(_LABEL),
            system_prompt=draw(_TEXT.filter(bool)),
            aliases=tuple(draw(st.lists(_LABEL, max_size=2))),
            avatar_url=draw(st.none() | st.just("https://example.org/a.png?x=\"'")),
            model=draw(st.none() | st.just("openrouter/x/y")),
            preset=draw(st.none() | _LABEL),
            temperature=draw(st.floats(0, 2)),
            top_p=draw(st.none() | st.floats(0, 1)),
            frequency_penalty=draw(st.none() | st.floats(-2, 2)),
            max_tokens=draw(st.integers(1, 200_000)),
            public=draw(st.booleans()),
            error_message=draw(st.none() | _TEXT.map(lambda s: s[:500])),
            owner_id=draw(st.none() | st.integers(0, 10**19).map(str)),
            card=CharacterCard(
                **{f: draw(_TEXT) for f in ("tone", "likes", "conversational_examples")}
            ),
        )
    except ValidationError:
        assume(False)
        raise


@settings(max_examples=300)
@given(personalities())
def test_export_imports_back_unchanged(personality: Personality) -> None:
    assert import_toml(dump_toml(personality).encode()) == personality
    assert normalize_ref(personality.name) in personality.refs()
