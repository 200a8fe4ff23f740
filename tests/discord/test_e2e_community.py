"""End to end through the emulator: channel activation, history, /channel reset, /admin,
/deny in every scope, and rate limits, as a member, a moderator and the bot owner would."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.emulator import DiscordEmulator
from tests.emulator.components import buttons
from tests.emulator.ids import MANAGE_GUILD, MANAGE_MESSAGES
from tests.emulator.models import Channel, Message, User
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer
from tzurot.discord.activation import Activations

pytestmark = pytest.mark.timeout(90)

NOVA = 'name = "Nova"\ndisplay_name = "Nova"\nsystem_prompt = "You are Nova."\n'
LILITH = "Lilith the Wise"


@pytest.fixture
def nova(personalities_dir: Path) -> None:
    (personalities_dir / "nova.toml").write_text(NOVA)


def character_replies(emu: DiscordEmulator, channel: Channel) -> list[Message]:
    return [m for m in emu.bot_messages(channel, include_threads=True) if m.webhook_id]


async def wait_replies(emu: DiscordEmulator, channel: Channel, count: int) -> list[Message]:
    async with asyncio.timeout(20):
        while len(found := character_replies(emu, channel)) < count:
            await asyncio.sleep(0.05)
    return found


def people(emu: DiscordEmulator) -> tuple[User, User, User]:
    """A plain member, a moderator (Manage Messages and Manage Server), and the bot owner."""
    member = emu.add_user("alice")
    mod = emu.add_user("mo")
    role = emu.add_role(emu.guild, "mods", MANAGE_MESSAGES | MANAGE_GUILD)
    emu.give_role(emu.guild, mod, role)
    owner = emu.add_user("owner")
    return member, mod, owner


async def command(
    emu: DiscordEmulator, user: User, name: str, options: dict[str, Any] | None = None,
    channel: Channel | None = None,
) -> str:  # fmt: skip
    interaction = await emu.slash_command(channel or emu.channel, user, name, options)
    text = await interaction.wait_for_content(timeout=10)
    assert interaction.original is not None and interaction.original.is_ephemeral, name
    return text


async def start(start_bot: Any, owner: User, **env: str) -> Any:
    return await start_bot(BOT_OWNER_ID=str(owner.id), **env)


def keys_naming(redis_server: RedisServer, text: str) -> list[str]:
    with redis_server.client() as client:
        return [k.decode() for k in client.scan_iter(match=f"*{text}*", count=1000)]


# -- channel activation ----------------------------------------------------------------------


async def test_channel_activation(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM, nova: None,
    redis_server: RedisServer,
) -> None:  # fmt: skip
    emu = discord_emulator
    member, mod, owner = people(emu)
    await start(start_bot, owner)

    refused = await command(emu, member, "channel activate", {"personality": "Lilith"})
    assert "Manage Messages" in refused
    assert "now answers every message" in await command(
        emu, mod, "channel activate", {"personality": "Lilith"}
    )
    assert "Lilith the Wise" in await command(emu, member, "channel browse")
    # It lives in Redis: any other process (here: another connection) sees it.
    other = Redis.from_url(redis_server.url)
    try:
        seen = await Activations(other).active_slug(str(emu.guild.id), str(emu.channel.id))
    finally:
        await other.aclose()
    assert seen == "lilith"

    await emu.post_message(emu.channel, member, "good morning")
    (first,) = await wait_replies(emu, emu.channel, 1)
    assert first.username == LILITH and first.content == "reply to: alice: good morning"

    await emu.post_message(emu.channel, member, "@Nova what do you think?")
    second = (await wait_replies(emu, emu.channel, 2))[1]
    assert second.username == "Nova"  # another character's mention still goes to it

    thread = emu.add_thread(emu.channel, "side")
    await asyncio.sleep(0.2)  # the THREAD_CREATE reaches the bot's cache
    await emu.post_message(thread, member, "and in here?")
    third = (await wait_replies(emu, emu.channel, 3))[2]
    assert third.username == LILITH and third.thread_id == thread.id  # the thread inherits

    bot_like = emu.add_user("otherbot", bot=True)
    await emu.post_message(emu.channel, bot_like, "beep")  # never answered
    assert "Manage Messages" in await command(emu, member, "channel deactivate")
    assert "any more" in await command(emu, mod, "channel deactivate")
    await emu.post_message(emu.channel, member, "anyone there?")  # no longer answered
    await emu.post_message(emu.channel, member, "@Lilith you there?")
    fourth = (await wait_replies(emu, emu.channel, 4))[3]
    assert fourth.content.endswith("@Lilith you there?")
    await asyncio.sleep(0.3)
    assert len(character_replies(emu, emu.channel)) == 4
    assert len(fake_llm.chat_calls) == 4
    assert "No channel" in await command(emu, member, "channel browse")


# -- history ----------------------------------------------------------------------------------


async def test_history_clear_undo_view_stats(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    member, mod, owner = people(emu)
    await start(start_bot, owner)

    for n in range(4):
        await emu.post_message(emu.channel, member, f"@Lilith alice {n}")
        await wait_replies(emu, emu.channel, n + 1)
    await emu.post_message(emu.channel, mod, "@Lilith mo speaks")
    await wait_replies(emu, emu.channel, 5)

    stats = await command(emu, member, "history stats")
    assert "4 of your messages and 4 replies" in stats

    viewing = await emu.slash_command(emu.channel, member, "history view")
    page = await viewing.wait_for_content(timeout=10)
    assert "page 1 of 2" in page and "alice 3" in page and "mo speaks" not in page
    assert viewing.original is not None and viewing.original.is_ephemeral
    older = next(b for b in buttons(viewing.original) if b["label"] == "◀ Older")
    click = await emu.click(viewing.original, older["custom_id"], member)
    await click.wait_for_response()
    async with asyncio.timeout(5):
        while "page 2 of 2" not in viewing.original.content:
            await asyncio.sleep(0.05)
    assert "alice 0" in viewing.original.content

    cleared = await command(emu, member, "history clear")
    assert "Forgot 8 messages" in cleared
    await emu.post_message(emu.channel, member, "@Lilith what did I say?")
    await wait_replies(emu, emu.channel, 6)
    spoken = " ".join(m["content"] for m in fake_llm.chat_calls[-1].json["messages"])  # type: ignore[index]
    assert "alice 2" not in spoken and "mo speaks" in spoken  # only her own turns went

    assert "Restored 8 messages" in await command(emu, member, "history undo")
    await emu.post_message(emu.channel, member, "@Lilith and now?")
    await wait_replies(emu, emu.channel, 7)
    spoken = " ".join(m["content"] for m in fake_llm.chat_calls[-1].json["messages"])  # type: ignore[index]
    assert "alice 2" in spoken
    assert "no clear to undo" in await command(emu, member, "history undo")

    only_nova = await command(emu, member, "history clear", {"personality": "Lilith"})
    assert "with **Lilith the Wise**" in only_nova


async def test_channel_reset_needs_manage_messages_and_a_typed_confirmation(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    member, mod, owner = people(emu)
    await start(start_bot, owner)
    await emu.post_message(emu.channel, member, "@Lilith remember the password: swordfish")
    await wait_replies(emu, emu.channel, 1)

    assert "Manage Messages" in await command(emu, member, "channel reset")

    asking = await emu.slash_command(emu.channel, mod, "channel reset")
    modal = await asking.wait_for_modal()
    assert "confirm" in modal.fields
    wrong = await emu.submit_modal(asking, {"confirm": "nope"})
    assert "did not match" in await wrong.wait_for_content(timeout=10)

    asking = await emu.slash_command(emu.channel, mod, "channel reset")
    await asking.wait_for_modal()
    done = await emu.submit_modal(asking, {"confirm": f"#{emu.channel.name}"})
    assert "Reset: forgot 2 messages" in await done.wait_for_content(timeout=10)

    await emu.post_message(emu.channel, member, "@Lilith what was the password?")
    await wait_replies(emu, emu.channel, 2)
    prompt = fake_llm.chat_calls[-1].json
    assert prompt is not None
    assert not any("swordfish" in m["content"] for m in prompt["messages"])


# -- admin -------------------------------------------------------------------------------------


async def test_admin_is_for_the_bot_owner(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    member, mod, owner = people(emu)
    await start(start_bot, owner)
    await emu.post_message(emu.channel, member, "@Lilith hi")
    await wait_replies(emu, emu.channel, 1)

    for who in (member, mod):
        assert "Only the bot's owner" in await command(emu, who, "admin stats")
        assert "Only the bot's owner" in await command(emu, who, "admin health")
    stats = await command(emu, owner, "admin stats")
    assert "Characters: 1" in stats and "Servers" in stats
    assert "last hour: 1" in stats
    health = await command(emu, owner, "admin health")
    assert "Healthy" in health and "redis" in health


# -- denylist ----------------------------------------------------------------------------------


async def assert_ignored(
    emu: DiscordEmulator, fake_llm: FakeLLM, redis_server: RedisServer, who: User,
    witness: User, channel: Channel | None = None,
) -> None:  # fmt: skip
    """`who` is not answered (no model call, nothing posted, nothing enqueued); `witness`,
    posting right after, is."""
    channel = channel or emu.channel
    calls = len(fake_llm.chat_calls)
    before = len(character_replies(emu, channel))
    bot_before = len(emu.bot_messages(channel, include_threads=True))
    denied = await emu.post_message(channel, who, "@Lilith let me in")
    await emu.post_message(channel, witness, "@Lilith witness here")
    await wait_replies(emu, channel, before + 1)
    await asyncio.sleep(0.3)
    assert len(fake_llm.chat_calls) == calls + 1
    assert not any("let me in" in str(call.json) for call in fake_llm.chat_calls)
    assert len(emu.bot_messages(channel, include_threads=True)) == bot_before + 1
    assert keys_naming(redis_server, str(denied.id)) == []  # no claim, no job, no ticket


async def assert_answered(emu: DiscordEmulator, who: User, channel: Channel | None = None) -> None:
    channel = channel or emu.channel
    before = len(character_replies(emu, channel))
    await emu.post_message(channel, who, "@Lilith am I back?")
    await wait_replies(emu, channel, before + 1)


async def test_deny_every_scope(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM,
    redis_server: RedisServer,
) -> None:  # fmt: skip
    emu = discord_emulator
    member, mod, owner = people(emu)
    witness = emu.add_user("wit")
    await start(start_bot, owner)
    target = {"target": member.mention}

    # bot scope: the bot owner only.
    assert "Only the bot's owner" in await command(emu, mod, "deny add", {**target, "scope": "bot"})
    assert "now denied everywhere" in await command(
        emu, owner, "deny add", {**target, "scope": "bot", "reason": "spam"}
    )
    await assert_ignored(emu, fake_llm, redis_server, member, witness)
    asked = {"personality": "Lilith", "message": "let me in"}
    chat = await emu.slash_command(emu.channel, member, "chat", asked)
    (refusal,) = await chat.wait_for_followups(1, timeout=10)
    assert "isn't available" in refusal.content and refusal.is_ephemeral
    assert chat.original is not None and chat.original.deleted  # no public trace
    assert "spam" in await command(emu, owner, "deny browse")
    assert "no longer denied" in await command(
        emu, owner, "deny remove", {**target, "scope": "bot"}
    )
    await assert_answered(emu, member)

    # server scope: Manage Server.
    assert "Manage Server" in await command(emu, witness, "deny add", {**target, "scope": "server"})
    assert "denied in this server" in await command(
        emu, mod, "deny add", {**target, "scope": "server"}
    )
    await assert_ignored(emu, fake_llm, redis_server, member, witness)
    await command(emu, mod, "deny remove", {**target, "scope": "server"})
    await assert_answered(emu, member)

    # channel scope: Manage Messages; it covers the channel's threads.
    assert "denied in <#" in await command(emu, mod, "deny add", {**target, "scope": "channel"})
    thread = emu.add_thread(emu.channel, "side")
    await asyncio.sleep(0.2)
    await assert_ignored(emu, fake_llm, redis_server, member, witness, thread)
    other = emu.add_text_channel(emu.guild, "elsewhere")
    await asyncio.sleep(0.2)
    await assert_answered(emu, member, other)  # only that channel
    assert "<#" in await command(emu, mod, "deny browse")
    assert "No denials" in await command(emu, member, "deny browse")
    await command(emu, mod, "deny remove", {**target, "scope": "channel"})
    await assert_answered(emu, member)

    # personality scope: the character's owner (this seeded one has none: the bot owner).
    refused = await command(
        emu, mod, "deny add", {**target, "scope": "personality", "personality": "Lilith"}
    )
    assert "character's owner" in refused
    assert "now denied from **Lilith the Wise**" in await command(
        emu, owner, "deny add", {**target, "scope": "personality", "personality": "Lilith"}
    )
    await assert_ignored(emu, fake_llm, redis_server, member, witness)
    await command(emu, owner, "deny remove",
                  {**target, "scope": "personality", "personality": "Lilith"})  # fmt: skip
    await assert_answered(emu, member)

    # a whole server, at bot scope; the bot owner is never denied.
    assert "server `" in await command(
        emu, owner, "deny add", {"target": str(emu.guild.id), "scope": "bot"}
    )
    await assert_ignored(emu, fake_llm, redis_server, member, owner)
    assert "can't be denied" in await command(
        emu, owner, "deny add", {"target": str(owner.id), "scope": "bot"}
    )
    assert "isn't" not in await command(emu, member, "history stats")  # commands still answer


# -- rate limits -------------------------------------------------------------------------------


async def test_rate_limits_tell_once_and_enqueue_nothing(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM,
    redis_server: RedisServer,
) -> None:  # fmt: skip
    emu = discord_emulator
    member, mod, owner = people(emu)
    await start(start_bot, owner, RATE_LIMIT_USER_PER_MINUTE="2")
    dm = emu.world.dm_channel(member)

    for n in range(2):
        await emu.post_message(emu.channel, member, f"@Lilith number {n}")
        await wait_replies(emu, emu.channel, n + 1)
    third = await emu.post_message(emu.channel, member, "@Lilith number 2")
    (notice,) = await emu.wait_for_messages(dm, 1, timeout=10)
    assert "Try again in" in notice.content and "<t:" in notice.content
    await emu.post_message(emu.channel, member, "@Lilith number 3")
    await asyncio.sleep(0.5)
    assert len(emu.bot_messages(dm)) == 1  # told once
    assert len(fake_llm.chat_calls) == 2
    assert len(character_replies(emu, emu.channel)) == 2
    assert keys_naming(redis_server, str(third.id)) == []

    chat = await emu.slash_command(emu.channel, member, "chat", {"personality": "Lilith",
                                                                 "message": "please"})  # fmt: skip
    (refusal,) = await chat.wait_for_followups(1, timeout=10)
    assert "Try again in" in refusal.content and refusal.is_ephemeral
    assert chat.original is not None and chat.original.deleted  # no public trace

    # With DMs closed, a short reply in the channel that pings nobody.
    mod_dm = emu.world.dm_channel(mod)
    emu.close_dms(mod)
    for n in range(2):
        await emu.post_message(emu.channel, mod, f"@Lilith mod {n}")
        await wait_replies(emu, emu.channel, 3 + n)
    before = len(emu.bot_messages(emu.channel))
    await emu.post_message(emu.channel, mod, "@Lilith mod 2")
    async with asyncio.timeout(10):
        while len(emu.bot_messages(emu.channel)) == before:
            await asyncio.sleep(0.05)
    notice = emu.bot_messages(emu.channel)[-1]
    assert "Try again in" in notice.content and notice.webhook_id is None
    assert notice.mention_ids == [] and emu.bot_messages(mod_dm) == []

    # The bot owner is never limited.
    for n in range(3):
        await emu.post_message(emu.channel, owner, f"@Lilith owner {n}")
        await wait_replies(emu, emu.channel, 5 + n)
    assert len(fake_llm.chat_calls) == 7
