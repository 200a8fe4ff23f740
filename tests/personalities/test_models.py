"""The personality model: defaults, lookup refs, and hostile input rejected with a clear reason."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tzurot.personalities import Personality, normalize_ref, slugify, validation_messages


def problems(**fields: object) -> list[str]:
    fields.setdefault("system_prompt", "You are helpful.")
    with pytest.raises(ValidationError) as caught:
        Personality.model_validate(fields)
    return validation_messages(caught.value)


def test_only_name_and_prompt_are_required() -> None:
    p = Personality(name="Bambi Prime", system_prompt="You are Bambi.")
    assert p.display_name == "Bambi Prime"
    assert p.slug == "bambi-prime"
    assert p.model is None  # DEFAULT_MODEL applies
    assert p.aliases == ()
    assert p.public is True


def test_refs_cover_name_slug_display_name_and_aliases_case_insensitively() -> None:
    p = Personality(
        name="Lilith", display_name="Lady Lilith", aliases=("LIL", "The  Night"), system_prompt="x"
    )
    assert p.refs() == {"lilith", "lady lilith", "lil", "the night"}
    assert normalize_ref("  LiLiTh ") in p.refs()


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Zoë", "zoe"),
        ("Ren’s Café", "rens-cafe"),
        ("Straße", "strasse"),
        ("李白", "李白"),
        ("Ирина 2", "ирина-2"),
        ("ﬁre 🔥 dragon", "fire-dragon"),
    ],
)
def test_unicode_names_get_a_usable_slug(name: str, slug: str) -> None:
    assert Personality(name=name, system_prompt="x").slug == slug


def test_fullwidth_and_odd_spacing_in_names_are_normalized() -> None:
    p = Personality(name="Ａｒｉａ\u3000 the  Kind", system_prompt="x")
    assert p.name == "Aria the Kind"


@given(st.text(max_size=40))
def test_slugify_is_idempotent(name: str) -> None:
    assert slugify(slugify(name)) == slugify(name)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "@everyone"}, "name: must not contain '@' or '`'"),
        ({"name": "Ev\x00il"}, "name: must not contain control or invisible characters"),
        ({"name": "evil\u202etxt"}, "name: must not contain control or invisible characters"),
        ({"name": "   "}, "name: must not be empty"),
        ({"name": "x" * 81}, "name: must be at most 80 characters"),
        ({"name": "🔥🔥"}, "name has no letter or digit to derive a slug from; set slug"),
        ({"name": "A", "display_name": "@here"}, "display_name: must not contain '@' or '`'"),
        ({"name": "A", "aliases": ["ok", "@here"]}, "aliases: '@here': must not contain"),
        ({"name": "A", "system_prompt": "x" * 10_000_000}, "system_prompt: string should have at"),
        ({"name": "A", "system_prompt": ""}, "system_prompt: string should have at least 1"),
        ({"name": "A", "system_prompt": "bell\x07"}, "system_prompt: must not contain control"),
        ({"name": "A", "avatar_url": "javascript:alert(1)"}, "avatar_url: must be an http(s) URL"),
        ({"name": "A", "avatar_url": "https://"}, "avatar_url: must be an http(s) URL"),
        ({"name": "A", "avatar_url": "https://a.b/x y"}, "avatar_url: must be an http(s) URL"),
        ({"name": "A", "temperature": -0.5}, "temperature: input should be greater than or equal"),
        ({"name": "A", "temperature": math.nan}, "temperature: input should be"),
        ({"name": "A", "max_tokens": 0}, "max_tokens: input should be greater than or equal"),
        ({"name": "A", "error_message": "x" * 501}, "error_message: string should have at most"),
        ({"name": "A", "owner_id": "me"}, "owner_id: must be a Discord user id"),
        ({"name": "A", "model": "gpt 4"}, "model: must be a litellm model string"),
        ({"name": "A", "card": {"tone": "x" * 8001}}, "card.tone: string should have at most"),
        ({"name": "A", "colour": "red"}, "colour: unknown key"),
    ],
)
def test_hostile_fields_are_rejected_with_a_clear_message(
    fields: dict[str, object], expected: str
) -> None:
    assert any(message.startswith(expected) for message in problems(**fields)), problems(**fields)


def test_owner_id_may_be_written_as_a_number() -> None:
    p = Personality.model_validate({"name": "A", "system_prompt": "x", "owner_id": 1234567890})
    assert p.owner_id == "1234567890"


def test_empty_avatar_and_model_mean_none() -> None:
    p = Personality(name="A", system_prompt="x", avatar_url="", model=" ")
    assert p.avatar_url is None
    assert p.model is None


def test_json_round_trip_keeps_everything() -> None:
    p = Personality(
        name="Zoë", system_prompt="Hi\n", aliases=("zo",), card={"tone": "dry"}, owner_id="42"
    )
    assert Personality.model_validate_json(p.model_dump_json()) == p
