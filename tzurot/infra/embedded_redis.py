"""The embedded redis-server: started and supervised by us when REDIS_URL is unset.

It listens on a unix socket under DATA_DIR (no TCP at all), keeps an append-only file there,
and is stopped cleanly (SIGTERM, so the AOF is flushed) when the process shuts down. If it dies
while we run, it is started again; the client reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from pathlib import Path

from redis.asyncio import Redis

from tzurot.logs import get_logger

log = get_logger(__name__)

# AF_UNIX paths are limited to 107 bytes on Linux.
_MAX_SOCKET_PATH = 100
_RESTART_LIMIT = 5


class RedisServerMissing(Exception):
    def __init__(self) -> None:
        super().__init__(
            "redis-server was not found on PATH: install it (Debian/Ubuntu: "
            "apt-get install redis-server) or set REDIS_URL to an existing Redis"
        )


class EmbeddedRedis:
    def __init__(self, data_dir: Path, binary: str | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self._binary = binary
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._restarts = 0
        self.socket_path = self.data_dir / "redis.sock"
        if len(str(self.socket_path)) > _MAX_SOCKET_PATH:
            raise ValueError(f"DATA_DIR is too long for a unix socket path: {self.data_dir}")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def _command(self, binary: str) -> list[str]:
        return [
            binary,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", "",
        ]  # fmt: skip

    async def start(self) -> None:
        binary = self._binary or shutil.which("redis-server")
        if binary is None:
            raise RedisServerMissing
        self._binary = binary
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="embedded-redis")

    async def _spawn(self) -> None:
        assert self._binary is not None
        self.socket_path.unlink(missing_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            *self._command(self._binary),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        await self._wait_ready()
        log.info("embedded redis started", pid=self._process.pid, socket=str(self.socket_path))

    async def _wait_ready(self, timeout: float = 15.0) -> None:
        assert self._process is not None
        client = Redis(unix_socket_path=str(self.socket_path))
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self._process.returncode is not None:
                        detail = await self._stderr_tail()
                        raise RuntimeError(f"redis-server exited at start: {detail}")
                    with contextlib.suppress(OSError, ConnectionError, Exception):
                        if await client.ping():
                            return
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def _stderr_tail(self) -> str:
        if self._process is None or self._process.stderr is None:
            return ""
        data = await self._process.stderr.read()
        return data.decode(errors="replace").strip()[-500:]

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            self._restarts += 1
            log.error("embedded redis exited; restarting", code=code, restarts=self._restarts)
            if self._restarts > _RESTART_LIMIT:
                log.critical("embedded redis keeps dying; giving up")
                return
            await asyncio.sleep(min(2**self._restarts * 0.1, 5))
            try:
                await self._spawn()
            except Exception:
                log.exception("embedded redis could not be restarted")

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(15):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        log.info("embedded redis stopped")
