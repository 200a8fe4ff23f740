"""Lost access, deleted channels, closed DMs, message history and webhook reuse in the
Discord emulator, driven by the real hikari client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
import hikari
import pytest

from tests.emulator import DiscordEmulator, Message, make_gateway_bot, running_bot
from tests.emulator.hikari_helpers import Events

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def bot(discord_emulator: DiscordEmulator) -> AsyncIterator[hikari.GatewayBot]:
    gateway_bot = make_gateway_bot(discord_emulator)
    async with running_bot(gateway_bot, discord_emulator):
        yield gateway_bot


async def _get(emu: DiscordEmulator, path: str, **query: str) -> tuple[int, Any]:
    """A raw authenticated GET, to check exactly what Discord answers."""
    headers = {"Authorization": f"Bot {emu.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{emu.rest_url}{path}", params=query, headers=headers) as response,
    ):
        return response.status, await response.json()


# -- lost access ------------------------------------------------------------------------------


async def test_lost_access_gives_50001_but_existing_webhooks_still_work(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    channel = emu.channel
    webhook = await bot.rest.create_webhook(channel.id, "Tzurot")
    assert webhook.token is not None
    events = Events(bot, hikari.GuildMessageCreateEvent)
    updates = Events(bot, hikari.GuildChannelUpdateEvent)

    emu.lose_access(channel)
    assert (await updates.next()).channel_id == channel.id
    attempts: dict[str, Awaitable[object]] = {
        "send": bot.rest.create_message(channel.id, "hello?"),
        "create webhook": bot.rest.create_webhook(channel.id, "Tzurot 2"),
        "list webhooks": bot.rest.fetch_channel_webhooks(channel.id),
        "fetch channel": bot.rest.fetch_channel(channel.id),
        "typing": bot.rest.trigger_typing(channel.id),
    }
    for what, attempt in attempts.items():
        with pytest.raises(hikari.ForbiddenError) as caught:
            await attempt
        assert (caught.value.code, caught.value.message) == (50001, "Missing Access"), what
    assert await _get(emu, f"/channels/{channel.id}/messages") == (
        403,
        {"message": "Missing Access", "code": 50001},
    )
    # Webhooks are authenticated by their token: they keep working, as on Discord.
    posted = await bot.rest.execute_webhook(webhook.id, webhook.token, "still here")
    assert posted.webhook_id == webhook.id
    # The bot no longer sees what is said there.
    alice = emu.add_user("alice")
    unseen = await emu.post_message(channel, alice, "you cannot read this")
    assert any(d["id"] == str(unseen.id) for e, d in emu.gateway_log.filtered)

    emu.regain_access(channel)
    await bot.rest.create_message(channel.id, "back")
    seen = await emu.post_message(channel, alice, "welcome back")
    received = await events.next()
    while received.message.id != seen.id:  # the bot's own echoes come first
        received = await events.next()
    assert received.content == "welcome back"


async def test_a_permission_the_bot_lacks_is_50013_not_50001(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    emu.set_permissions(emu.channel, emu.bot_user, deny=int(hikari.Permissions.SEND_MESSAGES))
    with pytest.raises(hikari.ForbiddenError) as caught:
        await bot.rest.create_message(emu.channel.id, "hi")
    assert caught.value.code == 50013


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(403, 50013, hikari.ForbiddenError), (404, 10015, hikari.NotFoundError)],
)
async def test_refused_webhooks(
    discord_emulator: DiscordEmulator,
    bot: hikari.GatewayBot,
    status: int,
    code: int,
    error: type[hikari.HTTPResponseError],
) -> None:
    emu = discord_emulator
    webhook = await bot.rest.create_webhook(emu.channel.id, "Tzurot")
    assert webhook.token is not None
    earlier = await bot.rest.execute_webhook(webhook.id, webhook.token, "before")
    thread = emu.add_thread(emu.channel)

    refusal = emu.refuse_webhooks(emu.channel, status=status, code=code)
    with pytest.raises(error) as caught:
        await bot.rest.execute_webhook(webhook.id, webhook.token, "now")
    assert caught.value.code == code
    with pytest.raises(error):
        await bot.rest.execute_webhook(webhook.id, webhook.token, "in thread", thread=thread.id)
    with pytest.raises(error):
        await bot.rest.edit_webhook_message(webhook.id, webhook.token, earlier.id, "edited")
    assert refusal.refused == 3
    assert all(r.injected_fault for r in emu.requests_matching("*", "/webhooks/*")[-3:])
    await bot.rest.create_message(emu.channel.id, "the bot itself can still post")

    emu.refuse_webhooks(emu.channel, status=status, code=code, execute_only=True)
    await bot.rest.edit_webhook_message(webhook.id, webhook.token, earlier.id, "edited")
    with pytest.raises(error):
        await bot.rest.execute_webhook(webhook.id, webhook.token, "now")

    emu.accept_webhooks(emu.channel)
    after = await bot.rest.execute_webhook(webhook.id, webhook.token, "after")
    contents = [m.content for m in emu.bot_messages(emu.channel)]
    assert contents == ["edited", "the bot itself can still post", "after"]
    assert after.webhook_id == webhook.id


async def test_deleted_channel_is_unknown_everywhere(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    channel = emu.add_text_channel(emu.guild, "doomed")
    other = emu.add_text_channel(emu.guild, "survivor")
    webhook = await bot.rest.create_webhook(channel.id, "Tzurot")
    assert webhook.token is not None
    await bot.rest.execute_webhook(webhook.id, webhook.token, "last words")
    thread = emu.add_thread(channel, "sub")
    deletes = Events(bot, hikari.GuildChannelDeleteEvent)
    thread_deletes = Events(bot, hikari.GuildThreadDeleteEvent)

    emu.delete_channel(channel)
    assert (await deletes.next()).channel_id == channel.id
    assert (await thread_deletes.next()).thread_id == thread.id
    assert bot.cache.get_guild_channel(channel.id) is None

    for target in (channel.id, thread.id):
        for attempt in (
            bot.rest.create_message(target, "hello?"),
            bot.rest.fetch_channel(target),
            bot.rest.trigger_typing(target),
        ):
            with pytest.raises(hikari.NotFoundError) as caught:
                await attempt
            assert (caught.value.code, caught.value.message) == (10003, "Unknown Channel")
    with pytest.raises(hikari.NotFoundError) as caught:
        await bot.rest.create_webhook(channel.id, "Tzurot")
    assert caught.value.code == 10003
    assert (await _get(emu, f"/channels/{channel.id}/messages"))[1]["code"] == 10003
    assert (await _get(emu, f"/channels/{channel.id}/webhooks"))[1]["code"] == 10003
    with pytest.raises(hikari.NotFoundError) as caught:
        await bot.rest.execute_webhook(webhook.id, webhook.token, "anyone?")
    assert caught.value.code == 10015
    assert emu.webhooks_in(channel) == []
    listed = [c.id for c in await bot.rest.fetch_guild_channels(emu.guild.id)]
    assert channel.id not in listed
    assert other.id in listed
    assert emu.channel.id != channel.id
    assert [m.content for m in emu.bot_messages(channel)] == ["last words"]  # kept for asserts
    with pytest.raises(ValueError, match="deleted"):
        await emu.post_message(channel, emu.add_user("alice"), "hm")


async def test_closed_dms_give_50007(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    loner = emu.add_user("loner", guilds=[])
    dm = await bot.rest.create_dm_channel(alice.id)
    emu.close_dms(alice)
    assert (await bot.rest.create_dm_channel(alice.id)).id == dm.id  # opening still works
    with pytest.raises(hikari.ForbiddenError) as caught:
        await bot.rest.create_message(dm.id, "hello?")
    assert (caught.value.code, caught.value.message) == (50007, "Cannot send messages to this user")
    emu.open_dms(alice)
    await bot.rest.create_message(dm.id, "hello!")
    assert [m.content for m in emu.bot_messages(emu.world.dm_channel(alice))] == ["hello!"]

    lonely_dm = await bot.rest.create_dm_channel(loner.id)
    with pytest.raises(hikari.ForbiddenError) as caught:
        await bot.rest.create_message(lonely_dm.id, "we share no server")
    assert caught.value.code == 50007


# -- history ----------------------------------------------------------------------------------


async def test_message_history_paging(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    channel = emu.channel
    alice = emu.add_user("alice")
    posted: list[Message] = [await emu.post_message(channel, alice, f"m{i}") for i in range(60)]
    ids = [m.id for m in posted]
    path = f"/channels/{channel.id}/messages"

    def contents(body: list[dict[str, Any]]) -> list[str]:
        return [m["content"] for m in body]

    status, body = await _get(emu, path)
    assert status == 200
    assert contents(body) == [f"m{i}" for i in range(59, 9, -1)]  # 50, newest first
    assert contents((await _get(emu, path, limit="3"))[1]) == ["m59", "m58", "m57"]
    before = await _get(emu, path, limit="3", before=str(ids[10]))
    assert contents(before[1]) == ["m9", "m8", "m7"]
    after = await _get(emu, path, limit="3", after=str(ids[10]))
    assert contents(after[1]) == ["m13", "m12", "m11"]
    around = await _get(emu, path, limit="5", around=str(ids[30]))
    assert contents(around[1]) == ["m32", "m31", "m30", "m29", "m28"]
    assert contents((await _get(emu, path, limit="1", around=str(ids[30])))[1]) == ["m30"]
    assert contents((await _get(emu, path, limit="100"))[1])[-1] == "m0"
    for bad in ("0", "101", "many"):
        status, body = await _get(emu, path, limit=bad)
        assert (status, body["code"]) == (400, 50035), bad
        assert "limit" in body["errors"]
    status, body = await _get(emu, path, before=str(ids[1]), after=str(ids[0]))
    assert (status, body["code"]) == (400, 50035)

    # Through hikari: the same order, and the history holds webhook and bot posts.
    webhook = await bot.rest.create_webhook(channel.id, "Tzurot")
    assert webhook.token is not None
    by_webhook = await bot.rest.execute_webhook(
        webhook.id, webhook.token, "as Lilith", username="Lilith"
    )
    by_bot = await bot.rest.create_message(channel.id, "as the bot")
    gone = await bot.rest.create_message(channel.id, "deleted")
    await bot.rest.delete_message(channel.id, gone.id)
    newest = await bot.rest.fetch_messages(channel.id).limit(3)
    assert [m.id for m in newest] == [by_bot.id, by_webhook.id, posted[-1].id]
    assert newest[1].webhook_id == webhook.id
    assert newest[1].author.username == "Lilith"
    assert newest[0].webhook_id is None
    assert newest[0].author.id == emu.bot_user.id
    found_after = await bot.rest.fetch_messages(channel.id, after=posted[-1].id)
    assert [m.id for m in found_after] == [by_webhook.id, by_bot.id]  # hikari reverses "after"
    # hikari pages "around" by re-asking around the oldest it got, which never runs dry (on
    # Discord either): always bound it.
    found_around = await bot.rest.fetch_messages(channel.id, around=by_webhook.id).limit(3)
    assert [m.id for m in found_around] == [by_bot.id, by_webhook.id, posted[-1].id]

    # Without Read Message History, Discord returns an empty history.
    emu.set_permissions(channel, emu.bot_user, deny=int(hikari.Permissions.READ_MESSAGE_HISTORY))
    assert await _get(emu, path) == (200, [])


async def test_ephemeral_responses_are_not_history(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    done = asyncio.get_running_loop().create_future()

    async def on_interaction(event: hikari.InteractionCreateEvent) -> None:
        interaction = event.interaction
        assert isinstance(interaction, hikari.CommandInteraction)
        await interaction.create_initial_response(
            hikari.ResponseType.MESSAGE_CREATE, "only you", flags=hikari.MessageFlag.EPHEMERAL
        )
        done.set_result(None)

    bot.subscribe(hikari.InteractionCreateEvent, on_interaction)
    await emu.slash_command(emu.channel, emu.add_user("alice"), "help")
    await asyncio.wait_for(done, 5)
    await bot.rest.create_message(emu.channel.id, "public")
    assert [m["content"] for m in (await _get(emu, f"/channels/{emu.channel.id}/messages"))[1]] == [
        "public"
    ]


# -- webhook reuse ------------------------------------------------------------------------------


async def test_channel_webhooks_list_tokens_and_owners(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    channel = emu.channel
    moderator = emu.add_user("moderator")
    from_earlier_run = emu.add_webhook(channel, "Tzurot")
    by_hand = emu.add_webhook(channel, "Announcements", creator=moderator)
    created = await bot.rest.create_webhook(channel.id, "Tzurot 2")

    listed = await bot.rest.fetch_channel_webhooks(channel.id)
    assert [w.id for w in listed] == [from_earlier_run.id, by_hand.id, created.id]
    for found in listed:
        assert isinstance(found, hikari.IncomingWebhook)
        assert found.token == emu.world.webhooks[found.id].token
        assert found.channel_id == channel.id
    mine = [w for w in listed if w.application_id == emu.application_id]
    assert [w.id for w in mine] == [from_earlier_run.id, created.id]
    hand_made = next(w for w in listed if w.id == by_hand.id)
    assert isinstance(hand_made, hikari.IncomingWebhook)
    assert hand_made.application_id is None
    assert hand_made.author is not None
    assert hand_made.author.id == moderator.id
    status, raw = await _get(emu, f"/channels/{channel.id}/webhooks")
    assert status == 200
    assert all(w["type"] == 1 and w["token"] for w in raw)
    assert [w["application_id"] for w in raw] == [
        str(emu.application_id),
        None,
        str(emu.application_id),
    ]
    assert [w.id for w in await bot.rest.fetch_guild_webhooks(emu.guild.id)] == [
        w.id for w in listed
    ]

    # Reusing the webhook found in the list, instead of creating another one.
    reused = next(w for w in mine if w.id == from_earlier_run.id)
    assert isinstance(reused, hikari.IncomingWebhook)
    assert reused.token is not None
    sent = await bot.rest.execute_webhook(reused.id, reused.token, "reused", username="Lilith")
    assert sent.webhook_id == from_earlier_run.id
    fetched = await bot.rest.fetch_webhook(reused.id, token=reused.token)
    assert fetched.id == reused.id
