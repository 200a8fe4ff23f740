"""The gateway websocket: HELLO, IDENTIFY/READY, heartbeats, dispatches, RESUME and replay.

Frames are JSON; with ``compress=zlib-stream`` (hikari's default on Python < 3.14) every frame
goes through ONE ``zlib.compressobj`` per connection and is flushed with ``Z_SYNC_FLUSH``, so it
ends with ``00 00 ff ff`` and is sent as a binary frame. Without ``compress`` frames are text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.emulator import ids
from tests.emulator.models import JSON

LOGGER = logging.getLogger("tests.emulator.gateway")

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_DISALLOWED_INTENTS = 4014

# Which intent a dispatch needs; events not listed are always delivered.
_GUILD_EVENTS_NEEDING = {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"}


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    request: web.Request
    path: str
    compressor: Any = None  # zlib compressobj, or None for plain text frames
    identified: bool = False

    async def send(self, payload: JSON) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        if self.compressor is None:
            await self.ws.send_str(data.decode())
            return
        frame = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        await self.ws.send_bytes(frame)


@dataclass
class Session:
    id: str
    intents: int
    identify: JSON
    seq: int = 0
    buffer: list[tuple[int, str, JSON]] = field(default_factory=list)
    connection: Connection | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class GatewayLog:
    """What the bot did on the gateway, for assertions."""

    connects: list[str] = field(default_factory=list)  # paths used (/gateway, /gateway/resume)
    identifies: list[JSON] = field(default_factory=list)
    resumes: list[JSON] = field(default_factory=list)
    heartbeats: int = 0
    presence_updates: list[JSON] = field(default_factory=list)
    member_requests: list[JSON] = field(default_factory=list)
    dispatched: list[tuple[int, str, JSON]] = field(default_factory=list)
    filtered: list[tuple[str, JSON]] = field(default_factory=list)  # withheld for missing intents
    ready_count: int = 0
    resumed_count: int = 0


class Gateway:
    """One emulated gateway. ``on_identified`` builds the READY + GUILD_CREATE payloads."""

    def __init__(
        self,
        *,
        token: Callable[[], str],
        ready_payloads: Callable[[Session], list[tuple[str, JSON]]],
        member_chunk: Callable[[JSON], JSON | None],
        allowed_privileged_intents: Callable[[], int],
        changed: Callable[[], None],
        now: Callable[[], float],
    ) -> None:
        self._token = token
        self._ready_payloads = ready_payloads
        self._member_chunk = member_chunk
        self._allowed_privileged = allowed_privileged_intents
        self._changed = changed
        self._now = now
        self.heartbeat_interval_ms = 41_250
        self.ack_heartbeats = True
        self.sessions: dict[str, Session] = {}
        self.session: Session | None = None
        self.log = GatewayLog()
        self._connections: set[Connection] = set()
        self._outbox: list[tuple[str, JSON, Callable[[float], None] | None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # -- public ----------------------------------------------------------------------------

    @property
    def intents(self) -> int | None:
        return self.session.intents if self.session else None

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.connection is not None

    def queue(self, event: str, data: JSON, on_sent: Callable[[float], None] | None = None) -> None:
        """Dispatch from synchronous code; keeps order with later ``dispatch`` calls."""
        if self.session is None:
            return  # not identified yet: GUILD_CREATE will carry the state
        self._outbox.append((event, data, on_sent))
        task = asyncio.get_running_loop().create_task(self.flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def dispatch(
        self, event: str, data: JSON, on_sent: Callable[[float], None] | None = None
    ) -> None:
        if self.session is None:
            raise RuntimeError(
                f"cannot dispatch {event}: no bot has identified yet (await emu.wait_until_ready())"
            )
        self._outbox.append((event, data, on_sent))
        await self.flush()

    async def flush(self) -> None:
        session = self.session
        if session is None:
            return
        async with session.lock:
            while self._outbox:
                event, data, on_sent = self._outbox.pop(0)
                if not self._wanted(session, event, data):
                    self.log.filtered.append((event, data))
                    LOGGER.warning(
                        "NOT dispatching %s: the bot lacks the intent it needs (intents=%s)",
                        event,
                        session.intents,
                    )
                    continue
                await self._send_dispatch(session, event, data)
                if on_sent is not None:
                    on_sent(self._now())
        self._changed()

    async def drop(self, *, code: int = 4000, abrupt: bool = False) -> None:
        """Close the bot's websocket; the session stays resumable and buffers dispatches."""
        session = self.session
        connection = session.connection if session else None
        if session is None or connection is None:
            raise RuntimeError("no connected bot to drop")
        session.connection = None
        if abrupt:
            transport = connection.request.transport
            if transport is not None:
                transport.abort()
            return
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(
                connection.ws.close(code=code, message=b"emulator dropped the connection"), 5
            )

    async def send_op(self, op: int, data: Any = None) -> None:
        """Send a raw opcode (e.g. RECONNECT, INVALID_SESSION) on the live connection."""
        session = self.session
        if session is None or session.connection is None:
            raise RuntimeError("no connected bot")
        async with session.lock:
            await session.connection.send({"op": op, "d": data, "s": None, "t": None})

    async def close_all(self) -> None:
        for connection in list(self._connections):
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(
                    connection.ws.close(code=1001, message=b"emulator stopping"), 2
                )

    # -- websocket handler -----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        compress = request.query.get("compress")
        connection = Connection(ws=ws, request=request, path=request.path)
        if compress == "zlib-stream":
            connection.compressor = zlib.compressobj()
        elif compress is not None:
            LOGGER.error(
                "gateway asked for compress=%s; the emulator speaks zlib-stream only", compress
            )
            await ws.close(code=4000, message=b"unsupported compression")
            return ws
        self._connections.add(connection)
        self.log.connects.append(request.path)
        try:
            await connection.send(
                {
                    "op": OP_HELLO,
                    "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                    "s": None,
                    "t": None,
                }
            )
            async for frame in ws:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                await self._on_payload(connection, json.loads(frame.data))
        finally:
            self._connections.discard(connection)
            for session in self.sessions.values():
                if session.connection is connection:
                    session.connection = None
            self._changed()
        return ws

    # -- opcodes ---------------------------------------------------------------------------

    async def _on_payload(self, connection: Connection, payload: JSON) -> None:
        op = payload.get("op")
        raw = payload.get("d")
        data: JSON = raw if isinstance(raw, dict) else {}
        if op == OP_HEARTBEAT:
            self.log.heartbeats += 1
            if self.ack_heartbeats:
                await connection.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            await self._identify(connection, data)
        elif op == OP_RESUME:
            await self._resume(connection, data)
        elif op == OP_PRESENCE_UPDATE:
            self.log.presence_updates.append(data)
        elif op == OP_REQUEST_GUILD_MEMBERS:
            self.log.member_requests.append(data)
            chunk = self._member_chunk(data)
            if chunk is not None and self.session is not None:
                await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)
        else:
            LOGGER.error("gateway received unknown opcode %s: %r", op, payload)
        self._changed()

    async def _identify(self, connection: Connection, data: JSON) -> None:
        if data.get("token") != self._token():
            LOGGER.error("IDENTIFY with a wrong token")
            await connection.ws.close(
                code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed."
            )
            return
        if connection.identified:
            await connection.ws.close(
                code=CLOSE_ALREADY_AUTHENTICATED, message=b"Already authenticated."
            )
            return
        intents = int(data.get("intents", 0))
        disallowed = intents & ids.PRIVILEGED_INTENTS & ~self._allowed_privileged()
        if disallowed:
            LOGGER.error(
                "IDENTIFY asked for privileged intents %s the application lacks", disallowed
            )
            await connection.ws.close(
                code=CLOSE_DISALLOWED_INTENTS, message=b"Disallowed intent(s)."
            )
            return
        connection.identified = True
        self.log.identifies.append(data)
        session = Session(id=secrets.token_hex(16), intents=intents, identify=data)
        self.sessions[session.id] = session
        self.session = session
        async with session.lock:
            session.connection = connection
            for event, payload in self._ready_payloads(session):
                await self._send_dispatch(session, event, payload)
        self.log.ready_count += 1
        self._changed()
        await self.flush()

    async def _resume(self, connection: Connection, data: JSON) -> None:
        self.log.resumes.append(data)
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self._token():
            LOGGER.warning("RESUME of unknown session %r: INVALID_SESSION", data.get("session_id"))
            await connection.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        last_seq = int(data.get("seq") or 0)
        connection.identified = True
        async with session.lock:
            session.connection = connection
            for seq, event, payload in session.buffer:
                if seq > last_seq:
                    await connection.send({"op": OP_DISPATCH, "s": seq, "t": event, "d": payload})
            await self._send_dispatch(session, "RESUMED", {})
        self.session = session
        self.log.resumed_count += 1
        self._changed()
        await self.flush()

    # -- internals -------------------------------------------------------------------------

    def _wanted(self, session: Session, event: str, data: JSON) -> bool:
        if event not in _GUILD_EVENTS_NEEDING:
            return True
        needed = ids.INTENT_GUILD_MESSAGES if "guild_id" in data else ids.INTENT_DM_MESSAGES
        return bool(session.intents & needed)

    async def _send_dispatch(self, session: Session, event: str, data: JSON) -> None:
        """Number, buffer and (if connected) send one dispatch. Caller holds ``session.lock``."""
        session.seq += 1
        entry = (session.seq, event, data)
        session.buffer.append(entry)
        self.log.dispatched.append(entry)
        connection = session.connection
        if connection is None or connection.ws.closed:
            return  # replayed on RESUME
        try:
            await connection.send({"op": OP_DISPATCH, "s": session.seq, "t": event, "d": data})
        except ConnectionError:
            LOGGER.info("connection lost while sending %s; it will be replayed on RESUME", event)
