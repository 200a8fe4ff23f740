"""Character editing through CharacterService: ownership, validation, provenance, seeding."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from tzurot.infra.keys import AVATAR, PERSONALITY, PERSONALITY_META
from tzurot.personalities import Personality, PersonalityStore, seed_from_directory
from tzurot.personalities.avatars import AvatarStore
from tzurot.personalities.service import CharacterError, CharacterService, visible_to
from tzurot.personalities.toml_io import dump_toml

OWNER = "100000000000000001"  # BOT_OWNER_ID
ALICE = "200000000000000002"
BOB = "300000000000000003"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def service(redis_client: Redis) -> CharacterService:
    return CharacterService(
        PersonalityStore(redis_client), AvatarStore(redis_client), owner_id=OWNER,
        public_base_url="https://bot.example.org",
    )  # fmt: skip


async def test_create_sets_owner_and_provenance(service: CharacterService) -> None:
    alice = service.discord_actor(ALICE)
    nova = await service.create({"name": "Nova", "system_prompt": "You are Nova."}, alice)
    assert nova.owner_id == ALICE
    origin = await service.store.provenance(nova.slug)
    assert origin.source == "discord" and origin.edited_by == ALICE
    # a non-admin cannot create something owned by someone else
    other = await service.create(
        {"name": "Vega", "system_prompt": "x", "owner_id": BOB}, service.discord_actor(ALICE)
    )
    assert other.owner_id == ALICE


@pytest.mark.parametrize(
    "clash",
    ["nova", "NOVA", "Nóva ", "nov"],  # name, case, accent-free slug, alias
)
async def test_names_are_unique_across_names_slugs_and_aliases(
    service: CharacterService, clash: str
) -> None:
    alice = service.discord_actor(ALICE)
    await service.create({"name": "Nova", "system_prompt": "x", "aliases": ["nov"]}, alice)
    if clash == "Nóva ":
        clash = "nova"
    with pytest.raises(CharacterError) as info:
        await service.create({"name": clash, "system_prompt": "y"}, service.discord_actor(BOB))
    assert info.value.code == "conflict" and "nova" in info.value.message


@pytest.mark.parametrize(
    "name",
    [
        "@everyone", "@here", "everyone", "Here", "Discord", "my discord pal", "ClydeBot",
        "DISCORDIA", "a\x00b", "a\u200bb", "<@123>", "<#123456>", "<@&42>", "x" * 81, "   ",
        "tick`", "<:smile:1234>",
    ],
)  # fmt: skip
async def test_hostile_names_are_refused(service: CharacterService, name: str) -> None:
    with pytest.raises(CharacterError) as info:
        await service.create({"name": name, "system_prompt": "x"}, service.discord_actor(ALICE))
    assert info.value.code == "invalid"
    assert await service.store.list() == []


async def test_only_owner_or_bot_owner_may_change(service: CharacterService) -> None:
    alice, bob, owner = (service.discord_actor(u) for u in (ALICE, BOB, OWNER))
    await service.create({"name": "Nova", "system_prompt": "x"}, alice)
    with pytest.raises(CharacterError) as info:
        await service.edit("nova", {"system_prompt": "hacked"}, bob)
    assert info.value.code == "forbidden"
    with pytest.raises(CharacterError):
        await service.delete("nova", bob)
    edited = await service.edit("nova", {"system_prompt": "by the owner"}, owner)
    assert edited.system_prompt == "by the owner" and edited.owner_id == ALICE
    with pytest.raises(CharacterError) as info:
        await service.edit("nova", {"owner_id": BOB}, alice)
    assert info.value.code == "forbidden"
    assert (await service.delete("nova", alice)).slug == "nova"
    assert await service.store.get("nova") is None


async def test_edit_is_validated_whole_and_nothing_is_half_saved(
    service: CharacterService,
) -> None:
    alice = service.discord_actor(ALICE)
    await service.create({"name": "Nova", "system_prompt": "x"}, alice)
    before = await service.store.get("nova")
    for changes in (
        {"system_prompt": "fine", "temperature": 9},
        {"system_prompt": "bad \x07 bell"},
        {"card": {"tone": "x" * 9000}},
        {"aliases": ["ok", "@everyone"]},
        {"nonsense": 1},
        {"slug": "other"},
    ):
        with pytest.raises(CharacterError):
            await service.edit("nova", changes, alice)
    assert await service.store.get("nova") == before


async def test_private_character_is_the_owners_alone(service: CharacterService) -> None:
    alice, bob = service.discord_actor(ALICE), service.discord_actor(BOB)
    nova = await service.create({"name": "Nova", "system_prompt": "x", "public": False}, alice)
    assert visible_to(nova, ALICE) and not visible_to(nova, BOB) and not visible_to(nova, None)
    with pytest.raises(CharacterError) as info:
        await service.find("nova", bob)
    assert info.value.code == "not_found"  # indistinguishable from no character
    assert [p.slug for p in await service.browse(bob)] == []
    assert [p.slug for p in await service.browse(alice)] == ["nova"]
    # the bot owner can still manage it
    assert (await service.find("nova", service.discord_actor(OWNER))).slug == "nova"


async def test_aliases_and_visibility(service: CharacterService) -> None:
    alice = service.discord_actor(ALICE)
    await service.create({"name": "Nova", "system_prompt": "x"}, alice)
    await service.add_alias("nova", "Star", alice)
    assert (await service.store.get("star")) is not None
    await service.remove_alias("nova", "STAR", alice)
    assert await service.store.get("star") is None
    with pytest.raises(CharacterError):
        await service.remove_alias("nova", "never", alice)
    private = await service.set_visibility("nova", False, alice)
    assert private.public is False


async def test_avatar_upload_is_sniffed_stored_and_removed_with_the_character(
    service: CharacterService, redis_client: Redis
) -> None:
    alice = service.discord_actor(ALICE)
    await service.create({"name": "Nova", "system_prompt": "x"}, alice)
    with pytest.raises(CharacterError) as info:
        await service.upload_avatar("nova", b"<html><script>alert(1)</script></html>", alice)
    assert info.value.code == "invalid"
    with pytest.raises(CharacterError) as info:
        await service.upload_avatar("nova", PNG + b"\x00" * (3 * 1024 * 1024), alice)
    assert info.value.code == "too_large"
    updated = await service.upload_avatar("nova", PNG, alice)
    assert updated.avatar_url is not None
    assert updated.avatar_url.startswith("https://bot.example.org/avatars/nova?v=")
    stored = await service.avatars.get("nova")
    assert stored is not None and stored.data == PNG and stored.content_type == "image/png"
    await service.delete("nova", alice)
    assert not await redis_client.exists(AVATAR.key(slug="nova"), PERSONALITY_META.key(slug="nova"))


async def test_upload_needs_public_base_url(redis_client: Redis) -> None:
    service = CharacterService(
        PersonalityStore(redis_client),
        AvatarStore(redis_client),
        owner_id=None,
        public_base_url=None,
    )
    alice = service.discord_actor(ALICE)
    await service.create({"name": "Nova", "system_prompt": "x"}, alice)
    with pytest.raises(CharacterError) as info:
        await service.upload_avatar("nova", PNG, alice)
    assert "PUBLIC_BASE_URL" in info.value.message
    updated = await service.set_avatar_url("nova", "https://img.example/n.png", alice)
    assert updated.avatar_url == "https://img.example/n.png"


async def test_export_then_import_round_trips(service: CharacterService) -> None:
    alice = service.discord_actor(ALICE)
    nova = await service.create(
        {"name": "Nova", "system_prompt": "'''\n\"\"\"\\ end", "aliases": ["nv"],
         "card": {"tone": "dry ''' \"\"\"\"", "likes": "tea"}, "public": False, "top_p": 0.9},
        alice,
    )  # fmt: skip
    filename, text = await service.export("nova", alice)
    assert filename == "nova.toml" and 'owner_id = "' in text and "public = false" in text
    await service.delete("nova", alice)
    assert await service.import_file(text.encode(), alice) == nova
    # a name clash is an error naming the clash; nothing changes
    with pytest.raises(CharacterError) as info:
        await service.import_file(text.encode(), service.discord_actor(BOB))
    assert info.value.code == "conflict" and "nova" in info.value.message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'name = "X"\nsystem_prompt = """never closed\n', "unterminated"),
        (b'name = "X"\nsystem_prompt = = 3\n', "(line 2)"),
        (b'name = 5\nsystem_prompt = "x"', "name"),
        (b'name = "X"\nsystem_prompt = "x"\nmodle = "y"', "did you mean 'model'"),
        (b'name = "X"\nsystem_prompt = "x"\n[card]\nton = "y"', "card.ton"),
        (b"\xff\xfe", "UTF-8"),
        (b"BIG", "larger than"),
        (b'name = "X"\nsystem_prompt = "x"\ncard = 3', "card"),
    ],
)
async def test_import_errors_are_specific(
    service: CharacterService, data: bytes, expected: str
) -> None:
    if data == b"BIG":
        data = b'name = "X"\nsystem_prompt = "' + b"x" * 300_000 + b'"'
    with pytest.raises(CharacterError) as info:
        await service.import_file(data, service.discord_actor(ALICE))
    assert expected in info.value.message
    assert await service.store.list() == []


