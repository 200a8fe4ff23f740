"""The Redis-backed personality store, against a real redis-server."""

import asyncio
import shutil
from pathlib import Path

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from tests.fixtures.redis_server import RedisServer
from tzurot.personalities import (
    Personality,
    PersonalityConflict,
    PersonalityDirectory,
    PersonalityStore,
    seed_from_directory,
)

SHIPPED = Path(__file__).resolve().parents[2] / "personalities"


@pytest.fixture
def store(redis_client: Redis) -> PersonalityStore:
    return PersonalityStore(redis_client)


def lilith(**changes: object) -> Personality:
    fields: dict[str, object] = {
        "name": "Lilith",
        "display_name": "Lady Lilith",
        "aliases": ["Lil"],
        "system_prompt": "You are Lilith.",
    }
    return Personality.model_validate(fields | changes)


async def test_found_by_name_slug_display_name_and_alias_in_any_case(
    store: PersonalityStore,
) -> None:
    await store.upsert(lilith(name="Lilith Prime"))
    for ref in ["Lilith Prime", "lilith-prime", "LADY LILITH", "lil", "@Lil", "  lilith   PRIME "]:
        found = await store.get(ref)
        assert found is not None, ref
        assert found.name == "Lilith Prime"
    assert await store.get("Lilith") is None
    assert await store.get("") is None


async def test_unicode_names_are_found_whichever_way_they_are_typed(
    store: PersonalityStore,
) -> None:
    await store.upsert(Personality(name="Zoë", system_prompt="x"))
    await store.upsert(Personality(name="李白", system_prompt="x"))
    assert (await store.get("ZOË")) == (await store.get("zoe"))
    assert await store.get("Zoe\u0308") is not None  # decomposed ë
    found = await store.get("@李白")
    assert found is not None
    assert found.slug == "李白"


async def test_list_is_sorted_by_name(store: PersonalityStore) -> None:
    for name in ["bravo", "Index", "Charlie", "alpha"]:
        await store.upsert(Personality(name=name, system_prompt="x"))
    assert [p.name for p in await store.list()] == ["alpha", "bravo", "Charlie", "Index"]


async def test_store_satisfies_the_read_only_interface(store: PersonalityStore) -> None:
    directory: PersonalityDirectory = store
    await store.upsert(lilith())
    assert [p.slug for p in await directory.list()] == ["lilith"]


async def test_upsert_replaces_and_drops_stale_refs(store: PersonalityStore) -> None:
    await store.upsert(lilith())
    await store.upsert(
        lilith(name="Lilith", display_name="Night Queen", aliases=["nq"], temperature=1.1)
    )

    assert await store.get("lil") is None
    assert await store.get("Lady Lilith") is None
    renamed = await store.get("nq")
    assert renamed is not None
    assert renamed.temperature == 1.1
    assert [p.display_name for p in await store.list()] == ["Night Queen"]


async def test_upsert_refuses_a_ref_owned_by_another_personality(store: PersonalityStore) -> None:
    await store.upsert(lilith())
    with pytest.raises(PersonalityConflict) as caught:
        await store.upsert(Personality(name="Other", aliases=("LIL",), system_prompt="x"))
    assert caught.value.ref == "lil"
    assert caught.value.owner_slug == "lilith"
    assert await store.get("Other") is None  # nothing half-written
    found = await store.get("lil")
    assert found is not None
    assert found.name == "Lilith"


async def test_concurrent_claims_on_one_alias_let_exactly_one_win(
    store: PersonalityStore,
) -> None:
    contenders = [
        Personality(name=f"P{i}", aliases=("shared",), system_prompt="x") for i in range(8)
    ]
    outcomes = await asyncio.gather(*(store.upsert(p) for p in contenders), return_exceptions=True)
    assert sum(o is None for o in outcomes) == 1
    assert all(isinstance(o, PersonalityConflict) for o in outcomes if o is not None)
    assert len(await store.list()) == 1


async def test_delete_removes_every_ref(store: PersonalityStore) -> None:
    await store.upsert(lilith())
    assert await store.delete("@LIL") is True
    for ref in ["lilith", "lil", "lady lilith"]:
        assert await store.get(ref) is None
    assert await store.list() == []
    assert await store.delete("lilith") is False
    await store.upsert(Personality(name="Newcomer", aliases=("lil",), system_prompt="x"))


async def test_corrupt_value_is_logged_and_treated_as_missing(
    store: PersonalityStore, redis_client: Redis
) -> None:
    await store.upsert(lilith())
    await store.upsert(Personality(name="Fine", system_prompt="x"))
    await redis_client.set("tzurot:personality:lilith", b'{"name": "Lilith", "system_prompt": ')

    with capture_logs() as logs:
        assert await store.get("lilith") is None
        assert [p.name for p in await store.list()] == ["Fine"]
    assert any(entry["event"] == "corrupt personality in redis" for entry in logs)

    await store.upsert(lilith())  # and it can be repaired
    assert await store.get("lil") is not None


async def test_data_survives_a_redis_restart(redis_server: RedisServer) -> None:
    redis = Redis.from_url(redis_server.url)
    await PersonalityStore(redis).upsert(lilith())
    await redis.aclose()
    redis_server.restart()
    redis = Redis.from_url(redis_server.url)
    try:
        assert await PersonalityStore(redis).get("lil") is not None
    finally:
        await redis.aclose()


async def test_seed_loads_good_files_and_logs_bad_ones(
    store: PersonalityStore, tmp_path: Path
) -> None:
    shutil.copy(SHIPPED / "aria.toml", tmp_path / "aria.toml")
    (tmp_path / "broken.toml").write_text('name = "Broken"\nsystem_prompt = \n')

    with capture_logs() as logs:
        result = await seed_from_directory(store, tmp_path)

    assert [p.name for p in await store.list()] == ["Aria"]
    assert [p.name for p in result.personalities] == ["Aria"]
    skipped = [entry for entry in logs if entry["event"] == "personality file skipped"]
    assert len(skipped) == 1
    assert skipped[0]["file"] == str(tmp_path / "broken.toml")
    assert skipped[0]["line"] == 2
    assert skipped[0]["reason"].startswith("invalid value")
    summary = next(entry for entry in logs if entry["event"] == "personalities seeded")
    assert (summary["loaded"], summary["skipped"]) == (1, 1)


async def test_seed_skips_a_file_that_clashes_with_a_stored_personality(
    store: PersonalityStore, tmp_path: Path
) -> None:
    await store.upsert(Personality(name="Archivist", aliases=("ari",), system_prompt="x"))
    shutil.copy(SHIPPED / "aria.toml", tmp_path / "aria.toml")

    result = await seed_from_directory(store, tmp_path)

    assert result.personalities == []
    [problem] = result.problems
    assert problem.path == tmp_path / "aria.toml"
    assert "'ari'" in problem.message
    assert await store.get("aria") is None


async def test_seed_from_a_missing_directory_is_not_fatal(
    store: PersonalityStore, tmp_path: Path
) -> None:
    with capture_logs() as logs:
        result = await seed_from_directory(store, tmp_path / "nowhere")
    assert result.personalities == []
    assert result.problems == []
    assert any(entry["event"] == "personalities directory not found" for entry in logs)
