"""The embedded redis-server: started when REDIS_URL is unset, persistent, stopped cleanly."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tzurot.infra import EmbeddedRedis, RedisServerMissing, connect


async def test_it_starts_on_a_unix_socket_persists_and_stops(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = EmbeddedRedis(data)
    await server.start()
    client = Redis.from_url(server.url)
    await client.set("greeting", "hello")
    await client.aclose()
    await server.stop()

    assert list(data.rglob("*.aof*")), "append-only persistence is on"

    again = EmbeddedRedis(data)
    await again.start()
    client = Redis.from_url(again.url)
    assert await client.get("greeting") == b"hello"
    config = await client.config_get("port")
    assert config["port"] == "0"  # no TCP listener at all
    await client.aclose()
    await again.stop()


async def test_it_is_restarted_if_it_dies(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "data")
    await server.start()
    client = connect(server.url)
    await client.set("k", "v")
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)  # the child dies under us
    assert await client.get("k") == b"v"  # the supervisor restarted it; the client reconnected
    await client.aclose()
    await server.stop()


async def test_a_missing_binary_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RedisServerMissing, match=r"apt-get install redis-server.*REDIS_URL"):
        await EmbeddedRedis(tmp_path / "data").start()
