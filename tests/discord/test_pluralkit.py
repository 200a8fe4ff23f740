"""tzurot/discord/pluralkit.py on its own: PluralKit's answers read and checked, lookups cached,
its rate limit kept across processes, trouble turned into "unavailable", and one answer per
original message across processes. PluralKit is the emulator's (tests/emulator/pluralkit.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.emulator import DiscordEmulator
from tests.emulator.pluralkit import PkMessage
from tests.fixtures.ports import free_port
from tzurot.discord.pluralkit import (
    PluralKitApi,
    PluralKitSpeakers,
    PluralKitUnavailable,
    ProxiedMessage,
    parse_message,
    reply_in_embeds,
)
from tzurot.discord.triggers import IncomingMessage

GOOD = {
    "timestamp": "2024-01-01T00:00:00Z",
    "id": "1577288398668824576",
    "original": "1577288398668824570",
    "sender": "1577288383892291585",
    "channel": "1577288383883902976",
    "guild": "1577288383883902970",
    "system": {"id": "abcde"},
    "member": {"id": "fghij", "name": "ash", "display_name": "Ash  Grey"},
}


@pytest.fixture
async def apis(
    discord_emulator: DiscordEmulator, redis_client: Redis
) -> AsyncIterator[list[PluralKitApi]]:
    """Two clients of the emulator's PluralKit on one Redis (as two processes would be)."""
    made = [PluralKitApi(discord_emulator.pluralkit.url, redis_client) for _ in range(2)]
    yield made
    for api in made:
        await api.close()


def proxied_in(emu: DiscordEmulator, *, lag: float = 0.0) -> PkMessage:
    """A message PluralKit proxied, known to its API (after `lag` s)."""
    alice = emu.add_user("alice")
    system = emu.pluralkit.add_system(alice)
    member = emu.pluralkit.add_member(system, "ash", display_name="Ash Grey", prefix="a:")
    record = PkMessage(
        id=emu.world.snowflakes.next(), original=emu.world.snowflakes.next(), sender=alice.id,
        channel=emu.channel.id, guild=emu.guild.id, system=system, member=member,
        timestamp=datetime.now(UTC), known_from=time.monotonic() + lag,
    )  # fmt: skip
    emu.pluralkit.messages[record.id] = emu.pluralkit.messages[record.original] = record
    return record


# -- reading PluralKit's answers -----------------------------------------------------------------


def test_a_message_answer_names_the_member_and_its_sender() -> None:
    found = parse_message(GOOD)
    assert found == ProxiedMessage(
        "1577288398668824576", "1577288398668824570", "1577288383892291585", "Ash Grey"
    )
    no_display = {**GOOD, "member": {"name": "ash", "display_name": None}}
    assert parse_message(no_display).member_name == "ash"
    assert ProxiedMessage.from_json(found.to_json()) == found


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "nope",
        {**GOOD, "id": 12},
        {**GOOD, "sender": "not a snowflake"},
        {**GOOD, "original": None},
        {**GOOD, "member": None},
        {**GOOD, "member": {"name": "   ", "display_name": ""}},
        {**GOOD, "member": "ash"},
    ],
)
def test_anything_else_is_refused(body: Any) -> None:
    with pytest.raises(ValueError):
        parse_message(body)


def test_a_repost_replying_to_a_message_links_it_in_its_embed() -> None:
    link = "https://discord.com/channels/1/2/1577288398668824576"
    quoting = SimpleNamespace(
        embeds=[SimpleNamespace(description=None), SimpleNamespace(description=f"[Reply]({link})")]
    )
    assert reply_in_embeds(quoting) == "1577288398668824576"  # type: ignore[arg-type]
    assert reply_in_embeds(SimpleNamespace(embeds=[])) is None  # type: ignore[arg-type]
    elsewhere = SimpleNamespace(embeds=[SimpleNamespace(description="https://example.org/1/2/3")])
    assert reply_in_embeds(elsewhere) is None  # type: ignore[arg-type]


