"""The Discord emulator, driven by the real hikari GatewayBot (and hikari-lightbulb)."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import AsyncIterator

import aiohttp
import hikari
import lightbulb
import pytest

from tests.emulator import (
    DEFAULT_INTENTS,
    DiscordEmulator,
    Interaction,
    bot_token,
    make_gateway_bot,
    running_bot,
)
from tests.emulator import payloads as emu_payloads
from tests.emulator.hikari_helpers import Events

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def bot(discord_emulator: DiscordEmulator) -> AsyncIterator[hikari.GatewayBot]:
    gateway_bot = make_gateway_bot(discord_emulator)
    async with running_bot(gateway_bot, discord_emulator):
        yield gateway_bot


# -- connecting -------------------------------------------------------------------------------


def test_bot_token_encodes_the_user_id() -> None:
    token = bot_token(123456789012345678)
    assert hikari.applications.get_token_id(token) == 123456789012345678
    assert "=" not in token.split(".")[0]


async def test_bot_starts_identifies_and_caches_the_guild(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    identify = emu.gateway_log.identifies[0]
    assert identify["token"] == emu.token
    assert emu.intents == int(DEFAULT_INTENTS)
    assert identify["shard"] == [0, 1]
    assert emu.requests[0].method == "GET"
    assert emu.requests[0].path == "/gateway/bot"
    assert emu.gateway_log.connects == ["/gateway"]
    me = bot.get_me()
    assert me is not None
    assert me.id == emu.bot_user.id
    channel = bot.cache.get_guild_channel(emu.channel.id)
    assert channel is not None
    assert channel.name == "general"
    member = bot.cache.get_member(emu.guild.id, emu.bot_user.id)
    assert member is not None
    roles = [bot.cache.get_role(role_id) for role_id in member.role_ids]
    granted = hikari.Permissions.NONE
    for role in roles:
        assert role is not None
        granted |= role.permissions
    assert granted & hikari.Permissions.MANAGE_WEBHOOKS


async def test_heartbeats_are_acknowledged(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    await discord_emulator.world.notifier.wait_for(
        lambda: discord_emulator.gateway_log.heartbeats >= 1, 5, lambda: "a heartbeat"
    )
    await discord_emulator.world.notifier.wait_for(
        lambda: bot.heartbeat_latency == bot.heartbeat_latency,  # not NaN once ACKed
        5,
        lambda: "a heartbeat ACK",
    )


async def test_gateway_frames_are_one_zlib_stream(discord_emulator: DiscordEmulator) -> None:
    """Raw client: every frame ends with the sync-flush marker and inflates with one inflater."""
    emu = discord_emulator
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{emu.gateway_url}?v=10&encoding=json&compress=zlib-stream") as ws,
    ):
        inflater = zlib.decompressobj()

        async def receive() -> dict[str, object]:
            frame = await asyncio.wait_for(ws.receive(), 5)
            assert frame.type == aiohttp.WSMsgType.BINARY
            assert frame.data.endswith(b"\x00\x00\xff\xff")
            decoded: dict[str, object] = json.loads(inflater.decompress(frame.data))
            return decoded

        hello = await receive()
        assert hello["op"] == 10
        await ws.send_bytes(
            b'{"op":2,"d":{"token":"%s","intents":513,"properties":{},"shard":[0,1]}}'
            % emu.token.encode()
        )
        ready = await receive()
        assert (ready["op"], ready["t"], ready["s"]) == (0, "READY", 1)
        guild_create = await receive()
        assert guild_create["t"] == "GUILD_CREATE"
        await ws.send_bytes(b'{"op":1,"d":2}')
        assert (await receive())["op"] == 11


async def test_wrong_token_is_rejected(discord_emulator: DiscordEmulator) -> None:
    other = DiscordEmulator()  # a token for another bot id
    bot = hikari.GatewayBot(
        other.token,
        rest_url=discord_emulator.rest_url,
        logs=None,
        banner=None,
        suppress_optimization_warning=True,
    )
    with pytest.raises(hikari.UnauthorizedError):
        async with running_bot(bot, discord_emulator, timeout=5):
            pass
    assert discord_emulator.requests[-1].status == 401


async def test_privileged_intent_not_enabled_closes_with_4014(
    discord_emulator: DiscordEmulator,
) -> None:
    discord_emulator.settings.application_flags = 0
    bot = make_gateway_bot(discord_emulator)
    with pytest.raises(hikari.GatewayServerClosedConnectionError) as caught:
        async with running_bot(bot, discord_emulator, timeout=5):
            pass
    assert caught.value.code == 4014


# -- receiving messages -----------------------------------------------------------------------


async def test_guild_message_dm_and_thread_reach_the_bot(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    guild_events = Events(bot, hikari.GuildMessageCreateEvent)
    dm_events = Events(bot, hikari.DMMessageCreateEvent)
    alice = emu.add_user("alice")

    sent = await emu.post_message(emu.channel, alice, "hello @Lilith")
    event = await guild_events.next()
    assert event.content == "hello @Lilith"
    assert event.message.id == sent.id
    assert event.author_id == alice.id
    assert event.guild_id == emu.guild.id
    assert event.member is not None

    thread = emu.add_thread(emu.channel, "side chat")
    await emu.post_message(thread, alice, "in a thread")
    event = await guild_events.next()
    assert event.channel_id == thread.id
    cached = bot.cache.get_thread(thread.id)
    assert cached is not None
    assert cached.parent_id == emu.channel.id

    reply = await emu.post_message(emu.channel, alice, "replying", reply_to=sent)
    event = await guild_events.next()
    assert event.message.referenced_message is not None
    assert event.message.referenced_message.id == sent.id
    assert reply.reply_to_id == sent.id

    await emu.send_dm(alice, "psst")
    dm = await dm_events.next()
    assert dm.content == "psst"
    assert dm.author_id == alice.id


async def test_same_message_can_be_delivered_twice(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    events = Events(bot, hikari.GuildMessageCreateEvent)
    message = await emu.post_message(emu.channel, emu.add_user("bob"), "once")
    await emu.replay(message)
    first, second = await events.next(), await events.next()
    assert first.message.id == second.message.id == message.id


async def test_content_is_withheld_without_the_message_content_intent(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    bot = make_gateway_bot(emu, intents=hikari.Intents.ALL_UNPRIVILEGED)
    events = Events(bot, hikari.GuildMessageCreateEvent)
    async with running_bot(bot, emu):
        alice = emu.add_user("alice")
        await emu.post_message(emu.channel, alice, "secret")
        assert (await events.next()).content is None
        await emu.post_message(emu.channel, alice, f"hey {emu.bot_user.mention}")
        assert (await events.next()).content == f"hey {emu.bot_user.mention}"


async def test_the_bots_own_messages_are_echoed_back(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    events = Events(bot, hikari.GuildMessageCreateEvent)
    await bot.rest.create_message(emu.channel.id, "my own words")
    event = await events.next()
    assert event.is_bot
    assert event.author_id == emu.bot_user.id


# -- REST: messages and webhooks ----------------------------------------------------------------


async def test_message_over_2000_characters_is_rejected(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    ok = await bot.rest.create_message(emu.channel.id, "x" * 2000)
    assert len(ok.content or "") == 2000
    with pytest.raises(hikari.BadRequestError) as caught:
        await bot.rest.create_message(emu.channel.id, "x" * 2001)
    assert caught.value.code == 50035
    assert caught.value.errors is not None
    assert "content" in caught.value.errors
    assert [len(m.content) for m in emu.bot_messages(emu.channel)] == [2000]


async def test_edit_delete_typing_and_attachments(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    await bot.rest.trigger_typing(emu.channel.id)
    assert len(emu.typing_in(emu.channel)) == 1
    sent = await bot.rest.create_message(
        emu.channel.id, "with a file", attachment=hikari.Bytes(b"hello", "note.txt")
    )
    record = emu.requests_matching("POST", f"/channels/{emu.channel.id}/messages")[-1]
    assert record.headers["Content-Type"].startswith("multipart/form-data")
    assert record.json["content"] == "with a file"
    assert [(f.filename, f.size) for f in record.files] == [("note.txt", 5)]
    assert sent.attachments[0].filename == "note.txt"

    await bot.rest.edit_message(emu.channel.id, sent.id, "edited")
    (message,) = emu.bot_messages(emu.channel)
    assert message.content == "edited"
    await bot.rest.delete_message(emu.channel.id, sent.id)
    assert message.deleted

    question = await emu.post_message(emu.channel, emu.add_user("alice"), "question?")
    answer = await bot.rest.create_message(emu.channel.id, "answer", reply=question.id)
    assert answer.referenced_message is not None
    assert answer.referenced_message.id == question.id
    assert emu.bot_messages(emu.channel)[-1].reply_to_id == question.id
    with pytest.raises(hikari.BadRequestError):
        await bot.rest.create_message(emu.channel.id, "to nothing", reply=sent.id)  # deleted


async def test_webhook_create_and_execute_is_recorded(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    webhook = await bot.rest.create_webhook(emu.channel.id, "Tzurot")
    assert webhook.token
    assert [w.id for w in emu.webhooks_in(emu.channel)] == [webhook.id]

    sent = await bot.rest.execute_webhook(
        webhook.id,
        webhook.token,
        "Hello from Lilith",
        username="Lilith | Tzurot",
        avatar_url="https://example.org/lilith.png",
        mentions_everyone=False,
        user_mentions=False,
        role_mentions=False,
    )
    assert sent.webhook_id == webhook.id
    assert sent.author.username == "Lilith | Tzurot"
    record = emu.requests_matching("POST", f"/webhooks/{webhook.id}/*")[-1]
    assert record.query["wait"] == "true"
    assert record.authorization is None
    assert record.json["allowed_mentions"] == {"parse": []}

    thread = emu.add_thread(emu.channel)
    await bot.rest.execute_webhook(webhook.id, webhook.token, "in thread", thread=thread.id)

    in_thread = await bot.rest.execute_webhook(webhook.id, webhook.token, "typo", thread=thread.id)
    await bot.rest.edit_webhook_message(
        webhook.id, webhook.token, in_thread.id, "fixed", thread=thread.id
    )
    await bot.rest.delete_webhook_message(webhook.id, webhook.token, in_thread.id, thread=thread.id)

    posted = await emu.wait_for_messages(emu.channel, 3, include_threads=True)
    first, second, third = posted
    assert (third.content, third.deleted, len(third.edits)) == ("fixed", True, 1)
    assert first.content == "Hello from Lilith"
    assert first.username == "Lilith | Tzurot"
    assert first.avatar_url == "https://example.org/lilith.png"
    assert first.allowed_mentions == {"parse": []}
    assert first.webhook_id == webhook.id
    assert first.thread_id is None
    assert second.thread_id == thread.id
    assert second.channel_id == thread.id

    with pytest.raises(hikari.BadRequestError) as caught:
        await bot.rest.execute_webhook(webhook.id, webhook.token, "y" * 2001)
    assert caught.value.code == 50035
    with pytest.raises(hikari.BadRequestError):
        await bot.rest.execute_webhook(webhook.id, webhook.token, "hi", username="Discord bot")


async def test_deleted_webhook_gives_10015(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    webhook = await bot.rest.create_webhook(emu.channel.id, "Tzurot")
    assert webhook.token is not None
    emu.delete_webhook(webhook.id)
    with pytest.raises(hikari.NotFoundError) as caught:
        await bot.rest.execute_webhook(webhook.id, webhook.token, "anyone there?")
    assert caught.value.code == 10015
    assert await bot.rest.fetch_channel_webhooks(emu.channel.id) == []


async def test_creating_a_webhook_needs_manage_webhooks(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    emu.remove_manage_webhooks(emu.channel)
    with pytest.raises(hikari.ForbiddenError) as caught:
        await bot.rest.create_webhook(emu.channel.id, "Tzurot")
    assert caught.value.code == 50013
    thread = emu.add_thread(emu.channel)
    with pytest.raises(hikari.BadRequestError):
        await bot.rest.create_webhook(thread.id, "Tzurot")  # threads have no webhooks


@pytest.mark.parametrize("scope", ["user", "shared"])
async def test_429_with_retry_after_is_retried_by_hikari(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot, scope: str
) -> None:
    emu = discord_emulator
    emu.fail_next("POST", "/channels/*/messages", 429, retry_after=0.4, scope=scope)
    message = await bot.rest.create_message(emu.channel.id, "eventually")
    assert message.content == "eventually"
    first, *retries = emu.requests_matching("POST", "/channels/*/messages")
    assert first.status == 429
    assert first.injected_fault
    assert first.response["retry_after"] == 0.4
    assert first.response["global"] is False
    assert [r.status for r in retries][-1] == 200
    assert all(r.status == 429 for r in retries[:-1])  # Discord keeps saying 429 until reset
    assert retries[-1].at - first.at >= 0.4
    if scope == "shared":  # hikari sleeps the body's retry_after
        assert len(retries) == 1


async def test_500_is_retried_and_other_statuses_surface(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    emu.fail_next("POST", "/channels/*/messages", 503)
    await bot.rest.create_message(emu.channel.id, "after a blip")
    assert [r.status for r in emu.requests_matching("POST", "/channels/*/messages")] == [503, 200]
    emu.fail_next("*", "/channels/*/messages", 403, code=50001, message="Missing Access")
    with pytest.raises(hikari.ForbiddenError) as caught:
        await bot.rest.create_message(emu.channel.id, "nope")
    assert caught.value.code == 50001


async def test_unknown_routes_are_recorded_and_404(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    with pytest.raises(hikari.NotFoundError):
        await bot.rest.fetch_guild_invites(emu.guild.id)
    assert [r.path for r in emu.rest.unknown] == [f"/guilds/{emu.guild.id}/invites"]
    emu.rest.unknown.clear()  # expected here; the fixture warns about the rest


async def test_rest_lookups(discord_emulator: DiscordEmulator, bot: hikari.GatewayBot) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    assert (await bot.rest.fetch_my_user()).id == emu.bot_user.id
    assert (await bot.rest.fetch_application()).id == emu.application_id
    assert (await bot.rest.fetch_guild(emu.guild.id)).name == "Test Guild"
    assert (await bot.rest.fetch_member(emu.guild.id, alice.id)).user.username == "alice"
    assert {r.name for r in await bot.rest.fetch_roles(emu.guild.id)} == {"@everyone", "Tzurot"}
    assert [c.id for c in await bot.rest.fetch_guild_channels(emu.guild.id)] == [emu.channel.id]
    assert (await bot.rest.fetch_channel(emu.channel.id)).name == "general"
    dm = await bot.rest.create_dm_channel(alice.id)
    assert dm.recipient.id == alice.id
    await bot.rest.create_message(dm.id, "**Lilith:** hi")
    (posted,) = await emu.wait_for_messages(emu.world.dm_channel(alice), 1)
    assert posted.content == "**Lilith:** hi"


# -- gateway faults ---------------------------------------------------------------------------


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "tcp-abort"])
async def test_dropped_connection_resumes_without_missing_events(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot, abrupt: bool
) -> None:
    emu = discord_emulator
    events = Events(bot, hikari.GuildMessageCreateEvent)
    alice = emu.add_user("alice")
    await emu.post_message(emu.channel, alice, "before")
    assert (await events.next()).content == "before"

    await emu.drop_connection(abrupt=abrupt)
    await emu.post_message(emu.channel, alice, "while away 1")
    await emu.post_message(emu.channel, alice, "while away 2")
    await emu.wait_for_resume(timeout=10)
    await emu.post_message(emu.channel, alice, "after")

    contents = [(await events.next(timeout=10)).content for _ in range(3)]
    assert contents == ["while away 1", "while away 2", "after"]
    assert events.queue.empty()
    (resume,) = emu.gateway_log.resumes
    assert resume["session_id"] == emu.gateway.session.id  # type: ignore[union-attr]
    assert emu.gateway_log.connects == ["/gateway", "/gateway/resume"]
    assert len(emu.gateway_log.identifies) == 1


@pytest.mark.parametrize("kind", ["reconnect", "invalid-session"])
async def test_reconnect_resumes_and_invalid_session_reidentifies(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot, kind: str
) -> None:
    emu = discord_emulator
    events = Events(bot, hikari.GuildMessageCreateEvent)
    if kind == "reconnect":
        await emu.send_reconnect()
        await emu.wait_for_resume()
        assert len(emu.gateway_log.identifies) == 1
    else:
        await emu.invalidate_session(resumable=False)
        await emu.world.notifier.wait_for(
            lambda: emu.gateway_log.ready_count == 2 and emu.gateway.connected,
            10,
            lambda: "a second IDENTIFY",
        )
        assert emu.gateway_log.resumes == []
    await emu.post_message(emu.channel, emu.add_user("alice"), "still here")
    assert (await events.next()).content == "still here"


# -- interactions -----------------------------------------------------------------------------


async def _interaction_handled_by(
    bot: hikari.GatewayBot, go: asyncio.Event
) -> asyncio.Future[hikari.CommandInteraction]:
    """Subscribe a handler that defers (after ``go`` is set), then edits @original."""
    done: asyncio.Future[hikari.CommandInteraction] = asyncio.get_running_loop().create_future()

    async def on_interaction(event: hikari.InteractionCreateEvent) -> None:
        interaction = event.interaction
        assert isinstance(interaction, hikari.CommandInteraction)
        await go.wait()
        try:
            await interaction.create_initial_response(hikari.ResponseType.DEFERRED_MESSAGE_CREATE)
            await interaction.edit_initial_response("done thinking")
        except hikari.HTTPError as error:
            done.set_exception(error)
        else:
            done.set_result(interaction)

    bot.subscribe(hikari.InteractionCreateEvent, on_interaction)
    return done


async def test_deferred_interaction_in_time_succeeds(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    go = asyncio.Event()
    go.set()
    done = await _interaction_handled_by(bot, go)
    alice = emu.add_user("alice")
    interaction = await emu.slash_command(
        emu.channel, alice, "chat", {"personality": "lilith", "message": "hi"}
    )
    received = await asyncio.wait_for(done, 5)
    assert received.command_name == "chat"
    assert [(o.name, o.value) for o in received.options] == [
        ("personality", "lilith"),
        ("message", "hi"),
    ]
    assert received.member is not None
    assert received.member.id == alice.id
    assert [r["type"] for r in interaction.responses] == [5]
    assert interaction.deferred_at is not None
    assert interaction.dispatched_at is not None
    assert interaction.deferred_at - interaction.dispatched_at < 3
    assert await interaction.wait_for_content() == "done thinking"
    assert [m.content for m in emu.bot_messages(emu.channel)] == ["done thinking"]


async def test_callback_after_3_seconds_gets_10062(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    go = asyncio.Event()
    done = await _interaction_handled_by(bot, go)
    interaction = await emu.slash_command(emu.channel, emu.add_user("alice"), "chat")
    assert interaction.dispatched_at is not None
    interaction.dispatched_at -= 3.01  # as if the bot had been busy for 3 s
    go.set()
    with pytest.raises(hikari.NotFoundError) as caught:
        await asyncio.wait_for(done, 5)
    assert caught.value.code == 10062
    assert interaction.rejected == [(404, 10062)]
    assert interaction.responses == []


async def test_only_one_callback_per_interaction(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    outcome: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_interaction(event: hikari.InteractionCreateEvent) -> None:
        interaction = event.interaction
        assert isinstance(interaction, hikari.CommandInteraction)
        await interaction.create_initial_response(hikari.ResponseType.MESSAGE_CREATE, "first")
        try:
            await interaction.create_initial_response(hikari.ResponseType.MESSAGE_CREATE, "again")
        except hikari.BadRequestError as error:
            outcome.set_result(error.code)

    bot.subscribe(hikari.InteractionCreateEvent, on_interaction)
    interaction = await emu.slash_command(emu.channel, emu.add_user("alice"), "help")
    assert await asyncio.wait_for(outcome, 5) == 40060
    assert interaction.original is not None
    assert interaction.original.content == "first"


async def test_subcommands_user_options_and_dm_interactions(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    events = Events(bot, hikari.InteractionCreateEvent)
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    await emu.slash_command(emu.channel, alice, "settings apikey set", {"key": "sk-1", "user": bob})
    interaction = (await events.next()).interaction
    assert isinstance(interaction, hikari.CommandInteraction)
    (group,) = interaction.options
    assert (group.name, group.type) == ("apikey", hikari.OptionType.SUB_COMMAND_GROUP)
    (sub,) = group.options or []
    assert (sub.name, sub.type) == ("set", hikari.OptionType.SUB_COMMAND)
    key, user = sub.options or []
    assert (key.value, user.value) == ("sk-1", bob.id)
    assert interaction.resolved is not None
    assert bob.id in interaction.resolved.users

    dm_channel = emu.world.dm_channel(alice)
    await emu.slash_command(dm_channel, alice, "help")
    in_dm = (await events.next()).interaction
    assert isinstance(in_dm, hikari.CommandInteraction)
    assert in_dm.guild_id is None
    assert in_dm.user.id == alice.id


async def test_followups_and_the_15_minute_token(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    events = Events(bot, hikari.InteractionCreateEvent)
    interaction = await emu.slash_command(emu.channel, emu.add_user("alice"), "chat")
    received = (await events.next()).interaction
    assert isinstance(received, hikari.CommandInteraction)
    await received.create_initial_response(hikari.ResponseType.DEFERRED_MESSAGE_CREATE)
    first = await received.execute("part one")  # fills the "thinking" message
    second = await received.execute("part two")  # a new message
    assert interaction.original is not None
    assert first.id == interaction.original.id
    assert second.id != first.id
    assert [m.content for m in await interaction.wait_for_followups(2)] == ["part one", "part two"]
    assert [m.content for m in emu.bot_messages(emu.channel)] == ["part one", "part two"]

    assert interaction.dispatched_at is not None
    interaction.dispatched_at -= 15 * 60 + 1
    with pytest.raises(hikari.UnauthorizedError) as caught:
        await received.edit_initial_response("too late")
    assert caught.value.code == 50027


# -- lightbulb ----------------------------------------------------------------------------------


async def test_lightbulb_syncs_commands_and_answers_an_interaction(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    bot = make_gateway_bot(emu)
    client = lightbulb.client_from_app(bot, default_enabled_guilds=[emu.guild.id])
    client_started = asyncio.Event()

    async def start_client(event: hikari.StartedEvent) -> None:
        await client.start()
        client_started.set()

    bot.subscribe(hikari.StartedEvent, start_client)
    names = ["Lilith", "Lily", "Aria"]

    async def suggest(ctx: lightbulb.AutocompleteContext[str]) -> None:
        typed = str(ctx.focused.value).lower()
        await ctx.respond([n for n in names if n.lower().startswith(typed)])

    @client.register()
    class Chat(lightbulb.SlashCommand, name="chat", description="Talk to a personality"):
        personality = lightbulb.string("personality", "who", autocomplete=suggest)
        message = lightbulb.string("message", "what")

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.defer()
            await ctx.edit_response(-1, f"{self.personality} heard: {self.message}")

    history = lightbulb.Group("history", "Conversation history")

    @history.register()
    class Clear(lightbulb.SlashCommand, name="clear", description="Forget this channel"):
        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            await ctx.respond("cleared", ephemeral=True)

    client.register(history)

    async with running_bot(bot, emu):
        await asyncio.wait_for(client_started.wait(), 5)  # commands synced
        path = f"/applications/{emu.application_id}/guilds/{emu.guild.id}/commands"
        (put,) = emu.requests_matching("PUT", path)
        assert sorted(c["name"] for c in put.json) == ["chat", "history"]
        assert sorted(c["name"] for c in emu.commands(emu.guild)) == ["chat", "history"]
        startup = [(r.method, r.path) for r in emu.requests]
        assert ("GET", "/oauth2/applications/@me") in startup
        assert ("GET", f"/applications/{emu.application_id}/commands") in startup

        alice = emu.add_user("alice")
        interaction = await emu.slash_command(
            emu.channel, alice, "chat", {"personality": "Lilith", "message": "hello"}
        )
        await interaction.wait_for_edit()
        assert interaction.responses[0]["type"] == 5
        assert await interaction.wait_for_content() == "Lilith heard: hello"
        edits = emu.requests_matching(
            "PATCH", f"/webhooks/{emu.application_id}/{interaction.token}/messages/@original"
        )
        assert len(edits) == 1

        cleared = await emu.slash_command(emu.channel, alice, "history clear")
        response = await cleared.wait_for_response()
        assert response["type"] == 4
        assert response["data"]["content"] == "cleared"
        assert response["data"]["flags"] == 64

        suggestion: Interaction = await emu.autocomplete(
            emu.channel, alice, "chat", {"personality": "li", "message": ""}, focused="personality"
        )
        await suggestion.wait_for_response()
        assert [c["name"] for c in suggestion.choices or []] == ["Lilith", "Lily"]


# -- payload shapes -----------------------------------------------------------------------------


async def test_payloads_deserialize_with_hikari(discord_emulator: DiscordEmulator) -> None:
    """Every shape the emulator emits goes through hikari's own entity factory."""
    emu = discord_emulator
    world = emu.world
    factory = make_gateway_bot(emu).entity_factory
    alice = emu.add_user("alice")
    thread = emu.add_thread(emu.channel)
    world.dm_channel(alice)

    guild_def = factory.deserialize_gateway_guild(
        emu_payloads.gateway_guild(world, emu.guild, initially_unavailable=True),
        user_id=hikari.Snowflake(emu.bot_user.id),
    )
    assert guild_def.guild().name == "Test Guild"
    assert set(guild_def.channels()) == {emu.channel.id}
    assert set(guild_def.threads()) == {thread.id}
    assert alice.id in guild_def.members()
    assert emu.guild.id in guild_def.roles()
    assert factory.deserialize_rest_guild(emu_payloads.rest_guild(emu.guild)).id == emu.guild.id
    for channel in world.channels.values():
        assert factory.deserialize_channel(emu_payloads.channel(world, channel)).id == channel.id
    assert (
        factory.deserialize_application(emu_payloads.application(world, 0)).id == emu.application_id
    )
    assert factory.deserialize_my_user(emu_payloads.own_user(emu.bot_user)).is_bot
    message = emu.core.new_message(
        emu.channel, alice, {"content": f"hi {emu.bot_user.mention}"}, [], source="user"
    )
    parsed = factory.deserialize_message(emu_payloads.message(world, message))
    assert parsed.user_mentions_ids == [emu.bot_user.id]
