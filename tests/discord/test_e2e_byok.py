"""End to end through the Discord emulator: users' own API keys (BYOK).

`/settings apikey set` (modal `api_key`, the key checked against the fake provider's model list,
sealed at rest), `browse` (last four only), `test`, `remove`; a generation using the user's key,
the operator's for everyone else, guest mode, the no-key message, a refused user key told to
its owner once by DM while the channel hears only that the user's key failed. The key never
reaches the log (the process's own pipeline, at DEBUG) nor any raw Redis value.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from redis.asyncio import Redis

from tests.emulator import DiscordEmulator
from tests.emulator.models import Channel, Message, User
from tests.fixtures.app import LLM_KEY
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer
from tzurot.logs import configure_logging

ENCRYPTION_KEY = "byok-test-encryption-key-0123456789-abcdef"
USER_KEY = "sk-alice-own-key-0123456789abcdefQRST"
BAD_KEY = "sk-alice-typo-key-9876543210fedcbaZZZZ"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The process's log pipeline (redaction included), at DEBUG, into a buffer."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)


@pytest.fixture(autouse=True)
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)


async def until(what: str, found: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def replies(emu: DiscordEmulator, channel: Channel) -> list[Message]:
    """What the characters posted (not the answers to commands)."""
    return [m for m in emu.bot_messages(channel) if m.source in {"webhook", "bot"}]


async def say(emu: DiscordEmulator, channel: Channel, user: User, text: str) -> Message:
    before = len(replies(emu, channel))
    await emu.post_message(channel, user, text)
    found = await until(f"a reply to {text!r}", lambda: replies(emu, channel)[before:])
    return found[0]  # type: ignore[no-any-return]


async def command(
    emu: DiscordEmulator, user: User, name: str, options: dict[str, Any] | None = None
) -> str:
    interaction = await emu.slash_command(emu.channel, user, name, options or {})
    text = await interaction.wait_for_content(timeout=10)
    assert interaction.original is not None and interaction.original.is_ephemeral
    return text


async def set_key(emu: DiscordEmulator, user: User, provider: str, key: str) -> str:
    shown = await emu.slash_command(
        emu.channel, user, "settings apikey set", {"provider": provider}
    )
    modal = await shown.wait_for_modal(timeout=10)
    assert modal.custom_id == f"apikey-set:{provider}"
    assert list(modal.fields) == ["api_key"]
    submitted = await emu.submit_modal(shown, {"api_key": key})
    text = await submitted.wait_for_content(timeout=15)
    assert submitted.original is not None and submitted.original.is_ephemeral
    return text


async def redis_dump(url: str) -> bytes:
    client = Redis.from_url(url)
    parts: list[bytes] = []
    try:
        async for key in client.scan_iter(count=500):
            parts.append(key)
            kind = (await client.type(key)).decode()
            if kind == "string":
                parts.append(await client.get(key) or b"")
            elif kind == "hash":
                for field, value in (await client.hgetall(key)).items():
                    parts += [field, value]
            elif kind == "stream":
                parts.append(repr(await client.xrange(key)).encode())
            elif kind == "list":
                parts += await client.lrange(key, 0, -1)
            elif kind == "zset":
                parts += [m for m, _ in await client.zrange(key, 0, -1, withscores=True)]
            elif kind == "set":
                parts += list(await client.smembers(key))
    finally:
        await client.aclose()
    return b"\n".join(parts)


def forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), raw.hex().encode(), raw[8:-4]]


async def test_byok_set_browse_use_refuse_and_remove(
    discord_emulator: DiscordEmulator,
    start_bot: Any,
    fake_llm: FakeLLM,
    redis_server: RedisServer,
    captured_logs: io.StringIO,
) -> None:
    emu = discord_emulator
    fake_llm.accepted_keys = {LLM_KEY, USER_KEY}
    await start_bot(ENCRYPTION_KEY=ENCRYPTION_KEY)
    alice, bob = emu.add_user("alice"), emu.add_user("bob")

    # A key the provider refuses is not stored.
    refused = await set_key(emu, alice, "openai", BAD_KEY)
    assert "refused" in refused and "Nothing was stored" in refused
    assert BAD_KEY not in refused and BAD_KEY[-4:] not in refused
    # Not a key at all (spaces, a line break): refused without asking the provider.
    pasted = await set_key(emu, alice, "openai", "sk-my key\nwith spaces 123")
    assert "no spaces" in pasted and "my key" not in pasted
    assert len(fake_llm.model_list_calls) == 1
    assert "no API keys" in await command(emu, alice, "settings apikey browse")

    # A good one is: the answer shows the provider and the last four, nothing more.
    saved = await set_key(emu, alice, "openai", USER_KEY)
    assert "openai" in saved and f"`{USER_KEY[-4:]}`" in saved and USER_KEY[:-4] not in saved
    assert fake_llm.keys_used("/models") == [BAD_KEY, USER_KEY]
    listed = await command(emu, alice, "settings apikey browse")
    assert "openai" in listed and USER_KEY[-4:] in listed and USER_KEY[:-4] not in listed
    assert "no API keys" in await command(emu, bob, "settings apikey browse")

    # An unknown provider: refused at once, no modal.
    unknown = await emu.slash_command(
        emu.channel, alice, "settings apikey set", {"provider": "nope"}
    )
    assert "not a provider" in await unknown.wait_for_content(timeout=10)
    assert unknown.modal is None
    # Autocomplete offers litellm's provider names, those we support first.
    suggestion = await emu.autocomplete(
        emu.channel, alice, "settings apikey set", {"provider": "open"}, focused="provider"
    )
    await suggestion.wait_for_response()
    names = [c["name"] for c in suggestion.choices or []]
    assert names[:2] == ["openai", "openrouter"]

    # Alice's generations use her key; Bob's the operator's.
    await say(emu, emu.channel, alice, "@Lilith hello with my key")
    assert fake_llm.chat_calls[-1].key == USER_KEY
    await say(emu, emu.channel, bob, "@Lilith hello with yours")
    assert fake_llm.chat_calls[-1].key == LLM_KEY

    assert "works" in await command(emu, alice, "settings apikey test", {"provider": "openai"})

    # The provider starts refusing her key: the job ends at once (no retry), the channel hears
    # only that her key failed, she is told once, privately.
    fake_llm.accepted_keys = {LLM_KEY}
    calls = len(fake_llm.chat_calls)
    failed = await say(emu, emu.channel, alice, "@Lilith are you there?")
    assert "API key you added" in failed.content and "/settings apikey set" in failed.content
    assert "Incorrect API key" not in failed.content and USER_KEY[-4:] not in failed.content
    assert len(fake_llm.chat_calls) == calls + 1
    dms = emu.world.dm_channel(alice)
    (notice,) = await until("the private notice", lambda: emu.bot_messages(dms))
    assert "openai" in notice.content and "refused" in notice.content
    assert USER_KEY[-4:] not in notice.content
    again = await say(emu, emu.channel, alice, "@Lilith still there?")
    assert "API key you added" in again.content
    await asyncio.sleep(0.5)
    assert len(emu.bot_messages(dms)) == 1  # once
    assert emu.bot_messages(emu.world.dm_channel(bob)) == []
    assert "refused by the provider" in await command(emu, alice, "settings apikey browse")
    tested = await command(emu, alice, "settings apikey test", {"provider": "openai"})
    assert "refused" in tested

    # Removed: back to the operator's key.
    assert "Forgot" in await command(emu, alice, "settings apikey remove", {"provider": "openai"})
    assert "no API key stored" in await command(
        emu, alice, "settings apikey remove", {"provider": "openai"}
    )
    await say(emu, emu.channel, alice, "@Lilith and now?")
    assert fake_llm.chat_calls[-1].key == LLM_KEY

    # Set again while it was stored: nothing of either key anywhere at rest or in the log.
    fake_llm.accepted_keys = None
    await set_key(emu, alice, "openai", USER_KEY)
    dump = await redis_dump(redis_server.url)
    logs = captured_logs.getvalue()
    assert "user api key stored" in logs  # the capture works
    for secret in (USER_KEY, BAD_KEY):
        for form in forms(secret):
            assert form not in dump
            assert form.decode() not in logs


async def test_guest_mode_when_nobody_has_a_key_for_the_model(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    # The operator's endpoint is provider openai; nobody has an anthropic key.
    await start_bot(
        ENCRYPTION_KEY=ENCRYPTION_KEY,
        DEFAULT_MODEL="anthropic/claude-3-5-haiku-latest",
        GUEST_MODELS="openai/fake-guest,openai/fake-guest-2",
    )
    reply = await say(emu, emu.channel, emu.add_user("carol"), "@Lilith hi as a guest")
    assert reply.content.startswith("reply to:")  # quietly answered: no notice of guest mode
    call = fake_llm.chat_calls[-1]
    assert call.model == "fake-guest" and call.key == LLM_KEY


async def test_no_key_anywhere_says_how_to_add_one(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(DEFAULT_MODEL="anthropic/claude-3-5-haiku-latest")  # no ENCRYPTION_KEY
    dave = emu.add_user("dave")
    reply = await say(emu, emu.channel, dave, "@Lilith hello?")
    assert "/settings apikey set" in reply.content and "no API key" in reply.content
    assert fake_llm.chat_calls == []  # nothing was sent anywhere

    # Without ENCRYPTION_KEY keys cannot be stored, and the answer says so (no modal).
    shown = await emu.slash_command(
        emu.channel, dave, "settings apikey set", {"provider": "openai"}
    )
    text = await shown.wait_for_content(timeout=10)
    assert "ENCRYPTION_KEY" in text and "Nothing was stored" in text
    assert shown.modal is None