def write(directory: Path, name: str, personality: Personality) -> Path:
    path = directory / name
    path.write_text(dump_toml(personality))
    return path


async def test_seeding_never_overwrites_a_discord_edit_and_says_so(
    service: CharacterService, redis_client: Redis, tmp_path: Path
) -> None:
    file_version = Personality(name="Aria", system_prompt="from the file")
    path = write(tmp_path, "aria.toml", file_version)
    await seed_from_directory(service.store, tmp_path)
    assert await service.store.get("aria") == file_version

    # unchanged file: a no-op (nothing written)
    await redis_client.delete(PERSONALITY_META.key(slug="aria"))
    await seed_from_directory(service.store, tmp_path)  # legacy: no provenance -> rewritten
    stamp = await service.store.provenance("aria")
    result = await seed_from_directory(service.store, tmp_path)
    assert result.unchanged == ["aria"]
    assert (await service.store.provenance("aria")).edited_at == stamp.edited_at

    edited = await service.edit(
        "aria", {"system_prompt": "edited in Discord"}, service.discord_actor(OWNER)
    )
    path.write_text(dump_toml(Personality(name="Aria", system_prompt="file v2")))
    with capture_logs() as logs:
        result = await seed_from_directory(service.store, tmp_path)
    assert result.kept == ["aria"]
    assert await service.store.get("aria") == edited
    warning = next(e for e in logs if e["log_level"] == "warning")
    assert "edited in Discord" in warning["event"]
    assert warning["file"] == str(path) and warning["personality"] == "aria"

    # a changed file for a file-sourced character is applied
    await service.store.delete("aria")
    await seed_from_directory(service.store, tmp_path)
    assert (await service.store.get("aria")) is not None
    assert (await redis_client.get(PERSONALITY.key(slug="aria"))) is not None
    path.write_text(dump_toml(Personality(name="Aria", system_prompt="file v3")))
    await seed_from_directory(service.store, tmp_path)
    found = await service.store.get("aria")
    assert found is not None and found.system_prompt == "file v3"
