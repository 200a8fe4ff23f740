"""Channel activation (the store and the trigger), against a real redis-server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis

from tests.fixtures.app import write_personalities
from tzurot.discord.activation import Activations, thread_parent_of
from tzurot.discord.state import ConversationState
from tzurot.discord.triggers import IncomingMessage, TriggerResolver
from tzurot.infra.keys import ACTIVATIONS
from tzurot.personalities.store import PersonalityStore, seed_from_directory

GUILD, CHANNEL, THREAD, OTHER = "9001", "9002", "9003", "9004"
BOT = "1"


async def test_activate_browse_deactivate(redis_client: Redis) -> None:
    acts = Activations(redis_client)
    assert await acts.active_slug(GUILD, CHANNEL) is None
    await acts.activate(GUILD, CHANNEL, "lilith", "mod")
    assert await acts.active_slug(GUILD, CHANNEL) == "lilith"
    assert await acts.active_slug(None, CHANNEL) is None  # DMs never
    (entry,) = await acts.browse(GUILD)
    assert (entry.channel_id, entry.slug, entry.by) == (CHANNEL, "lilith", "mod")
    assert await acts.browse("other-guild") == []
    assert await acts.deactivate(GUILD, CHANNEL, "mod")
    assert not await acts.deactivate(GUILD, CHANNEL, "mod")
    assert await acts.active_slug(GUILD, CHANNEL) is None
    assert await redis_client.keys("*") == []  # the last deactivation leaves nothing behind


async def test_threads_inherit_unless_set_themselves(redis_client: Redis) -> None:
    acts = Activations(redis_client)
    await acts.activate(GUILD, CHANNEL, "lilith", "mod")
    assert await acts.active_slug(GUILD, THREAD, CHANNEL) == "lilith"
    await acts.activate(GUILD, THREAD, "nova", "mod")
    assert await acts.active_slug(GUILD, THREAD, CHANNEL) == "nova"
    # Deactivating the thread while its parent is active: a "deactivated here" marker.
    assert await acts.deactivate(GUILD, THREAD, "mod", parent_id=CHANNEL)
    assert await acts.active_slug(GUILD, THREAD, CHANNEL) is None
    assert await acts.active_slug(GUILD, CHANNEL) == "lilith"
    marker = await acts.get(GUILD, THREAD)
    assert marker is not None and marker.slug is None
    # The thread can be activated again on its own.
    await acts.activate(GUILD, THREAD, "nova", "mod")
    assert await acts.active_slug(GUILD, THREAD, CHANNEL) == "nova"
    # A thread of an inactive parent: deactivation just removes its own entry.
    await acts.deactivate(GUILD, CHANNEL, "mod")
    assert await acts.deactivate(GUILD, THREAD, "mod", parent_id=CHANNEL)
    assert await acts.get(GUILD, THREAD) is None
    assert [k.decode() for k in await redis_client.keys("*")] == []
    assert ACTIVATIONS.key(guild_id=GUILD).startswith("tzurot:activations:")


def test_thread_parent_of_ignores_a_text_channels_category() -> None:
    class Text:
        parent_id = 5
        thread_metadata = None

    class Thread:
        parent_id = 7
        thread_metadata = object()

    assert thread_parent_of(Text()) is None
    assert thread_parent_of(Thread()) == "7"


def message(content: str, *, channel: str = CHANNEL, parent: str | None = None,
            **extra: object) -> IncomingMessage:  # fmt: skip
    return IncomingMessage(
        id="55", channel_id=channel, guild_id=GUILD, author_id="42", author_name="alice",
        content=content, created_at=datetime.now(UTC), thread_parent_id=parent,
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_trigger_answers_in_an_activated_channel(redis_client: Redis, tmp_path: Path) -> None:
    store = PersonalityStore(redis_client)
    directory = write_personalities(tmp_path / "p")
    (directory / "nova.toml").write_text('name = "Nova"\nsystem_prompt = "You are Nova."\n')
    await seed_from_directory(store, directory)
    acts = Activations(redis_client)
    resolver = TriggerResolver(
        store, ConversationState(redis_client), max_mentions=5, activations=acts
    )

    assert await resolver.resolve(message("hello"), BOT) is None
    await acts.activate(GUILD, CHANNEL, "lilith", "mod")

    trigger = await resolver.resolve(message("hello"), BOT)
    assert trigger is not None and trigger.reason == "activation"
    assert [p.slug for p in trigger.personalities] == ["lilith"]
    # A mention of another character still goes to that one.
    trigger = await resolver.resolve(message("@Nova hi"), BOT)
    assert trigger is not None and trigger.reason == "mention"
    assert [p.slug for p in trigger.personalities] == ["nova"]
    # Bots and webhooks are still never answered.
    assert await resolver.resolve(message("hi", from_bot=True), BOT) is None
    assert await resolver.resolve(message("hi", from_webhook=True), BOT) is None
    # A bare ping of the bot still gets the help text.
    trigger = await resolver.resolve(message(f"<@{BOT}>", mentions_bot=True), BOT)
    assert trigger is not None and trigger.reason == "help"
    # Threads inherit.
    trigger = await resolver.resolve(message("in a thread", channel=THREAD, parent=CHANNEL), BOT)
    assert trigger is not None and trigger.reason == "activation"
    # Other channels are untouched.
    assert await resolver.resolve(message("hello", channel=OTHER), BOT) is None
