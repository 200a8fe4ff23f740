"""The gateway websocket: HELLO, IDENTIFY/READY, heartbeats, dispatches, RESUME and replay.

Sharding as Discord does it: every IDENTIFY names ``shard: [shard_id, shard_count]`` (default
``[0, 1]``) and opens its own session (session id, sequence numbers, buffer for RESUME). A
guild's events go to the sessions whose shard is ``(guild_id >> 22) % shard_count``; events
without a guild (DMs, DM interactions) go to shard 0. Several sessions may be live at once,
from one process or several; a session ends when the client closes with 1000/1001 or the
emulator sends a non-resumable INVALID_SESSION. Until then a disconnected session keeps
buffering what it would have received and can RESUME, as on Discord (so two live sessions for
the same shard both receive its events, as when a bot is accidentally run twice).

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
CLOSE_INVALID_SHARD = 4010
CLOSE_DISALLOWED_INTENTS = 4014
# Closing with these ends the session on Discord (no RESUME afterwards).
_SESSION_ENDING_CLOSE_CODES = frozenset({1000, 1001})

# Which intent a dispatch needs; events not listed are always delivered.
_GUILD_EVENTS_NEEDING = {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"}
_INTENT_BY_PREFIX = {
    "WEBHOOKS_UPDATE": ids.INTENT_GUILD_WEBHOOKS,
    "CHANNEL_": ids.INTENT_GUILDS,
    "THREAD_": ids.INTENT_GUILDS,
    "GUILD_ROLE_": ids.INTENT_GUILDS,
}


OnSent = Callable[[float], None]


def shard_for(guild_id: int | None, shard_count: int) -> int:
    """The shard Discord routes a guild's events to; events without a guild go to shard 0."""
    return 0 if guild_id is None else ids.shard_of(guild_id, shard_count)


def routing_guild_id(event: str, data: JSON) -> int | None:
    """The guild an event belongs to: ``guild_id``, or ``id`` for GUILD_CREATE/UPDATE/DELETE."""
    raw = data.get("guild_id")
    if raw is None and event in ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"):
        raw = data.get("id")
    return int(raw) if raw is not None else None


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    request: web.Request
    path: str
    compressor: Any = None  # zlib compressobj, or None for plain text frames
    identified: bool = False
    session: Session | None = None

    async def send(self, payload: JSON) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        if self.compressor is None:
            await self.ws.send_str(data.decode())
            return
        frame = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        await self.ws.send_bytes(frame)


@dataclass(eq=False)
class Session:
    """One gateway session: one shard of one IDENTIFY, resumable until it ends."""

    id: str
    intents: int
    identify: JSON
    shard_id: int = 0
    shard_count: int = 1
    seq: int = 0
    buffer: list[tuple[int, str, JSON]] = field(default_factory=list)
    connection: Connection | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    outbox: list[tuple[str, JSON, OnSent | None]] = field(default_factory=list)
    ready: bool = False  # READY was sent
    resumed_count: int = 0
    ended: bool = False  # closed with 1000/1001 or invalidated: never delivered to again

    @property
    def shard(self) -> tuple[int, int]:
        return (self.shard_id, self.shard_count)

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self.connection.ws.closed

    def handles(self, guild_id: int | None) -> bool:
        """Whether Discord routes this guild's events (``None``: DMs) to this session."""
        return shard_for(guild_id, self.shard_count) == self.shard_id


@dataclass(frozen=True)
class Delivery:
    """One numbered dispatch given to one session (``sent``: written to a live websocket then;
    otherwise buffered for RESUME; ``replayed``: re-sent on RESUME)."""

    shard_id: int
    shard_count: int
    session_id: str
    seq: int
    event: str
    data: JSON
    sent: bool
    replayed: bool = False


@dataclass
class GatewayLog:
    """What the bot did on the gateway, for assertions."""

    connects: list[str] = field(default_factory=list)  # paths used (/gateway, /gateway/resume)
    identifies: list[JSON] = field(default_factory=list)
    resumes: list[JSON] = field(default_factory=list)
    heartbeats: int = 0
    presence_updates: list[JSON] = field(default_factory=list)
    member_requests: list[JSON] = field(default_factory=list)
    dispatched: list[tuple[int, str, JSON]] = field(default_factory=list)  # every session's
    deliveries: list[Delivery] = field(default_factory=list)  # the same, with shard and session
    filtered: list[tuple[str, JSON]] = field(default_factory=list)  # withheld (intents, access)
    unrouted: list[tuple[str, JSON]] = field(default_factory=list)  # no live session for shard
    ready_count: int = 0
    resumed_count: int = 0
    ready_shards: list[int] = field(default_factory=list)  # shard id of every READY, in order
    resumed_shards: list[int] = field(default_factory=list)  # shard id of every RESUMED


Tailor = Callable[[Session, str, JSON], JSON | None]


