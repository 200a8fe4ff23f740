"""End to end: Discord refusing and failing webhook routes never puts a secret in the log.

The real process (`python -m tzurot`, LOG_LEVEL=DEBUG, every component) talks to the Discord
emulator while webhook executions get 500s, a 429 with retry_after, a deleted webhook
(404/10015), a 403/50013, a channel where webhooks cannot be made, and a /chat whose follow-up
fails once. Then its whole log (stdout and stderr) is scanned for every secret it ever held:
the bot token, each webhook's and interaction's token, the API token, the LLM key and the job
signing key, raw or escaped. Redis is scanned for them too. The errors must demonstrably have
happened (recorded by the emulator, warned about in the log), so the scan cannot pass on a run
where nothing went wrong.

Only that is asserted: how (and whether) each reply finally gets delivered is delivery's
business and has its own tests; waits for replies here are bounded and never fail the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from redis.asyncio import Redis

from tests.emulator import DiscordEmulator, EmulatorTimeoutError, RecordedRequest
from tests.emulator.models import Channel, User
from tests.fixtures.app import API_TOKEN, LLM_KEY, SIGNING_KEY, TzurotProcess
from tests.fixtures.bot import discord_process_env
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer

WEBHOOK_POSTS = "/webhooks/*/*"
PROBLEM_LEVELS = {"warning", "error", "critical"}


async def _until(
    what: str, found: Callable[[], Any], timeout: float, *, required: bool = True
) -> Any:
    """Poll `found()` until it returns something truthy; fail (or give up) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        if time.monotonic() > deadline:
            assert not required, f"timed out after {timeout}s waiting for {what}"
            return None
        await asyncio.sleep(0.05)


def _failed(
    emu: DiscordEmulator, method: str, pattern: str, status: int, *, injected: bool | None = None
) -> list[RecordedRequest]:
    return [
        r
        for r in emu.requests
        if r.method == method
        and r.status == status
        and fnmatch.fnmatchcase(r.path, pattern)
        and (injected is None or r.injected_fault == injected)
    ]


class Conversation:
    """Alice talks to Lilith; each turn must provoke a failure, then may (softly) be answered."""

    def __init__(self, emu: DiscordEmulator, user: User) -> None:
        self.emu = emu
        self.user = user

    async def say(
        self,
        channel: Channel,
        text: str,
        provoked: Callable[[], Any] | None = None,
        what: str = "",
        *,
        answer_within: float = 8.0,
    ) -> None:
        before = len(self.emu.bot_messages(channel))
        await self.emu.post_message(channel, self.user, f"@Lilith {text}")
        if provoked is not None:
            await _until(what, provoked, 30)
        # Whether (and how) the reply arrives is delivery's business; waiting a little keeps
        # one turn's retries from eating the next turn's faults.
        with contextlib.suppress(EmulatorTimeoutError):
            await self.emu.wait_for_messages(channel, before + 1, timeout=answer_within)


def _forms(value: str) -> set[str]:
    """A secret as it could appear in a log: raw, percent-encoded, JSON-escaped."""
    return {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}


def _random_parts(value: str, skip: int = 0) -> set[str]:
    """Pieces of a random token long enough to be unmistakable (a half-masked token leaks)."""
    body = value[skip:]
    return {body[:24], body[-24:]} if len(body) >= 48 else {body}


def _secrets(emu: DiscordEmulator) -> dict[str, set[str]]:
    secrets: dict[str, set[str]] = {
        "bot token": _forms(emu.token) | _random_parts(emu.token.rsplit(".", 1)[-1]),
        "API token": _forms(API_TOKEN),
        "job signing key": _forms(SIGNING_KEY),
        "LLM key": _forms(LLM_KEY),
    }
    for webhook in emu.world.webhooks.values():
        secrets[f"webhook {webhook.id} token"] = _forms(webhook.token) | _random_parts(
            webhook.token
        )
    for interaction in emu.world.interactions.values():
        # Interaction tokens start with base64("interaction"): only the rest is random.
        secrets[f"interaction {interaction.id} token"] = _forms(interaction.token) | (
            _random_parts(interaction.token, skip=16)
        )
    return secrets


async def _redis_text(url: str) -> str:
    """Every key and value in Redis, as one string."""
    client = Redis.from_url(url)
    parts: list[str] = []
    try:
        async for key in client.scan_iter(count=500):
            kind = (await client.type(key)).decode()
            value: Any
            if kind == "string":
                value = await client.get(key)
            elif kind == "hash":
                value = await client.hgetall(key)
            elif kind == "list":
                value = await client.lrange(key, 0, -1)
            elif kind == "set":
                value = await client.smembers(key)
            elif kind == "zset":
                value = await client.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                value = await client.xrange(key)
            else:
                value = kind
            parts.append(f"{key!r} {value!r}")
    finally:
        await client.aclose()
    return "\n".join(parts)


