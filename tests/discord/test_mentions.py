"""Tests for finding ``@Name`` mentions of personalities."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tzurot.discord.mentions import mention_candidates, resolve_mentions


@dataclass(frozen=True)
class Persona:
    id: str
    name: str


@dataclass
class Directory:
    """A case-insensitive lookup by name that records what it was asked."""

    personas: list[Persona]
    asked: list[list[str]] = field(default_factory=list)

    async def lookup(self, names: list[str]) -> dict[str, Persona]:
        self.asked.append(names)
        by_name = {persona.name.lower(): persona for persona in self.personas}
        return {name: by_name[name.lower()] for name in names if name.lower() in by_name}


LILITH = Persona("p1", "Lilith")
BAMBI = Persona("p2", "Bambi")
BAMBI_PRIME = Persona("p3", "Bambi Prime")


async def resolve(content: str, *personas: Persona, **options: int) -> list[Persona]:
    directory = Directory(list(personas or (LILITH, BAMBI, BAMBI_PRIME)))
    return await resolve_mentions(content, directory.lookup, key=lambda p: p.id, **options)


# --- Candidates -------------------------------------------------------------------------------


def test_candidates_are_longest_first() -> None:
    assert mention_candidates("@Bambi Prime hi") == [["Bambi Prime hi", "Bambi Prime", "Bambi"]]


def test_candidates_stop_at_max_words() -> None:
    assert mention_candidates("@a b c d e f") == [["a b c d", "a b c", "a b", "a"]]
    assert mention_candidates("@a b c", max_words=1) == [["a"]]


def test_candidates_stop_at_a_line_break_or_another_mention() -> None:
    assert mention_candidates("@Lilith\nhow are you") == [["Lilith"]]
    assert mention_candidates("@Lilith @Bambi hi") == [["Lilith"], ["Bambi hi", "Bambi"]]
    assert mention_candidates("@Lilith <@123> hi") == [["Lilith"]]


def test_candidates_drop_trailing_punctuation_and_possessives() -> None:
    assert mention_candidates("hey @Lilith!") == [["Lilith"]]
    assert mention_candidates("@Lilith's idea") == [["Lilith's idea", "Lilith"]]
    assert mention_candidates("(ask @Lilith's…)") == [["Lilith"]]
    assert mention_candidates("@Bambi Prime, hi") == [["Bambi Prime, hi", "Bambi Prime", "Bambi"]]
    assert mention_candidates("@Lilith?! ok") == [["Lilith?! ok", "Lilith"]]


def test_candidates_normalise_smart_quotes() -> None:
    assert mention_candidates("@Lilith’s idea") == [["Lilith's idea", "Lilith"]]
    assert mention_candidates("@“Lilith” and @‘Bambi’") == [['Lilith" and', "Lilith"], ["Bambi"]]


def test_broadcasts_discord_tokens_emails_and_urls_are_not_mentions() -> None:
    text = (
        "@everyone @here! @Everyone <@123> <@!456> <@&789> <#42> "
        "mail me@example.com https://example.social/@Lilith"
    )
    assert mention_candidates(text) == []


def test_a_bare_at_sign_is_not_a_mention() -> None:
    assert mention_candidates("@ @! @. @'s @\u200b") == []


def test_at_most_max_positions_are_scanned() -> None:
    text = " ".join(f"@n{i}" for i in range(20))
    assert mention_candidates(text) == [[f"n{i}"] for i in range(10)]
    assert mention_candidates(text, max_positions=3) == [["n0"], ["n1"], ["n2"]]
    # Ignored @ signs do not use up the allowance.
    assert mention_candidates("@everyone a@b " * 20 + "@Lilith") == [["Lilith"]]


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError):
        mention_candidates("@a", max_words=0)
    with pytest.raises(ValueError):
        mention_candidates("@a", max_positions=-1)


_ODD_CHARS = "@@ \n\t!…><’“\u200b\u200d\u202e\ud83d"
_ODD = st.sampled_from(
    [*_ODD_CHARS, "'s", "<@1>", "a@", "\r\n", "e\u0301", "שלום", "👍🏽", "🇺🇸", "everyone", "Lilith"]
)


@settings(max_examples=500, deadline=None)
@given(content=st.one_of(st.text(), st.lists(st.one_of(_ODD, st.text(max_size=3))).map("".join)))
def test_candidates_never_raise_and_are_never_empty(content: str) -> None:
    positions = mention_candidates(content)
    assert len(positions) <= 10
    for names in positions:
        assert 1 <= len(names) <= 4
        assert len(set(names)) == len(names)
        for name in names:
            assert name
            assert name == name.strip()
            assert "\n" not in name
            assert name.lower() not in ("everyone", "here")


# --- Resolution -------------------------------------------------------------------------------


async def test_the_longest_name_wins() -> None:
    assert await resolve("@Bambi Prime what do you think?") == [BAMBI_PRIME]
    assert await resolve("@Bambi what do you think?") == [BAMBI]


async def test_case_is_the_lookups_business() -> None:
    assert await resolve("@lILITH hello") == [LILITH]


async def test_possessive_punctuation_and_smart_quotes() -> None:
    assert await resolve("@Lilith's idea is good") == [LILITH]
    assert await resolve("hey @Lilith!") == [LILITH]
    assert await resolve("@Lilith’s idea") == [LILITH]


async def test_several_personalities_answer_in_mention_order() -> None:
    assert await resolve("@Lilith and @Bambi Prime, talk") == [LILITH, BAMBI_PRIME]
    assert await resolve("@Bambi then @Lilith") == [BAMBI, LILITH]


async def test_repeated_mentions_give_one_answer() -> None:
    assert await resolve("@Lilith @lilith @Lilith's") == [LILITH]


async def test_results_are_capped_at_limit() -> None:
    personas = [Persona(f"p{i}", f"P{i}") for i in range(8)]
    content = " ".join(f"@P{i}" for i in range(8))
    assert await resolve(content, *personas) == personas[:5]
    assert await resolve(content, *personas, limit=2) == personas[:2]
    assert await resolve(content, *personas, limit=0) == []


async def test_non_mentions_are_ignored() -> None:
    assert await resolve("@everyone lilith@example.com <@123> hi") == []


async def test_every_candidate_is_looked_up_in_one_call() -> None:
    directory = Directory([LILITH, BAMBI])
    found = await resolve_mentions(
        "@Lilith hi @Lilith hi @Nobody x", directory.lookup, key=lambda p: p.id
    )
    assert found == [LILITH]
    # One call; each distinct candidate asked once, longest first within its position.
    assert directory.asked == [["Lilith hi", "Lilith", "Nobody x", "Nobody"]]


async def test_nothing_is_looked_up_without_a_mention() -> None:
    directory = Directory([LILITH])
    assert await resolve_mentions("no at sign here", directory.lookup, key=lambda p: p.id) == []
    assert directory.asked == []


async def test_odd_unicode_resolves_to_nothing_without_raising() -> None:
    content = "@\u202eLilith @👍🏽 @\u200bLilith\u200b @שלום @\ud83d"
    assert await resolve(content) == [LILITH]
