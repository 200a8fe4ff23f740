"""A name for this process among all the processes sharing one Redis, held by a lease.

The name is the delivery consumer's and the SAQ worker's id. It is stable across restarts (the
base is PROCESS_NAME, default the host name), so a restarted process takes back what its dead
predecessor left unfinished at once; and it is unique among live processes, so two processes
never share one: a name whose lease a live process holds gets the next suffix (`-2`, `-3`, ...).

A lease held by a dead process on this very host (same host name and pid namespace, and its pid
gone or reused by another program) is taken over at once. One held under the same host name
from another pid namespace (a restarted container keeps its host name, not its pid namespace)
is watched for one renewal period: not renewed, it is taken over. One held on another host is
waited out (it expires LEASE_SECONDS after that process last renewed it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from redis.asyncio import Redis

from tzurot.infra.keys import PROCESS_LEASE
from tzurot.logs import get_logger

log = get_logger(__name__)

LEASE_SECONDS = PROCESS_LEASE.ttl_seconds or 15
RENEW_EVERY_SECONDS = 5.0
_MAX_SUFFIX = 64

# KEYS: lease. ARGV: expected holder JSON, new holder JSON, ttl ms. Swap only if unchanged.
_SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
# KEYS: lease. ARGV: holder JSON, ttl ms. Renew only our own lease.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS: lease. ARGV: holder JSON. Release only our own lease.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Holder:
    host: str  # host name plus pid namespace: where a pid means something
    pid: int
    started: str  # the process's start time (from /proc), so a reused pid is told apart
    token: str  # random per incarnation

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def load(cls, raw: bytes | str) -> Holder | None:
        try:
            data = json.loads(raw)
            return cls(
                str(data["host"]), int(data["pid"]), str(data["started"]), str(data["token"])
            )
        except (ValueError, KeyError, TypeError):
            return None


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None if there is no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def this_process() -> Holder:
    pid = os.getpid()
    host = f"{socket.gethostname()}/{_pid_namespace()}"
    return Holder(host, pid, _start_time(pid) or "", secrets.token_hex(8))


def is_dead_here(holder: Holder, me: Holder) -> bool:
    """Whether `holder` is a process on this host that no longer runs."""
    if holder.host != me.host:
        return False  # elsewhere: only its lease's expiry can tell
    if holder.pid == me.pid:
        # The same pid: this very process (another part of it), unless the pid was reused.
        return holder.started != me.started
    return _start_time(holder.pid) != holder.started


def _same_host_name(holder: Holder, me: Holder) -> bool:
    return holder.host.split("/", 1)[0] == me.host.split("/", 1)[0]


class ProcessIdentity:
    def __init__(self, redis: Redis, base_name: str) -> None:
        self._redis = redis
        self._base = base_name
        self._me = this_process()
        self._mine = self._me.dump()
        self._swap = redis.register_script(_SWAP)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._task: asyncio.Task[None] | None = None
        self.name = ""
        # Set when this process lost its name (it stalled past the lease): stop delivering.
        self.lost = asyncio.Event()

    async def claim(self) -> str:
        """Take the first free name of base, base-2, base-3, ...; keep it renewed."""
        ttl_ms = LEASE_SECONDS * 1000
        for suffix in range(1, _MAX_SUFFIX + 1):
            name = self._base if suffix == 1 else f"{self._base}-{suffix}"
            key = PROCESS_LEASE.key(name=name)
            if await self._redis.set(key, self._mine, nx=True, px=ttl_ms):
                return self._took(name)
            raw = await self._redis.get(key)
            if raw is None:
                continue  # it lapsed just now; the next start takes it
            holder = Holder.load(raw)
            dead = holder is None or is_dead_here(holder, self._me)
            if not dead and holder is not None and _same_host_name(holder, self._me):
                dead = await self._not_renewed(key, raw)
            if dead and await self._swap(keys=[key], args=[raw, self._mine, ttl_ms]):
                log.info("took over the name of a process that died here", name=name)
                return self._took(name)
        raise RuntimeError(f"no free process name for {self._base!r} (tried {_MAX_SUFFIX})")

    async def _not_renewed(self, key: str, raw: bytes | str) -> bool:
        """Whether the lease goes a whole renewal period without being renewed."""
        before = await self._redis.pttl(key)
        await asyncio.sleep(RENEW_EVERY_SECONDS + 1.0)
        after = await self._redis.pttl(key)
        still = await self._redis.get(key)
        if still is None:
            return True
        return still == raw and 0 <= after < before - RENEW_EVERY_SECONDS * 1000

    def _took(self, name: str) -> str:
        self.name = name
        if name != self._base:
            log.warning("process name in use by a live process; using another", name=name,
                        wanted=self._base)  # fmt: skip
        self._task = asyncio.create_task(self._keep(), name="process-lease")
        return name

    async def _keep(self) -> None:
        key = PROCESS_LEASE.key(name=self.name)
        while True:
            await asyncio.sleep(RENEW_EVERY_SECONDS)
            try:
                renewed = await self._renew(keys=[key], args=[self._mine, LEASE_SECONDS * 1000])
            except Exception:
                log.warning("could not renew the process lease", exc_info=True)
                continue
            if not renewed:
                log.error("this process lost its name to another; it stops delivering",
                          name=self.name)  # fmt: skip
                self.lost.set()
                return

    async def is_alive(self, name: str) -> bool:
        return bool(await self._redis.exists(PROCESS_LEASE.key(name=name)))

    async def release(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.name:
            with contextlib.suppress(Exception):
                await self._release(keys=[PROCESS_LEASE.key(name=self.name)], args=[self._mine])
