"""What one settings resolve costs: the worker runs it before every generation.

    .venv/bin/python -m bench.settings_resolve            # ~5 s
    .venv/bin/python -m bench.settings_resolve -n 5000

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
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench._harness import cpu_seconds, pct, private_redis
from tzurot.personalities.models import Personality
from tzurot.settings import Preset, PresetStore, SettingDefaults, SettingsResolver, SettingsStore

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


async def run(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
        redis = Redis.from_url(server.url)
        try:
            store, presets = SettingsStore(redis), PresetStore(redis)
            resolver = SettingsResolver(store, presets, SettingDefaults(model="openai/x"))
            lilith = await populate(store, presets)

            async def one() -> None:
                await resolver.resolve(
                    lilith, user_id=USER, channel_id=THREAD, parent_channel_id=CHANNEL
                )

            for _ in range(200):  # warm: script loaded, connection open
                await one()
            resolves, pings = [], []
            cpu = cpu_seconds()
            for _ in range(count):
                started = time.perf_counter()
                await one()
                resolves.append(time.perf_counter() - started)
            cpu = cpu_seconds() - cpu
            for _ in range(count):
                started = time.perf_counter()
                await redis.ping()
                pings.append(time.perf_counter() - started)
        finally:
            await redis.aclose()
    ms = 1000.0
    print(
        f"resolve  ({count}x): p50 {pct(resolves, 50) * ms:.3f} ms  p99 {pct(resolves, 99) * ms:.3f} ms"
    )
    print(
        f"PING     ({count}x): p50 {pct(pings, 50) * ms:.3f} ms  p99 {pct(pings, 99) * ms:.3f} ms"
    )
    print(f"our CPU per resolve (this process, incl. redis-py): {cpu / count * 1e6:.0f} µs")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--count", type=int, default=2000)
    args = parser.parse_args(argv)
    asyncio.run(run(args.count))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
