"""What one settings resolve costs: the worker runs it before every generation.

    .venv/bin/python -m bench.settings_resolve            # ~10 s
    .venv/bin/python -m bench.settings_resolve -n 5000

Also the front end's checks on every message (denylist and rate limits, channel activation),
each interleaved with the others and a bare PING as the floor; the table goes to
bench/results.md.

A private redis-server on a free port; a user with a default and a per-character value and a
preset, a thread with its own value and a parent channel with an enforced one and a preset, a
character with its own preset: every level populated, three presets to fetch. Prints p50/p99 of
the wall time of `SettingsResolver.resolve` (one Redis round trip, the Lua script, plus the
folding), of a bare PING on the same connection for the floor, and our own CPU per resolve.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench._harness import (
    Row,
    cpu_seconds,
    latency_row,
    machine_line,
    markdown_table,
    pct,
    private_redis,
    text_table,
    write_section,
)
from tzurot.discord.activation import Activations
from tzurot.moderation.denylist import DenyEntry, Denylist
from tzurot.moderation.gate import Gate
from tzurot.moderation.rate_limits import RateLimiter
from tzurot.personalities.models import Personality
from tzurot.settings import Preset, PresetStore, SettingDefaults, SettingsResolver, SettingsStore

GUILD = "1577288383883900000"
USER, CHANNEL, THREAD = "1577288383892291585", "1577288383883902976", "1577288383883902977"


async def populate(store: SettingsStore, presets: PresetStore) -> Personality:
    made: list[tuple[str, dict[str, Any]]] = [
        ("Warm", {"temperature": 1.1}),
        ("Strict", {"max_tokens": 300}),
        ("Long", {"context_window": 200_000, "model": "openai/gpt-4o"}),
    ]
    for name, values in made:
        await presets.create(Preset.model_validate({"name": name, "owner_id": USER, **values}))
    lilith = Personality(name="Lilith", system_prompt="You are Lilith.", preset="Long")
    await store.set_user(USER, "preset", "warm")
    await store.set_user(USER, "temperature", 0.9)
    await store.set_user(USER, "history_limit", 30, personality=lilith.slug)
    await store.set_channel(CHANNEL, "preset", "strict", enforce=True)
    await store.set_channel(CHANNEL, "memory", False)
    await store.set_channel(THREAD, "top_p", 0.8)
    for i in range(40):  # other characters' values in the same user hash
        await store.set_user(USER, "temperature", 1.0, personality=f"other-{i}")
    return lilith


SECTION_TITLE = "## Per-message checks (`python -m bench.settings_resolve`)"
COMMAND = ".venv/bin/python -m bench.settings_resolve"
ROUNDS = 10  # the measurements take turns, so machine noise falls on all of them alike


async def run(count: int) -> tuple[list[Row], list[str]]:
    with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
        redis = Redis.from_url(server.url)
        try:
            store, presets = SettingsStore(redis), PresetStore(redis)
            resolver = SettingsResolver(store, presets, SettingDefaults(model="openai/x"))
            lilith = await populate(store, presets)
            denylist = Denylist(redis)
            for i in range(200):  # entries for other people: the check is a lookup, not a scan
                await denylist.add(
                    DenyEntry(
                        target=str(10**17 + i), scope="bot", added_by=USER, added_at=time.time()
                    )
                )
            # Limits no benchmark loop reaches: every check takes the full path and records.
            gate = Gate(denylist, RateLimiter(redis, 10**6, 10**6), owner_id=None)
            activations = Activations(redis)
            await activations.activate(GUILD, CHANNEL, lilith.slug, by=USER)
            serial = iter(range(10**9))

            async def resolve() -> None:
                await resolver.resolve(
                    lilith, user_id=USER, channel_id=THREAD, parent_channel_id=CHANNEL
                )

            async def admit() -> None:
                await gate.admit(
                    user_id=USER, guild_id=GUILD, channel_id=THREAD, parent_channel_id=CHANNEL,
                    slugs=[lilith.slug], request_id=f"msg-{next(serial)}",
                )  # fmt: skip

            async def activation() -> None:
                await activations.active_slug(GUILD, THREAD, CHANNEL)

            async def ping() -> None:
                await redis.ping()

            checks: dict[str, Callable[[], Awaitable[None]]] = {
                "resolve": resolve, "admit": admit, "activation": activation, "ping": ping,
            }  # fmt: skip
            for check in checks.values():  # warm: scripts loaded, connection open
                for _ in range(200):
                    await check()
            times: dict[str, list[float]] = {name: [] for name in checks}
            cpu: dict[str, float] = dict.fromkeys(checks, 0.0)
            per_round = max(count // ROUNDS, 1)
            for _ in range(ROUNDS):
                for name, check in checks.items():
                    cpu_before = cpu_seconds()
                    for _ in range(per_round):
                        started = time.perf_counter()
                        await check()
                        times[name].append(time.perf_counter() - started)
                    cpu[name] += cpu_seconds() - cpu_before
        finally:
            await redis.aclose()
    labels = {
        "resolve": "settings cascade: every level, 3 presets (worker, per generation)",
        "admit": "denylist + user and channel rate limits (front end, per message)",
        "activation": "channel activation of a thread and its parent (per untriggered message)",
        "ping": "floor: a bare PING on the same connection",
    }
    floor = pct(times["ping"], 50)
    rows = []
    for name, values in times.items():
        n = len(values)
        us = cpu[name] / n * 1e6
        ratio = "" if name == "ping" else f", p50 = {pct(values, 50) / floor:.1f} x PING"
        rows.append(
            latency_row(labels[name], [v * 1000 for v in values], result=f"{us:.0f} µs CPU{ratio}")
        )
    notes = [
        f"- {count} calls of each, in {ROUNDS} interleaved rounds, one at a time on one "
        "connection to a private redis-server; CPU is this process's (redis-py included).",
        "- resolve: a user default and a per-character value and a preset, a thread with its own "
        "value under a channel with an enforced preset, a character with its own preset, 40 "
        "other characters' values in the same user hash: one EVALSHA.",
        "- admit: 200 other denylist entries; limits high enough never to refuse, so each call "
        "records in both windows: one HMGET and one EVALSHA.",
        "- activation: one HMGET of the server's activations for the thread and its parent.",
    ]
    return rows, notes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--count", type=int, default=2000)
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows, notes = asyncio.run(run(args.count))
    print(text_table(rows))
    header = f"{machine_line()}; run took {time.monotonic() - started:.0f} s; command: `{COMMAND}`"
    write_section(SECTION_TITLE, "\n".join([header, "", *markdown_table(rows), "", *notes]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
