"""Redis under Sentinel: the client follows the master the sentinels name, across failovers."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel


def connect_sentinel(
    sentinels: Sequence[tuple[str, int]],
    master: str,
    *,
    password: str | None = None,
    max_connections: int = 256,
) -> Redis:
    """A client for `master` as the sentinels currently name it."""
    sentinel = Sentinel(list(sentinels), socket_connect_timeout=2.0)  # type: ignore[no-untyped-call]
    client: Redis = sentinel.master_for(
        master,
        password=password,
        decode_responses=False,
        max_connections=max_connections,
        socket_connect_timeout=2.0,
    )
    return client
