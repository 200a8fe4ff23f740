"""Sharding in the Discord emulator, driven by real hikari GatewayBots (one or several)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import hikari
import pytest

from tests.emulator import DiscordEmulator, Guild, make_gateway_bot, running_bot
from tests.emulator.hikari_helpers import Events

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def two_processes(
    emu: DiscordEmulator, *, intents_1: hikari.Intents | None = None
) -> AsyncIterator[tuple[hikari.GatewayBot, hikari.GatewayBot]]:
    """Two GatewayBots of the same application: shard 0 of 2 and shard 1 of 2."""
    bot_0 = make_gateway_bot(emu)
    bot_1 = make_gateway_bot(emu) if intents_1 is None else make_gateway_bot(emu, intents=intents_1)
    async with (
        running_bot(bot_0, emu, shard_ids=[0], shard_count=2),
        running_bot(bot_1, emu, shard_ids=[1], shard_count=2),
    ):
        yield bot_0, bot_1


def _guild_per_shard(emu: DiscordEmulator) -> tuple[Guild, Guild]:
    guild_0 = emu.add_guild("Shard Zero", shard=0, shard_count=2)
    guild_1 = emu.add_guild("Shard One", shard=1, shard_count=2)
    emu.add_text_channel(guild_0, "zero")
    emu.add_text_channel(guild_1, "one")
    return guild_0, guild_1


def test_add_guild_picks_an_id_on_the_wanted_shard() -> None:
    emu = DiscordEmulator()
    for count in (2, 3, 5):
        for shard in range(count):
            guild = emu.add_guild(f"g{shard}/{count}", shard=shard, shard_count=count)
            assert (guild.id >> 22) % count == shard
            assert emu.shard_of(guild, count) == shard
    ids = [g.id for g in emu.world.guilds.values()]
    assert ids == sorted(ids)  # still strictly increasing snowflakes
    assert emu.shard_of(emu.guild) == 0  # settings.shards defaults to 1
    with pytest.raises(ValueError, match="does not exist"):
        emu.add_guild("nope", shard=2, shard_count=2)


async def test_gateway_bot_recommends_the_configured_shard_count(
    discord_emulator: DiscordEmulator,
) -> None:
    """One GatewayBot that takes the recommendation runs both shards; each shard's READY
    lists only its own guilds."""
    emu = discord_emulator
    emu.settings.shards = 2
    emu.settings.max_concurrency = 2  # both shards in one startup window (else hikari waits 5 s)
    guild_0, guild_1 = _guild_per_shard(emu)
    bot = make_gateway_bot(emu)
    async with running_bot(bot, emu):
        await emu.wait_for_shards([0, 1])
        assert sorted(i["shard"][0] for i in emu.gateway_log.identifies) == [0, 1]
        assert {tuple(i["shard"]) for i in emu.gateway_log.identifies} == {(0, 2), (1, 2)}
        assert sorted(bot.shards) == [0, 1]
        assert emu.connected_shards() == [0, 1]
        for shard, guild in ((0, guild_0), (1, guild_1)):
            (ready,) = emu.dispatches("READY", shard=shard)
            assert ready.data["shard"] == [shard, 2]
            listed = {int(g["id"]) for g in ready.data["guilds"]}
            assert guild.id in listed
            assert all(emu.shard_of(g, 2) == shard for g in listed)
            creates = {int(d.data["id"]) for d in emu.dispatches("GUILD_CREATE", shard=shard)}
            assert creates == listed
            assert bot.cache.get_guild(guild.id) is not None
        session_0, session_1 = emu.session_for(0), emu.session_for(1)
        assert session_0 is not None
        assert session_1 is not None
        assert session_0.id != session_1.id

        events = Events(bot, hikari.GuildMessageCreateEvent)
        alice = emu.add_user("alice")
        channel_1 = emu.world.channels[guild_1.channel_ids[0]]
        sent = await emu.post_message(channel_1, alice, "to shard one")
        event = await events.next()
        assert event.shard.id == 1
        assert emu.shards_that_received(sent) == [1]


async def test_two_processes_each_get_only_their_guilds_and_dms_go_to_shard_0(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    guild_0, guild_1 = _guild_per_shard(emu)
    channel_0 = emu.world.channels[guild_0.channel_ids[0]]
    channel_1 = emu.world.channels[guild_1.channel_ids[0]]
    async with two_processes(emu) as (bot_0, bot_1):
        assert bot_0.cache.get_guild(guild_0.id) is not None
        assert bot_0.cache.get_guild(guild_1.id) is None
        assert bot_1.cache.get_guild(guild_1.id) is not None
        assert bot_1.cache.get_guild(guild_0.id) is None
        messages_0 = Events(bot_0, hikari.GuildMessageCreateEvent)
        messages_1 = Events(bot_1, hikari.GuildMessageCreateEvent)
        dms_0 = Events(bot_0, hikari.DMMessageCreateEvent)
        dms_1 = Events(bot_1, hikari.DMMessageCreateEvent)
        interactions_0 = Events(bot_0, hikari.InteractionCreateEvent)
        interactions_1 = Events(bot_1, hikari.InteractionCreateEvent)
        alice = emu.add_user("alice")

        in_0 = await emu.post_message(channel_0, alice, "hello zero")
        in_1 = await emu.post_message(channel_1, alice, "hello one")
        dm = await emu.send_dm(alice, "psst")
        assert (await messages_0.next()).message.id == in_0.id
        assert (await messages_1.next()).message.id == in_1.id
        assert (await dms_0.next()).message.id == dm.id
        assert emu.shards_that_received(in_0) == [0]
        assert emu.shards_that_received(in_1) == [1]
        assert emu.shards_that_received(dm) == [0]

        in_guild = await emu.slash_command(channel_1, alice, "help")
        in_dm = await emu.slash_command(emu.world.dm_channel(alice), alice, "help")
        assert (await interactions_1.next()).interaction.id == in_guild.id
        assert (await interactions_0.next()).interaction.id == in_dm.id
        assert emu.shards_that_received(in_guild) == [1]
        assert emu.shards_that_received(in_dm) == [0]

        # Guild events while running go to the guild's shard only.
        joined = Events(bot_0, hikari.GuildJoinEvent)
        thread = emu.add_thread(channel_1, "side")
        role = emu.add_role(guild_1, "mods", 0)
        emu.add_text_channel(guild_1, "more")
        guild_2 = emu.add_guild("Late Joiner", shard=0, shard_count=2)
        assert (await joined.next()).guild_id == guild_2.id
        await emu.post_message(thread, alice, "in the thread")
        assert (await messages_1.next()).channel_id == thread.id
        for event_name in ("THREAD_CREATE", "GUILD_ROLE_CREATE", "CHANNEL_CREATE"):
            shards = {d.shard_id for d in emu.dispatches(event_name)}
            assert shards == {1}, event_name
        assert [
            d.shard_id for d in emu.dispatches("GUILD_CREATE") if d.data["id"] == str(guild_2.id)
        ] == [0]
        assert bot_1.cache.get_role(role.id) is not None
        assert bot_0.cache.get_role(role.id) is None
        assert bot_0.cache.get_guild(guild_2.id) is not None
        assert bot_1.cache.get_guild(guild_2.id) is None
        assert messages_0.pending() == []
        assert messages_1.pending() == []
        assert dms_0.pending() == []
        assert dms_1.pending() == []
        assert interactions_0.pending() == []
        assert interactions_1.pending() == []


async def test_content_intent_is_per_session(discord_emulator: DiscordEmulator) -> None:
    """Each process gets content according to its own IDENTIFY."""
    emu = discord_emulator
    guild_0, guild_1 = _guild_per_shard(emu)
    channel_0 = emu.world.channels[guild_0.channel_ids[0]]
    channel_1 = emu.world.channels[guild_1.channel_ids[0]]
    async with two_processes(emu, intents_1=hikari.Intents.ALL_UNPRIVILEGED) as (bot_0, bot_1):
        events_0 = Events(bot_0, hikari.GuildMessageCreateEvent)
        events_1 = Events(bot_1, hikari.GuildMessageCreateEvent)
        alice = emu.add_user("alice")
        await emu.post_message(channel_0, alice, "visible")
        await emu.post_message(channel_1, alice, "hidden")
        assert (await events_0.next()).content == "visible"
        assert (await events_1.next()).content is None
        await emu.post_message(channel_1, alice, f"hi {emu.bot_user.mention}")
        assert (await events_1.next()).content == f"hi {emu.bot_user.mention}"


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "tcp-abort"])
async def test_resume_of_one_shard_does_not_disturb_the_other(
    discord_emulator: DiscordEmulator, abrupt: bool
) -> None:
    emu = discord_emulator
    guild_0, guild_1 = _guild_per_shard(emu)
    channel_0 = emu.world.channels[guild_0.channel_ids[0]]
    channel_1 = emu.world.channels[guild_1.channel_ids[0]]
    async with two_processes(emu) as (bot_0, bot_1):
        events_0 = Events(bot_0, hikari.GuildMessageCreateEvent)
        events_1 = Events(bot_1, hikari.GuildMessageCreateEvent)
        alice = emu.add_user("alice")
        session_0 = emu.session_for(0)
        session_1 = emu.session_for(1)
        assert session_0 is not None
        assert session_1 is not None

        await emu.drop_connection(shard=1, abrupt=abrupt)
        assert emu.connected_shards() == [0]
        away = [await emu.post_message(channel_1, alice, f"while away {i}") for i in range(2)]
        assert [d.sent for d in emu.dispatches("MESSAGE_CREATE", shard=1)] == [False, False]
        await emu.post_message(channel_0, alice, "shard zero carries on")
        assert (await events_0.next()).content == "shard zero carries on"

        await emu.wait_for_resume(shard=1)
        await emu.post_message(channel_1, alice, "after")
        contents = [(await events_1.next(timeout=10)).content for _ in range(3)]
        assert contents == ["while away 0", "while away 1", "after"]
        replays = [d for d in emu.dispatches("MESSAGE_CREATE", shard=1) if d.replayed]
        assert [d.data["id"] for d in replays] == [str(m.id) for m in away]

        (resume,) = emu.gateway_log.resumes
        assert resume["session_id"] == session_1.id
        assert emu.gateway_log.resumed_shards == [1]
        assert emu.session_for(0) is session_0
        assert emu.session_for(1) is session_1
        assert len(emu.gateway_log.identifies) == 2
        assert events_0.pending() == []
        assert events_1.pending() == []


async def test_invalidated_shard_reidentifies_alone(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    guild_0, guild_1 = _guild_per_shard(emu)
    channel_0 = emu.world.channels[guild_0.channel_ids[0]]
    channel_1 = emu.world.channels[guild_1.channel_ids[0]]
    async with two_processes(emu) as (bot_0, bot_1):
        old_1 = emu.session_for(1)
        assert old_1 is not None
        await emu.invalidate_session(shard=1)
        await emu.world.notifier.wait_for(
            lambda: emu.gateway_log.ready_shards == [0, 1, 1] and emu.gateway.shard_ready(1),
            10,
            lambda: f"shard 1 to IDENTIFY again; READYs {emu.gateway_log.ready_shards}",
        )
        new_1 = emu.session_for(1)
        assert new_1 is not None
        assert new_1.id != old_1.id
        assert old_1.ended
        assert emu.gateway_log.resumes == []
        events_0 = Events(bot_0, hikari.GuildMessageCreateEvent)
        events_1 = Events(bot_1, hikari.GuildMessageCreateEvent)
        alice = emu.add_user("alice")
        await emu.post_message(channel_0, alice, "zero")
        await emu.post_message(channel_1, alice, "one")
        assert (await events_0.next()).content == "zero"
        assert (await events_1.next()).content == "one"
    # Both processes closed with 1001: Discord ends those sessions.
    assert all(s.ended for s in emu.gateway.sessions.values())


async def test_a_shard_that_is_not_connected_gets_nothing(
    discord_emulator: DiscordEmulator,
) -> None:
    """Only shard 0 of 2 runs: shard 1's guild events have nowhere to go (as on Discord)."""
    emu = discord_emulator
    _, guild_1 = _guild_per_shard(emu)
    bot = make_gateway_bot(emu)
    async with running_bot(bot, emu, shard_ids=[0], shard_count=2):
        await emu.wait_until_ready(shard=0)
        with pytest.raises(TimeoutError):
            await emu.wait_until_ready(timeout=0.2, shard=1)
        alice = emu.add_user("alice")
        lost = await emu.post_message(emu.world.channels[guild_1.channel_ids[0]], alice, "lost")
        assert emu.shards_that_received(lost) == []
        assert [e for e, _ in emu.gateway_log.unrouted] == ["MESSAGE_CREATE"]


