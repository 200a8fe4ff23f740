"""End to end: a user mentions a personality; the reply arrives through the channel webhook."""

from __future__ import annotations

from typing import Any

from tests.emulator import DiscordEmulator
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer


async def test_mention_gets_a_webhook_reply_with_name_and_avatar(
    start_bot: Any, discord_emulator: DiscordEmulator, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")

    await emu.post_message(emu.channel, alice, "hey @Lilith, how are you?")
    (reply,) = await emu.wait_for_messages(emu.channel, 1, timeout=20)

    assert reply.content == "reply to: alice: hey @Lilith, how are you?"
    assert reply.username == "Lilith the Wise"
    assert reply.avatar_url == "https://example.org/lilith.png"
    assert reply.webhook_id is not None
    assert reply.allowed_mentions == {"parse": []}


async def test_secrets_never_reach_redis_in_clear(
    discord_emulator: DiscordEmulator, start_bot: Any, redis_server: RedisServer
) -> None:
    emu = discord_emulator
    await start_bot()
    await emu.post_message(emu.channel, emu.add_user("alice"), "@lil hello")
    await emu.wait_for_messages(emu.channel, 1, timeout=20)
    (webhook,) = emu.webhooks_in(emu.channel)

    redis = redis_server.client()
    secrets = [webhook.token.encode(), emu.token.encode(), b"sk-test-0123456789"]
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key)
        if kind == b"string":
            values = [redis.get(key) or b""]
        elif kind == b"hash":
            values = list(redis.hgetall(key).values())
        elif kind == b"stream":
            values = [v for _, fields in redis.xrange(key) for v in fields.values()]
        else:
            continue
        for value in values:
            assert not any(secret in value for secret in secrets), key