# -- the API client ------------------------------------------------------------------------------


async def test_a_message_lookup_is_cached_for_both_ids(
    discord_emulator: DiscordEmulator, apis: list[PluralKitApi]
) -> None:
    emu = discord_emulator
    record = proxied_in(emu)
    first, other = apis

    found = await first.message(str(record.id))
    again = await other.message(str(record.id))
    by_original = await other.message(str(record.original))

    assert found is not None and found.member_name == "Ash Grey"
    assert found.sender_id == str(record.sender) and found.original_id == str(record.original)
    assert again == found and by_original == found
    assert [p for p, _ in emu.pluralkit.requests] == [f"/messages/{record.id}"]


async def test_an_unknown_message_is_asked_again_while_there_is_patience(
    discord_emulator: DiscordEmulator, apis: list[PluralKitApi]
) -> None:
    emu = discord_emulator
    late = proxied_in(emu, lag=0.4)
    api = apis[0]

    assert await api.message("1234567890", patience=0.0) is None
    assert await api.message("1234567890", patience=0.0) is None  # "not proxied" is kept
    found = await api.message(str(late.id), patience=2.0)

    assert emu.pluralkit.lookups("1234567890") == 1
    assert found is not None and found.member_name == "Ash Grey"
    assert emu.pluralkit.lookups(late.id) >= 2


async def test_systems_are_asked_once_per_user(
    discord_emulator: DiscordEmulator, apis: list[PluralKitApi]
) -> None:
    emu = discord_emulator
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    emu.pluralkit.add_system(alice)
    api = apis[0]

    answers = await asyncio.gather(*(api.has_system(str(alice.id)) for _ in range(5)))
    assert answers == [True] * 5
    assert not await api.has_system(str(bob.id))
    assert not await apis[1].has_system(str(bob.id))

    assert emu.pluralkit.system_lookups(alice) == 1
    assert emu.pluralkit.system_lookups(bob) == 1


@pytest.mark.parametrize("trouble", ["5xx", "garbage", "other message"])
async def test_trouble_is_unavailable(
    discord_emulator: DiscordEmulator, apis: list[PluralKitApi], trouble: str
) -> None:
    emu = discord_emulator
    record = proxied_in(emu)
    if trouble == "5xx":
        emu.pluralkit.fail_next(503)
    elif trouble == "garbage":
        emu.pluralkit.garbage_next()
    asked = "1234567890" if trouble == "other message" else str(record.id)
    if trouble == "other message":  # an answer about some other message than the one asked
        emu.pluralkit.messages[int(asked)] = record

    with pytest.raises(PluralKitUnavailable):
        await apis[0].message(asked)
    if trouble != "other message":  # once PluralKit is well again, it answers
        assert await apis[0].message(str(record.id)) is not None


async def test_an_unreachable_pluralkit_is_left_alone_for_a_while(redis_client: Redis) -> None:
    api = PluralKitApi(f"http://127.0.0.1:{free_port()}/v2", redis_client, timeout=0.5)
    try:
        with pytest.raises(PluralKitUnavailable):
            await api.has_system("1577288383892291585")
        started = time.monotonic()
        with pytest.raises(PluralKitUnavailable, match="a moment ago"):
            await api.message("1577288398668824576")
        assert time.monotonic() - started < 0.1  # not asked again
    finally:
        await api.close()


async def test_the_rate_limit_is_shared_by_every_process(
    discord_emulator: DiscordEmulator, redis_client: Redis
) -> None:
    first, second = (
        PluralKitApi(discord_emulator.pluralkit.url, redis_client, per_second=2) for _ in range(2)
    )
    try:
        soon = time.monotonic() + 0.05
        await first._slot("message", soon)
        await second._slot("message", soon)
        with pytest.raises(PluralKitUnavailable, match="rate limited"):
            await first._slot("message", soon)
        await second._slot("generic_get", soon)  # another scope has its own allowance
    finally:
        await first.close()
        await second.close()


