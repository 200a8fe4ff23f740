"""The denylist's scopes, against a real redis-server."""

from __future__ import annotations

from redis.asyncio import Redis

from tzurot.infra.keys import DENYLIST
from tzurot.moderation import Denylist, new_entry

USER, OTHER = "100000000000000001", "100000000000000002"
GUILD, GUILD2 = "200000000000000001", "200000000000000002"
CHANNEL, THREAD, CHANNEL2 = "300000000000000001", "300000000000000003", "300000000000000002"


def entry(target: str, scope: str, place: str = "", kind: str = "user", guild: str | None = None):  # type: ignore[no-untyped-def]
    return new_entry(
        target=target, kind=kind, scope=scope, place=place,  # type: ignore[arg-type]
        added_by="mod", guild_id=guild, reason="spam",
    )  # fmt: skip


async def test_nothing_denied_by_default(redis_client: Redis) -> None:
    deny = Denylist(redis_client)
    assert not await deny.is_denied(USER, GUILD, CHANNEL, "lilith")
    assert not await deny.is_denied(USER, None, CHANNEL, None)


async def test_bot_scope_user_and_server(redis_client: Redis) -> None:
    deny = Denylist(redis_client)
    await deny.add(entry(USER, "bot"))
    assert await deny.is_denied(USER, GUILD, CHANNEL, "lilith")
    assert await deny.is_denied(USER, None, "dm", None)  # DMs too
    assert not await deny.is_denied(OTHER, GUILD, CHANNEL, "lilith")
    await deny.add(entry(GUILD2, "bot", kind="server"))
    assert await deny.is_denied(OTHER, GUILD2, CHANNEL2, "lilith")
    assert not await deny.is_denied(OTHER, GUILD, CHANNEL, "lilith")


async def test_server_scope(redis_client: Redis) -> None:
    deny = Denylist(redis_client)
    await deny.add(entry(USER, "server", GUILD, guild=GUILD))
    assert await deny.is_denied(USER, GUILD, CHANNEL, "lilith")
    assert not await deny.is_denied(USER, GUILD2, CHANNEL2, "lilith")
    assert not await deny.is_denied(USER, None, "dm", None)


async def test_channel_scope_covers_its_threads(redis_client: Redis) -> None:
    deny = Denylist(redis_client)
    await deny.add(entry(USER, "channel", CHANNEL, guild=GUILD))
    assert await deny.is_denied(USER, GUILD, CHANNEL, "lilith")
    assert await deny.is_denied(USER, GUILD, THREAD, "lilith", parent_channel_id=CHANNEL)
    assert not await deny.is_denied(USER, GUILD, CHANNEL2, "lilith")


async def test_personality_scope_user_and_server(redis_client: Redis) -> None:
    deny = Denylist(redis_client)
    await deny.add(entry(USER, "personality", "lilith"))
    assert await deny.is_denied(USER, GUILD, CHANNEL, "lilith")
    assert await deny.is_denied(USER, None, "dm", "lilith")
    assert not await deny.is_denied(USER, GUILD, CHANNEL, "nova")
    verdict = await deny.verdict(USER, GUILD, CHANNEL, ["lilith", "nova"])
    assert not verdict.everywhere and verdict.personalities == {"lilith"}
    await deny.add(entry(GUILD2, "personality", "nova", kind="server"))
    assert await deny.is_denied(OTHER, GUILD2, CHANNEL2, "nova")
    assert not await deny.is_denied(OTHER, GUILD, CHANNEL, "nova")


async def test_add_remove_browse(redis_client: Redis) -> None:
    deny = Denylist(redis_client)
    assert await deny.add(entry(USER, "server", GUILD, guild=GUILD))
    assert not await deny.add(entry(USER, "server", GUILD, guild=GUILD))  # replaced, not new
    await deny.add(entry(OTHER, "channel", CHANNEL, guild=GUILD))
    browsed = await deny.browse()
    assert {(e.target, e.scope, e.place) for e in browsed} == {
        (USER, "server", GUILD),
        (OTHER, "channel", CHANNEL),
    }
    assert all(e.reason == "spam" and e.added_by == "mod" for e in browsed)
    assert await deny.remove("server", GUILD, USER)
    assert not await deny.remove("server", GUILD, USER)
    assert not await deny.is_denied(USER, GUILD, CHANNEL, None)
    # Everything lives in one hash: the one key of the family.
    assert [k.decode() for k in await redis_client.keys("*")] == [DENYLIST.key()]


async def test_verdict_is_one_round_trip(redis_client: Redis) -> None:
    deny = Denylist(redis_client)
    await deny.add(entry(USER, "personality", "nova"))
    before = (await redis_client.info("stats"))["total_commands_processed"]
    await deny.verdict(USER, GUILD, THREAD, ["lilith", "nova", "x"], parent_channel_id=CHANNEL)
    after = (await redis_client.info("stats"))["total_commands_processed"]
    assert after - before == 2  # the HMGET, and the INFO that measured it