def _log_records(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return records


async def test_discord_errors_on_webhook_routes_leave_no_secret_in_the_log(
    discord_emulator: DiscordEmulator,
    redis_server: RedisServer,
    fake_llm: FakeLLM,
    personalities_dir: Path,
    tmp_path: Path,
) -> None:
    emu = discord_emulator
    locked = emu.add_text_channel(emu.guild, "locked")
    env = discord_process_env(emu, redis_server, fake_llm, personalities_dir, LOG_LEVEL="DEBUG")
    process = TzurotProcess(env, tmp_path / "tzurot.log")
    alice = Conversation(emu, emu.add_user("alice"))
    started = time.monotonic()
    try:
        await process.start(timeout=60)
        await emu.wait_until_ready(timeout=30)

        # A reply that works: the channel gets its webhook (and hikari logs its route).
        await alice.say(
            emu.channel, "hello", lambda: emu.webhooks_in(emu.channel), "a webhook in #general"
        )

        # Discord has an outage on webhook executions.
        outage = emu.fail_next("POST", WEBHOOK_POSTS, 500, count=2)
        await alice.say(emu.channel, "are you there?", lambda: outage.count == 0, "the 500s")

        # Rate limited, with a retry_after.
        limited = emu.fail_next("POST", WEBHOOK_POSTS, 429, retry_after=1.5, count=1)
        await alice.say(emu.channel, "slow down", lambda: limited.count == 0, "the 429")

        # The webhook lost its permissions for one execution.
        refused = emu.fail_next(
            "POST", WEBHOOK_POSTS, 403, code=50013, message="Missing Permissions", count=1
        )
        await alice.say(
            emu.channel, "can you post?", lambda: refused.count == 0, "the 403", answer_within=2
        )

        # A moderator deletes the webhook: executing it answers 404/10015.
        (deleted, *_) = emu.webhooks_in(emu.channel)
        emu.delete_webhook(deleted)
        await alice.say(
            emu.channel,
            "still there?",
            lambda: _failed(emu, "POST", f"/webhooks/{deleted.id}/*", 404),
            "an execution of the deleted webhook",
        )

        # A channel where the bot may not make webhooks (it answers as itself, or tries to
        # make one and gets 403/50013: either way no webhook token exists there).
        emu.remove_manage_webhooks(locked)
        await alice.say(locked, "hello in here")

        # /chat, whose follow-up (on the interaction's webhook) fails once.
        followup = emu.fail_next("*", f"/webhooks/{emu.application_id}/*", 500, count=1)
        chat = await emu.slash_command(
            emu.channel, alice.user, "chat", {"personality": "Lilith", "message": "hi"}
        )
        await chat.wait_for_response(timeout=10)
        await _until("the /chat follow-up to fail", lambda: followup.count == 0, 40)
        await _until(
            "the /chat answer", lambda: chat.followups or chat.original_edits, 20, required=False
        )
        await asyncio.sleep(1)  # retries after the last failure get logged before stopping
    finally:
        if process.proc is not None and process.proc.poll() is None:
            try:
                await process.terminate(timeout=60)
            finally:
                process.ensure_stopped()
    elapsed = time.monotonic() - started

    log = process.logs()
    records = _log_records(log)
    secrets = _secrets(emu)

    # Nothing vacuous: the refusals happened, the process logged them, and it did log text
    # that held a token (masked).
    assert len(emu.world.interactions) >= 1 and len(emu.world.webhooks) >= 1
    assert _failed(emu, "POST", WEBHOOK_POSTS, 500, injected=True)
    assert _failed(emu, "POST", WEBHOOK_POSTS, 429, injected=True)
    assert _failed(emu, "POST", WEBHOOK_POSTS, 403, injected=True)
    assert _failed(emu, "POST", f"/webhooks/{deleted.id}/*", 404)
    interaction_hooks = f"/webhooks/{emu.application_id}/"
    assert any(r.injected_fault and r.path.startswith(interaction_hooks) for r in emu.requests)
    problems = [r for r in records if r.get("level") in PROBLEM_LEVELS]
    assert len(problems) >= 3, f"expected warnings/errors about the refusals:\n{log[-4000:]}"
    assert len(records) > 50, log[-4000:]

    leaks = sorted(
        f"{name}: {form[:6]}…" for name, forms in secrets.items() for form in forms if form in log
    )
    assert not leaks, f"secrets in the log ({elapsed:.0f}s run): {leaks}"
    assert "[redacted]" in log, "no token-bearing text reached the log: the scan proves nothing"

    stored = await _redis_text(redis_server.url)
    in_redis = sorted(
        f"{name}: {form[:6]}…"
        for name, forms in secrets.items()
        for form in forms
        if form in stored
    )
    assert not in_redis, f"secrets stored in Redis in clear: {in_redis}"