async def test_a_429_pauses_every_process_for_its_retry_after(
    discord_emulator: DiscordEmulator, redis_client: Redis
) -> None:
    emu = discord_emulator
    record = proxied_in(emu)
    hasty = PluralKitApi(emu.pluralkit.url, redis_client, timeout=0.2)
    patient = PluralKitApi(emu.pluralkit.url, redis_client, timeout=3.0)
    try:
        emu.pluralkit.fail_next(429, retry_after_ms=600)
        with pytest.raises(PluralKitUnavailable, match="rate limited"):
            await hasty.message(str(record.id))  # told to wait 0.6 s: more than it has
        with pytest.raises(PluralKitUnavailable, match="rate limited"):
            await hasty._slot("message", time.monotonic() + 0.05)
        found = await patient.message(str(record.id))  # waits the pause out, then asks
        assert found is not None
        assert [s for _, s in emu.pluralkit.requests] == [429, 200]
    finally:
        await hasty.close()
        await patient.close()


# -- one answer per original -----------------------------------------------------------------------


def incoming(message_id: str, **fields: Any) -> IncomingMessage:
    base: dict[str, Any] = {
        "id": message_id, "channel_id": "1577288383883902976", "guild_id": "1577288383883902970",
        "author_id": "1577288383892291585", "author_name": "alice", "content": "@Lilith hi",
        "created_at": datetime.now(UTC),
    }  # fmt: skip
    return IncomingMessage(**{**base, **fields})


async def test_an_original_and_its_repost_are_answered_once_across_processes(
    discord_emulator: DiscordEmulator, redis_client: Redis
) -> None:
    emu = discord_emulator

    async def anything(_message: IncomingMessage) -> bool:
        return True

    apis = [PluralKitApi(emu.pluralkit.url, redis_client) for _ in range(2)]
    one, two = (
        PluralKitSpeakers(api, redis_client, grace=0.0, could_trigger=anything) for api in apis
    )
    try:
        # A user without a system: the original goes ahead (claimed), its late repost not.
        original = incoming("1577288398668824570")
        assert await one.goes_ahead(original) and await one.claim(original)
        repost = incoming("1577288398668824576", proxy_of=original.id, author_name="Ash")
        assert await two.goes_ahead(repost) and not await two.claim(repost)
        assert await one.claim(original)  # the same MESSAGE_CREATE again: still its own
        # The other way round: the repost first, then the original is dropped.
        repost = incoming("1577288398668824586", proxy_of="1577288398668824580")
        assert await two.claim(repost)
        assert not await one.claim(incoming("1577288398668824580"))
    finally:
        await one.close()
        await two.close()


async def test_a_held_original_gives_way_to_its_repost(
    discord_emulator: DiscordEmulator, redis_client: Redis
) -> None:
    emu = discord_emulator
    record = proxied_in(emu)

    async def anything(_message: IncomingMessage) -> bool:
        return True

    speakers = PluralKitSpeakers(
        PluralKitApi(emu.pluralkit.url, redis_client), redis_client, grace=5.0,
        could_trigger=anything,
    )  # fmt: skip
    try:
        original = incoming(str(record.original), author_id=str(record.sender))
        held = asyncio.create_task(speakers.goes_ahead(original))
        await asyncio.sleep(0.2)
        assert not held.done()  # alice has a system: her message waits
        webhook = incoming(str(record.id), from_webhook=True, from_bot=True, author_name="hook")
        member = await speakers.as_member(webhook, ours=False)
        assert (member.author_id, member.author_name) == (str(record.sender), "Ash Grey")
        assert member.proxy_of == str(record.original) and not member.from_webhook
        assert await speakers.goes_ahead(member) and await speakers.claim(member)
        async with asyncio.timeout(1.0):  # the repost went ahead: the hold ends at once
            assert await held is False
        ours = await speakers.as_member(incoming("1577288398668824999", from_webhook=True),
                                        ours=True)  # fmt: skip
        assert ours.from_webhook and emu.pluralkit.lookups("1577288398668824999") == 0
    finally:
        await speakers.close()
