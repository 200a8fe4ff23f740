"""Redis under Sentinel: the client follows the master the sentinels name, across failovers.

The client behaves like `redis_client.connect()`'s: a blocking pool, commands retried forever
with backoff capped at 1 s, no per-read socket timeout, raw bytes. While the master is down a
command waits; once the sentinels have promoted a replica it runs there, and the caller never
sees the failover. Three things redis-py's Sentinel client does not do by itself are added:

- Every (re)connect asks the sentinels where the master is. redis-py does so only in
  `connect()`; the reconnect inside a command's retry goes back to the address the connection
  had (redis-py issue #3874), so a command in flight when the master died would retry the dead
  address forever.
- Replies meaning "this server is no longer the master" (READONLY, which redis-py already
  handles, MASTERDOWN, UNBLOCKED) drop the connection and count as a connection error, so the
  command is retried on the master the sentinels name next.
- The pool blocks when every connection is busy instead of failing (SentinelConnectionPool
  is a plain ConnectionPool).

The sentinels are asked without a password (REDIS_PASSWORD is the master's), each with a short
timeout and no retry: a dead or hung sentinel only makes the lookup move on to the next one.

Replication is asynchronous: a write the master acknowledged but had not yet sent to a replica
when it died is lost with it, and the client cannot tell. Writes that must survive a failover
need a `WAIT` sent on the same connection (in the same pipeline) after them; this client does
not add one by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MasterDownError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What a sentinel gets to answer a lookup before the next one is asked.
SENTINEL_TIMEOUT_SECONDS = 1.0


class _MasterConnection(SentinelManagedConnection):
    """A connection to whichever server the sentinels currently name as the master."""

    async def connect(self) -> None:
        # As redis-py's, minus its own master lookup: the one below is made on every attempt.
        await self.retry.call_with_retry(
            lambda: self.connect_check_health(check_health=self.connection_pool.check_connection),
            lambda _error: asyncio.sleep(0),
        )

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self.is_connected:
            return
        # Raises MasterNotFoundError (a ConnectionError, so retried) while a failover runs.
        self.host, self.port = await self.connection_pool.get_master_address()
        # One attempt at that address: the caller's retry comes back here, and so asks the
        # sentinels again, instead of retrying an address that may belong to a dead master.
        await super().connect_check_health(check_health=check_health, retry_socket_connect=False)

    async def read_response(
        self,
        disable_decoding: bool = False,
        timeout: float | None = None,
        *,
        disconnect_on_error: float | None = True,  # (sic: redis-py's annotation)
        push_request: bool | None = False,
    ) -> Any:
        try:
            return await super().read_response(
                disable_decoding=disable_decoding,
                timeout=timeout,
                disconnect_on_error=disconnect_on_error,
                push_request=push_request,
            )
        except ResponseError as exc:
            # MASTERDOWN: a replica that lost its master. UNBLOCKED: a blocking command cut
            # short because the server changed role. (READONLY is turned into a
            # ConnectionError by redis-py.)
            if not isinstance(exc, MasterDownError) and not str(exc).startswith("UNBLOCKED"):
                raise
            await self.disconnect()
            raise RedisConnectionError(f"{self.host}:{self.port} is no longer the master") from exc


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """SentinelConnectionPool's master lookup with BlockingConnectionPool's wait for a
    free connection. Closing it also closes the connections to the sentinels."""

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            await self.sentinel_manager.aclose()


def connect_sentinel(
    sentinels: Sequence[tuple[str, int]],
    master: str,
    *,
    password: str | None = None,
    max_connections: int = 256,
) -> Redis:
    """A client for `master` as the sentinels currently name it, following it across failovers.

    Like `connect()`, commands wait through an outage (here: until a replica is promoted) and
    callers that owe someone a quick answer put their own timeout around the call.
    """
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(sentinels),
        sentinel_kwargs={
            "socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
            # Lookups are short; a sentinel that accepts but never answers must not stall
            # them, so these connections (unlike the master's) have a read timeout.
            "socket_timeout": SENTINEL_TIMEOUT_SECONDS,
            "retry": Retry(NoBackoff(), 0),
            "max_connections": max_connections,  # every master connection may look up at once
            "driver_info": None,
        },
    )
    client: Redis = sentinel.master_for(
        master,
        connection_pool_class=_BlockingSentinelPool,
        connection_class=_MasterConnection,
        password=password,
        max_connections=max_connections,
        timeout=30,  # how long a command waits for a free connection in a burst
        decode_responses=False,  # SAQ needs raw bytes
        socket_connect_timeout=2.0,
        # No per-read timeout: blocking reads set their own, and on Python 3.11 the timeout
        # behind a socket timeout can swallow a task's cancellation.
        socket_timeout=None,
        socket_keepalive=True,
        health_check_interval=15,
        driver_info=None,  # skips a CLIENT SETINFO round trip on every new connection
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=-1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError, OSError],
    )
    return client
