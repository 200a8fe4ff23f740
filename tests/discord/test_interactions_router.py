"""The interaction router's matching and custom ids (the wire flows are in the e2e tests)."""

from __future__ import annotations

import pytest

from tzurot.discord.interactions_router import InteractionRouter, Routed, custom_id


async def nothing(_: Routed) -> None:
    return None


async def other(_: Routed) -> None:
    return None


def test_longest_prefix_wins_and_args_split() -> None:
    router = InteractionRouter()
    router.register("character", nothing)
    router.register("character:edit", other)
    found = router.match("character:edit:nova:card")
    assert found is not None and found[0] == "character:edit" and found[2] == ["nova", "card"]
    found = router.match("character:browse:2")
    assert found is not None and found[0] == "character" and found[2] == ["browse", "2"]
    assert router.match("characterx:1") is None
    assert router.match("settings:x") is None
    found = router.match("character")
    assert found is not None and found[2] == []


def test_registration_rules() -> None:
    router = InteractionRouter()
    router.register("a", nothing)
    with pytest.raises(ValueError, match="already"):
        router.register("a", other)
    with pytest.raises(ValueError):
        router.register("b:", other)
    with pytest.raises(ValueError):
        router.register("", other)


def test_custom_ids_respect_discords_limit() -> None:
    assert custom_id("character:edit", "nova", "card") == "character:edit:nova:card"
    with pytest.raises(ValueError):
        custom_id("x", "y" * 100)