async def _raw_receive(ws: aiohttp.ClientWebSocketResponse, inflater: Any) -> dict[str, Any]:
    """The next frame, inflated; ``{"closed": code}`` once the server closed."""
    frame = await asyncio.wait_for(ws.receive(), 5)
    if frame.type != aiohttp.WSMsgType.BINARY:
        return {"closed": ws.close_code}
    decoded: dict[str, Any] = json.loads(inflater.decompress(frame.data))
    return decoded


async def test_raw_identify_with_shard_and_resume_rules(discord_emulator: DiscordEmulator) -> None:
    """A bad shard closes with 4010; a session ended by a 1000 close cannot RESUME."""
    emu = discord_emulator
    guild_1 = emu.add_guild("Shard One", shard=1, shard_count=2)
    url = f"{emu.gateway_url}?v=10&encoding=json&compress=zlib-stream"
    identify = {"token": emu.token, "intents": 513, "properties": {}}
    async with aiohttp.ClientSession() as http_session:
        async with http_session.ws_connect(url) as ws:
            inflater = zlib.decompressobj()
            assert (await _raw_receive(ws, inflater))["op"] == 10
            await ws.send_str(json.dumps({"op": 2, "d": {**identify, "shard": [2, 2]}}))
            assert (await _raw_receive(ws, inflater)) == {"closed": 4010}

        async with http_session.ws_connect(url) as ws:
            inflater = zlib.decompressobj()
            await _raw_receive(ws, inflater)
            await ws.send_str(json.dumps({"op": 2, "d": {**identify, "shard": [1, 2]}}))
            ready = await _raw_receive(ws, inflater)
            assert ready["t"] == "READY"
            assert ready["d"]["shard"] == [1, 2]
            assert [g["id"] for g in ready["d"]["guilds"]] == [
                str(g) for g in emu.world.guilds if emu.shard_of(g, 2) == 1
            ]
            assert str(guild_1.id) in [g["id"] for g in ready["d"]["guilds"]]
            session_id = ready["d"]["session_id"]
            await ws.close(code=1000)
        await emu.world.notifier.wait_for(
            lambda: emu.gateway.sessions[session_id].ended, 5, lambda: "the session to end"
        )

        async with http_session.ws_connect(url) as ws:
            inflater = zlib.decompressobj()
            await _raw_receive(ws, inflater)
            resume = {"token": emu.token, "session_id": session_id, "seq": 1}
            await ws.send_str(json.dumps({"op": 6, "d": resume}))
            answer = await _raw_receive(ws, inflater)
            assert (answer["op"], answer["d"]) == (9, False)
