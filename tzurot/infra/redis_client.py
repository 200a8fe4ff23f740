"""The Redis connection: one pool, reconnecting by itself when Redis goes away and comes back."""

from __future__ import annotations

import asyncio

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

# SAQ needs raw bytes, so the client never decodes responses.
RedisClient = Redis


def connect(url: str, *, max_connections: int = 256) -> Redis:
    """A client whose commands wait through an outage instead of failing.

    Commands are retried forever with backoff capped at 1 s: a worker finishing a job must
    never give up on recording its result. Callers that owe someone a quick answer (the HTTP
    API, health checks) put their own timeout around the call. When every connection is busy
    (a burst), a command waits for one instead of failing.
    """
    tcp_options = {"socket_keepalive": True} if url.startswith(("redis://", "rediss://")) else {}
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=30,
        decode_responses=False,
        socket_connect_timeout=2.0,
        # No per-read timeout: blocking reads set their own, and on Python 3.11 the
        # asyncio.wait_for behind a socket timeout can swallow a task's cancellation.
        socket_timeout=None,
        health_check_interval=15,
        driver_info=None,  # skips a CLIENT SETINFO round trip on every new connection
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=-1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError, OSError],
        **tcp_options,
    )
    return Redis.from_pool(pool)


def as_text(value: bytes | str) -> str:
    """Redis values come back as bytes (the client never decodes)."""
    return value.decode() if isinstance(value, bytes) else value


async def ping(client: Redis, timeout: float = 1.0) -> bool:
    """True when Redis answers within `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            return bool(await client.ping())
    except (TimeoutError, RedisError, OSError):
        return False
