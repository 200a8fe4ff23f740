"""End to end: PluralKit members as speakers, with the emulator playing PluralKit (its API and
its proxying: the user's message deleted and reposted through its webhook under the member's
name). What a user notices: the member is answered once, as the member, while memory, settings
and limits stay the sender's; PluralKit down changes nothing but the name; other webhooks and
bots stay ignored."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.emulator import DiscordEmulator
from tests.emulator.models import Channel, Message, User
from tests.emulator.pluralkit import PkMember
from tests.fixtures.fake_llm import FakeLLM
from tzurot.app import Application
from tzurot.conversations import TranscriptStore
from tzurot.discord.activation import Activations
from tzurot.moderation.denylist import DenyEntry, Denylist
from tzurot.settings.store import SettingsStore

pytestmark = pytest.mark.timeout(120)

# Held originals wait this long (a short grace keeps the tests quick).
FAST = {"PLURALKIT_GRACE_SECONDS": "0.8"}
QUIET_SECONDS = 2.5  # longer than the grace plus the repost lookup's patience


def character_replies(emu: DiscordEmulator, channel: Channel) -> list[Message]:
    """Our characters' webhook replies in `channel` (PluralKit's reposts are not ours)."""
    return [
        m
        for m in emu.bot_messages(channel)
        if m.webhook_id is not None and m.application_id == emu.application_id
    ]


async def replies(emu: DiscordEmulator, channel: Channel, count: int) -> list[Message]:
    async with asyncio.timeout(30):
        while len(character_replies(emu, channel)) < count:
            await asyncio.sleep(0.02)
    return character_replies(emu, channel)


async def exactly(emu: DiscordEmulator, channel: Channel, count: int) -> list[Message]:
    """`count` replies, and still `count` once a second reply would have had time to come."""
    await replies(emu, channel, count)
    await asyncio.sleep(QUIET_SECONDS)
    found = character_replies(emu, channel)
    assert len(found) == count, [m.content for m in found]
    return found


def alice_with_ash(emu: DiscordEmulator) -> tuple[User, PkMember]:
    alice = emu.add_user("alice")
    system = emu.pluralkit.add_system(alice, name="The Grove", tag="| Grove")
    ash = emu.pluralkit.add_member(
        system, "ash", display_name="Ash Grey", avatar_url="https://example.org/ash.png",
        prefix="a:",
    )  # fmt: skip
    return alice, ash


def messages_of(fake_llm: FakeLLM, index: int = -1) -> list[dict[str, Any]]:
    return list(fake_llm.chat_calls[index].json["messages"])  # type: ignore[index]


async def test_a_proxied_message_is_answered_once_and_credited_to_the_member(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app: Application = await start_bot(**FAST)
    alice, _ = alice_with_ash(emu)

    original, repost = await emu.pluralkit.proxy(emu.channel, alice, "a: @Lilith hello there")
    (reply,) = await exactly(emu, emu.channel, 1)

    assert repost.username == "Ash Grey | Grove" and repost.content == "@Lilith hello there"
    assert reply.username == "Lilith the Wise"
    assert reply.content == "reply to: Ash Grey: @Lilith hello there"
    assert len(fake_llm.chat_calls) == 1
    system = messages_of(fake_llm)[0]["content"]
    assert "Participants: Ash Grey" in system
    # History names the member; the turn is the sender's (what /history clear goes by).
    assert app.redis is not None
    turns = await TranscriptStore(app.redis).recent(str(emu.channel.id), 10)
    user_turns = [t for t in turns if t.role == "user"]
    assert [(t.speaker, t.user_id, t.message_id) for t in user_turns] == [
        ("Ash Grey", str(alice.id), str(repost.id))
    ]
    # Our own reply (echoed back by the gateway) is never asked about.
    assert emu.pluralkit.lookups(reply.id) == 0
    assert emu.pluralkit.lookups(repost.id) >= 1
    assert original.deleted


async def test_a_member_replying_to_a_character_continues_with_it(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(**FAST)
    alice, _ = alice_with_ash(emu)
    await emu.post_message(emu.channel, alice, "@Lilith hi")
    (first,) = await replies(emu, emu.channel, 1)

    await emu.pluralkit.proxy(emu.channel, alice, "a: and what comes next?", reply_to=first)
    _, second = await exactly(emu, emu.channel, 2)

    assert second.username == "Lilith the Wise"
    assert second.content == "reply to: Ash Grey: and what comes next?"
    assert len(fake_llm.chat_calls) == 2


async def test_an_activated_channel_answers_a_member(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app: Application = await start_bot(**FAST)
    assert app.redis is not None
    await Activations(app.redis).activate(
        str(emu.guild.id), str(emu.channel.id), "lilith", by=str(emu.owner.id)
    )
    alice, _ = alice_with_ash(emu)

    await emu.pluralkit.proxy(emu.channel, alice, "a: good morning, everyone")
    (reply,) = await exactly(emu, emu.channel, 1)

    assert reply.content == "reply to: Ash Grey: good morning, everyone"
    assert len(fake_llm.chat_calls) == 1


async def test_memory_settings_and_limits_are_the_senders(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app: Application = await start_bot(
        **FAST, MEMORY_ENABLED="true", MEMORY_THRESHOLD="0.2", RATE_LIMIT_USER_PER_MINUTE="2"
    )
    assert app.redis is not None and app.memory is not None
    alice, _ = alice_with_ash(emu)
    await SettingsStore(app.redis).set_user(str(alice.id), "temperature", 0.25)

    await emu.pluralkit.proxy(emu.channel, alice, "a: @Lilith my cat is called Miso")
    await exactly(emu, emu.channel, 1)

    assert fake_llm.chat_calls[-1].json["temperature"] == 0.25  # type: ignore[index]
    async with asyncio.timeout(20):  # remembered for alice, the sender
        while (await app.memory.browse(str(alice.id), "lilith", offset=0, limit=10))[1] < 1:
            await asyncio.sleep(0.05)
    records, _ = await app.memory.browse(str(alice.id), "lilith", offset=0, limit=10)
    assert "Miso" in records[0].text
    # Alice's second message (as herself) fills her limit of 2; Ash's next is over it.
    await emu.post_message(emu.channel, alice, "@Lilith and my dog is Pepper")
    await replies(emu, emu.channel, 2)
    await emu.pluralkit.proxy(emu.channel, alice, "a: @Lilith one more thing")
    await exactly(emu, emu.channel, 2)
    assert len(fake_llm.chat_calls) == 2


async def test_a_denied_sender_is_not_answered_through_a_member(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app: Application = await start_bot(**FAST)
    assert app.redis is not None
    alice, _ = alice_with_ash(emu)
    await Denylist(app.redis).add(
        DenyEntry(target=str(alice.id), scope="bot", added_by=str(emu.owner.id),
                  added_at=time.time())
    )  # fmt: skip

    await emu.pluralkit.proxy(emu.channel, alice, "a: @Lilith let me in")
    await asyncio.sleep(QUIET_SECONDS)

    assert character_replies(emu, emu.channel) == []
    assert fake_llm.chat_calls == []


@pytest.mark.parametrize("trouble", ["down", "5xx", "garbage", "slow"])
async def test_pluralkit_in_trouble_answers_once_as_before(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM, trouble: str
) -> None:
    emu = discord_emulator
    app: Application = await start_bot(**FAST)
    alice, _ = alice_with_ash(emu)
    if trouble == "down":
        emu.pluralkit.down = True
    elif trouble == "5xx":
        emu.pluralkit.fail_next(502, count=1000)
    elif trouble == "garbage":
        emu.pluralkit.garbage_next(count=1000)
    else:
        emu.pluralkit.latency = 5.0  # beyond the bot's 2 s timeout

    await emu.pluralkit.proxy(emu.channel, alice, "a: @Lilith are you there?")
    (reply,) = await exactly(emu, emu.channel, 1)

    # Without PluralKit's word the original is answered, as it was before this feature.
    assert reply.content == "reply to: alice: a: @Lilith are you there?"
    assert len(fake_llm.chat_calls) == 1
    assert app.discord is not None and app.discord.alive


async def test_a_repost_the_api_learns_of_late_is_still_the_member(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(**FAST)
    alice, _ = alice_with_ash(emu)
    emu.pluralkit.lag = 0.6  # PluralKit's API knows the repost only 0.6 s after it is posted

    _, repost = await emu.pluralkit.proxy(emu.channel, alice, "a: @Lilith sorry I'm late")
    (reply,) = await exactly(emu, emu.channel, 1)

    assert reply.content == "reply to: Ash Grey: @Lilith sorry I'm late"
    assert emu.pluralkit.lookups(repost.id) >= 2  # asked again until it knew


async def test_a_429_from_pluralkit_is_waited_out(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(**FAST)
    alice, _ = alice_with_ash(emu)
    emu.pluralkit.fail_next(429, count=1, retry_after_ms=300)

    await emu.pluralkit.proxy(emu.channel, alice, "a: @Lilith patience")
    (reply,) = await exactly(emu, emu.channel, 1)

    assert reply.content == "reply to: Ash Grey: @Lilith patience"
    assert 429 in [status for _, status in emu.pluralkit.requests]


async def test_lookups_are_cached(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(**FAST)
    alice, _ = alice_with_ash(emu)
    bob = emu.add_user("bob")

    _, repost = await emu.pluralkit.proxy(emu.channel, alice, "a: @Lilith first")
    await replies(emu, emu.channel, 1)
    await emu.pluralkit.proxy(emu.channel, alice, "a: @Lilith second")
    await replies(emu, emu.channel, 2)
    await emu.post_message(emu.channel, bob, "@Lilith hello")
    await emu.post_message(emu.channel, bob, "@Lilith again")
    await replies(emu, emu.channel, 4)
    looked_up = emu.pluralkit.lookups(repost.id)
    await emu.replay(repost)  # the gateway may deliver a message twice
    await exactly(emu, emu.channel, 4)

    assert emu.pluralkit.system_lookups(alice) == 1
    assert emu.pluralkit.system_lookups(bob) == 1  # "no system" is remembered too
    assert emu.pluralkit.lookups(repost.id) == looked_up
    assert len(fake_llm.chat_calls) == 4


async def test_other_webhooks_and_bots_stay_ignored(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(**FAST)
    carol = emu.add_user("carol")
    robot = emu.add_user("robot", bot=True)
    hook = emu.add_webhook(emu.channel, "Announcements", creator=carol)

    url = f"{emu.rest_url}/webhooks/{hook.id}/{hook.token}?wait=true"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, json={"content": "@Lilith the news is out", "username": "News"}
        ) as response,
    ):
        assert response.status == 200
        posted = await response.json()
    await emu.post_message(emu.channel, robot, "@Lilith beep")
    await asyncio.sleep(QUIET_SECONDS)

    assert character_replies(emu, emu.channel) == []
    assert fake_llm.chat_calls == []
    assert emu.pluralkit.lookups(posted["id"]) >= 1  # PluralKit did not know it: ignored
