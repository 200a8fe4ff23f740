"""Presets in Redis: names, ranges, visibility and who may change them."""

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from tests.settings.conftest import BOT_OWNER
from tzurot.infra.keys import family_of
from tzurot.settings import Preset, PresetError, PresetStore
from tzurot.settings.presets import MAX_PRESETS_PER_OWNER, PresetForbidden, PresetNotFound

ANA, BEN = "101", "202"


def preset(name: str = "Creative", owner: str | None = ANA, **values: object) -> Preset:
    return Preset.model_validate({"name": name, "owner_id": owner, **values})


async def test_create_get_by_name_or_slug_in_any_case(presets: PresetStore) -> None:
    await presets.create(preset("Creative Writing", temperature=1.2, model="openai/gpt-4o"))

    for ref in ("creative writing", "CREATIVE WRITING", "creative-writing", " Creative Writing "):
        found = await presets.get(ref)
        assert found is not None and found.name == "Creative Writing"
    assert found is not None
    assert found.values() == {"model": "openai/gpt-4o", "temperature": 1.2}
    assert await presets.get("nothing") is None


async def test_names_are_unique_case_insensitively(presets: PresetStore) -> None:
    await presets.create(preset("Calm"))
    with pytest.raises(PresetError, match="already"):
        await presets.create(preset("CALM", owner=BEN))


@pytest.mark.parametrize(
    "values",
    [
        {"temperature": 2.5}, {"temperature": -0.1}, {"top_p": 1.1},
        {"frequency_penalty": -2.1}, {"presence_penalty": 3}, {"max_tokens": 0},
        {"max_tokens": 200_001}, {"context_window": 10}, {"model": "not a model"},
        {"temperature": float("nan")}, {"name": "@everyone"}, {"name": "x" * 81},
        {"name": "bad\x00name"}, {"name": "!!!"}, {"name": "  "}, {"owner_id": "<@1>"},
    ],
)  # fmt: skip
def test_values_out_of_range_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        preset(**values)  # type: ignore[arg-type]


async def test_only_the_owner_or_the_bot_owner_may_change_or_delete(
    presets: PresetStore,
) -> None:
    await presets.create(preset("Mine", temperature=0.5))

    with pytest.raises(PresetForbidden, match="only its owner"):
        await presets.update("mine", BEN, {"temperature": 1.0})
    with pytest.raises(PresetForbidden):
        await presets.delete("mine", BEN)

    changed = await presets.update("mine", ANA, {"max_tokens": 300})
    assert changed.temperature == 0.5 and changed.max_tokens == 300  # the rest stays
    by_owner = await presets.update("mine", BOT_OWNER, {"temperature": 1.5})
    assert by_owner.temperature == 1.5 and by_owner.owner_id == ANA
    with pytest.raises(PresetError):
        await presets.update("mine", ANA, {"temperature": 9})
    assert (await presets.get("mine")) == by_owner  # nothing half-saved

    await presets.delete("mine", BOT_OWNER)
    assert await presets.get("mine") is None
    with pytest.raises(PresetNotFound):
        await presets.delete("mine", ANA)


async def test_private_presets_are_visible_to_their_owner_alone(presets: PresetStore) -> None:
    await presets.create(preset("Secret", public=False))
    await presets.create(preset("Shared", owner=BEN))

    assert [p.name for p in await presets.list_visible(ANA)] == ["Secret", "Shared"]
    assert [p.name for p in await presets.list_visible(BEN)] == ["Shared"]
    assert await presets.get_visible("secret", BEN) is None
    with pytest.raises(PresetNotFound):
        await presets.update("secret", BEN, {"temperature": 1})


async def test_an_owner_has_a_limited_number_of_presets(presets: PresetStore) -> None:
    for i in range(MAX_PRESETS_PER_OWNER):
        await presets.create(preset(f"p{i}"))
    with pytest.raises(PresetError, match="delete one first"):
        await presets.create(preset("one too many"))
    await presets.create(preset("someone else's", owner=BEN))


async def test_a_corrupt_preset_is_skipped_and_every_key_is_registered(
    presets: PresetStore, redis_client: Redis
) -> None:
    await presets.create(preset("Fine"))
    await redis_client.hset("tzurot:presets", "broken", "{not json")
    assert [p.name for p in await presets.list()] == ["Fine"]
    assert await presets.get("broken") is None
    for key in await redis_client.keys("*"):
        assert family_of(key.decode() if isinstance(key, bytes) else key) is not None, key