class Gateway:
    """One emulated gateway serving any number of sessions (shards). ``ready_payloads`` builds
    a session's READY + GUILD_CREATEs; ``tailor`` adapts (or withholds, returning ``None``) a
    dispatch for one session, e.g. message content without the MESSAGE_CONTENT intent."""

    def __init__(
        self,
        *,
        token: Callable[[], str],
        ready_payloads: Callable[[Session], list[tuple[str, JSON]]],
        member_chunk: Callable[[JSON], JSON | None],
        allowed_privileged_intents: Callable[[], int],
        changed: Callable[[], None],
        now: Callable[[], float],
        tailor: Tailor | None = None,
    ) -> None:
        self._token = token
        self._ready_payloads = ready_payloads
        self._member_chunk = member_chunk
        self._allowed_privileged = allowed_privileged_intents
        self._changed = changed
        self._now = now
        self._tailor = tailor
        self.heartbeat_interval_ms = 41_250
        self.ack_heartbeats = True
        self.sessions: dict[str, Session] = {}  # every session ever opened, oldest first
        self.session: Session | None = None  # the one most recently IDENTIFY'd or RESUME'd
        self.log = GatewayLog()
        self._connections: set[Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- public ----------------------------------------------------------------------------

    @property
    def intents(self) -> int | None:
        """Intents of the most recent session (any shard)."""
        return self.session.intents if self.session else None

    @property
    def connected(self) -> bool:
        """The most recently IDENTIFY'd/RESUME'd session has a live websocket."""
        return self.session is not None and self.session.connection is not None

    def live_sessions(self) -> list[Session]:
        """Sessions Discord still delivers to (connected or resumable), oldest first."""
        return [s for s in self.sessions.values() if not s.ended]

    def shard_session(self, shard_id: int) -> Session | None:
        """The newest live session for ``shard_id`` (whatever its shard count), if any."""
        found = [s for s in self.live_sessions() if s.shard_id == shard_id]
        return found[-1] if found else None

    def shard_ready(self, shard_id: int) -> bool:
        """The newest live session for the shard got READY and is connected."""
        session = self.shard_session(shard_id)
        return session is not None and session.ready and session.connection is not None

    def sessions_for(self, guild_id: int | None) -> list[Session]:
        return [s for s in self.live_sessions() if s.handles(guild_id)]

    def queue(
        self,
        event: str,
        data: JSON,
        on_sent: OnSent | None = None,
        *,
        session: Session | None = None,
    ) -> None:
        """Dispatch from synchronous code; keeps order with later ``dispatch`` calls."""
        if not self.sessions:
            return  # not identified yet: GUILD_CREATE will carry the state
        targets = self._route(event, data, on_sent, session)
        if not targets:
            return
        task = asyncio.get_running_loop().create_task(self._flush_sessions(targets))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def dispatch(
        self,
        event: str,
        data: JSON,
        on_sent: OnSent | None = None,
        *,
        session: Session | None = None,
    ) -> None:
        """Deliver to every live session of the event's shard (or only to ``session``).
        Written to the websocket when connected, else buffered for RESUME."""
        if not self.sessions:
            raise RuntimeError(
                f"cannot dispatch {event}: no bot has identified yet (await emu.wait_until_ready())"
            )
        await self._flush_sessions(self._route(event, data, on_sent, session))

    async def flush(self) -> None:
        await self._flush_sessions(list(self.sessions.values()))

    def _route(
        self, event: str, data: JSON, on_sent: OnSent | None, only: Session | None
    ) -> list[Session]:
        guild_id = routing_guild_id(event, data)
        targets = [only] if only is not None else self.sessions_for(guild_id)
        if not targets:
            self.log.unrouted.append((event, data))
            LOGGER.warning(
                "NOT dispatching %s: no live session for shard %s (guild %s); shards live: %s",
                event,
                "of that guild" if guild_id is not None else 0,
                guild_id,
                sorted({s.shard for s in self.live_sessions()}),
            )
            return []
        callback = _once(on_sent) if on_sent is not None else None
        for target in targets:
            target.outbox.append((event, data, callback))
        return targets

    async def _flush_sessions(self, sessions: list[Session]) -> None:
        for session in sessions:
            await self._flush(session)
        self._changed()

    async def _flush(self, session: Session) -> None:
        async with session.lock:
            while session.outbox:
                event, data, on_sent = session.outbox.pop(0)
                if not self._wanted(session, event, data):
                    self.log.filtered.append((event, data))
                    LOGGER.log(
                        logging.WARNING if event.startswith("MESSAGE_") else logging.DEBUG,
                        "NOT dispatching %s: the bot lacks the intent it needs (intents=%s)",
                        event,
                        session.intents,
                    )
                    continue
                tailored = self._tailor(session, event, data) if self._tailor else data
                if tailored is None:
                    self.log.filtered.append((event, data))
                    LOGGER.info("NOT dispatching %s to shard %s (withheld)", event, session.shard)
                    continue
                await self._send_dispatch(session, event, tailored)
                if on_sent is not None:
                    on_sent(self._now())

    def _pick(self, shard: int | None) -> Session | None:
        if shard is None:
            return self.session
        return self.shard_session(shard)

    async def drop(
        self, *, code: int = 4000, abrupt: bool = False, shard: int | None = None
    ) -> None:
        """Close a websocket (the most recent session's, or ``shard``'s); the session stays
        resumable and buffers dispatches."""
        session = self._pick(shard)
        connection = session.connection if session else None
        if session is None or connection is None:
            raise RuntimeError(f"no connected bot to drop (shard={shard})")
        session.connection = None
        connection.session = None
        if abrupt:
            transport = connection.request.transport
            if transport is not None:
                transport.abort()
            return
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(
                connection.ws.close(code=code, message=b"emulator dropped the connection"), 5
            )

    async def send_op(self, op: int, data: Any = None, *, shard: int | None = None) -> None:
        """Send a raw opcode (e.g. RECONNECT, INVALID_SESSION) on a live connection (the most
        recent session's, or ``shard``'s). A non-resumable INVALID_SESSION ends the session."""
        session = self._pick(shard)
        if session is None or session.connection is None:
            raise RuntimeError(f"no connected bot (shard={shard})")
        if op == OP_INVALID_SESSION and not data:
            session.ended = True
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
            client_ended = ws.close_code in _SESSION_ENDING_CLOSE_CODES
            for session in self.sessions.values():
                if session.connection is connection:
                    session.connection = None
                    if client_ended:
                        session.ended = True  # Discord: 1000/1001 invalidates the session
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
            if chunk is not None and connection.session is not None:
                await self.dispatch("GUILD_MEMBERS_CHUNK", chunk, session=connection.session)
        else:
            LOGGER.error("gateway received unknown opcode %s: %r", op, payload)
        self._changed()

    @staticmethod
    def _shard_of_identify(data: JSON) -> tuple[int, int] | None:
        raw = data.get("shard", [0, 1])
        if not isinstance(raw, list) or len(raw) != 2:
            return None
        try:
            shard_id, shard_count = int(raw[0]), int(raw[1])
        except (TypeError, ValueError):
            return None
        if shard_count < 1 or not 0 <= shard_id < shard_count:
            return None
        return shard_id, shard_count

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
        shard = self._shard_of_identify(data)
        if shard is None:
            LOGGER.error("IDENTIFY with an invalid shard %r", data.get("shard"))
            await connection.ws.close(code=CLOSE_INVALID_SHARD, message=b"Invalid shard.")
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
        session = Session(
            id=secrets.token_hex(16),
            intents=intents,
            identify=data,
            shard_id=shard[0],
            shard_count=shard[1],
        )
        self.sessions[session.id] = session
        self.session = session
        async with session.lock:
            session.connection = connection
            connection.session = session
            for event, payload in self._ready_payloads(session):
                await self._send_dispatch(session, event, payload)
            session.ready = True
        self.log.ready_count += 1
        self.log.ready_shards.append(session.shard_id)
        await self._flush_sessions([session])

    async def _resume(self, connection: Connection, data: JSON) -> None:
        self.log.resumes.append(data)
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or session.ended or data.get("token") != self._token():
            LOGGER.warning(
                "RESUME of unknown or ended session %r: INVALID_SESSION", data.get("session_id")
            )
            await connection.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        last_seq = int(data.get("seq") or 0)
        connection.identified = True
        async with session.lock:
            session.connection = connection
            connection.session = session
            for seq, event, payload in session.buffer:
                if seq > last_seq:
                    await connection.send({"op": OP_DISPATCH, "s": seq, "t": event, "d": payload})
                    self.log.deliveries.append(
                        Delivery(
                            session.shard_id,
                            session.shard_count,
                            session.id,
                            seq,
                            event,
                            payload,
                            sent=True,
                            replayed=True,
                        )
                    )
            await self._send_dispatch(session, "RESUMED", {})
        self.session = session
        session.resumed_count += 1
        self.log.resumed_count += 1
        self.log.resumed_shards.append(session.shard_id)
        await self._flush_sessions([session])

    # -- internals -------------------------------------------------------------------------

    def _wanted(self, session: Session, event: str, data: JSON) -> bool:
        for prefix, intent in _INTENT_BY_PREFIX.items():
            if event.startswith(prefix):
                return bool(session.intents & intent)
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
        sent = False
        if connection is not None and not connection.ws.closed:
            try:
                await connection.send({"op": OP_DISPATCH, "s": session.seq, "t": event, "d": data})
                sent = True
            except ConnectionError:
                LOGGER.info(
                    "connection lost while sending %s; it will be replayed on RESUME", event
                )
        self.log.deliveries.append(
            Delivery(
                session.shard_id, session.shard_count, session.id, session.seq, event, data, sent
            )
        )


def _once(callback: OnSent) -> OnSent:
    """``callback`` for the first session that gets the dispatch only."""
    called = False

    def wrapper(at: float) -> None:
        nonlocal called
        if not called:
            called = True
            callback(at)

    return wrapper
