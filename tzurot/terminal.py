"""`python -m tzurot chat [personality]`: talk to a character in the terminal, without Discord.

The conversation goes the way a Discord one does: each line becomes a `GenerationRequest` on
the job queue, a worker (this process's, or any other process's on the same Redis) answers it
with the same settings cascade, and the history is kept in a transcript channel of its own
(`terminal:{user}`), so the character remembers the earlier turns. The application runs with
the worker only (no Discord token, no API unless asked for), on REDIS_URL or the embedded Redis
under DATA_DIR, so characters, settings and history are those of the bot.

The event loop runs in a thread of its own; the main thread owns the terminal (readline
editing, Ctrl-C, EOF) and hands each turn to the loop, so leaving is always clean: the
application is stopped the way the bot stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import re
import signal
import socket
import sys
import threading
import unicodedata
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO, TypeVar

from pydantic import SecretStr, ValidationError

from tzurot.ai.contracts import (
    MAX_MESSAGE_CHARS_HARD,
    GenerationRequest,
    new_reference_id,
    new_request_id,
)
from tzurot.ai.error_messages import DEFAULT_ERROR_MESSAGE
from tzurot.config import Component, Settings
from tzurot.conversations import TranscriptStore
from tzurot.jobs import JobView
from tzurot.logs import get_logger
from tzurot.personalities.models import Personality, normalize_ref
from tzurot.redaction import redactor

if TYPE_CHECKING:
    from tzurot.app import Application

log = get_logger(__name__)

T = TypeVar("T")

TERMINAL_USER = "terminal"
DEFAULT_USER_NAME = "User"
PROMPT = "you> "
PICK_PROMPT = "character> "
# The closest Discord equivalent of a one-to-one terminal chat, so a character behaves here as
# it would in a DM.
LOCATION = "a direct message"
USER_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,40}$")
# The terminal's own worker takes a few jobs at a time (it may also serve the bot's queue).
MAX_WORKER_CONCURRENCY = 4
# Beyond the job's own deadline: SAQ's margin and a little slack.
WAIT_MARGIN_SECONDS = 90.0
MAX_SUGGESTIONS = 5

HELP = """\
Commands:
  /switch NAME   talk to another character (the conversation stays; /reset clears it)
  /characters    list the characters
  /reset         clear this terminal conversation (every character's turns in it)
  /help          this text
  /quit          leave (so do Ctrl-D and Ctrl-C)
Anything else is said to the character; start a line with // to say something starting
with /."""

# ANSI escape sequences (arrow keys without readline, pasted colours) go as a whole; any other
# control character on its own. Tabs stay.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


Choice = Literal["chosen", "left", "failed"]


class ChatError(Exception):
    """A refusal meant for the person at the terminal (no traceback)."""


def clean_line(raw: str) -> str:
    """A typed line without escape sequences, control characters or surrounding space."""
    text = _ESCAPES.sub("", raw)
    kept = (ch for ch in text if ch == "\t" or unicodedata.category(ch) not in {"Cc", "Cs"})
    return "".join(kept).strip()


def printable(text: str) -> str:
    """A reply as the terminal may show it: no escape sequences, newlines and tabs kept."""
    text = _ESCAPES.sub("", text)
    return "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cs"}
    )


def check_user_id(user_id: str) -> str:
    if not USER_ID_PATTERN.match(user_id):
        raise ChatError("--user: 1-40 characters of A-Z a-z 0-9 . _ -")
    return user_id


def terminal_settings(settings: Settings, *, with_api: bool = False) -> Settings:
    """The bot's settings as the terminal runs them: the worker (and the API if asked for), a
    few worker slots, a process name of its own, and a running bot's embedded Redis if one
    is up under DATA_DIR (starting a second redis-server on its files would be unsafe)."""
    components = {Component.WORKER} | ({Component.API} if with_api else set())
    update: dict[str, Any] = {
        "components": frozenset(components),
        "worker_concurrency": min(settings.worker_concurrency, MAX_WORKER_CONCURRENCY),
        "process_name": f"{(settings.process_name or _host_name())[:39]}-terminal",
    }
    if settings.redis_url is None and settings.redis_sentinels is None:
        running = running_embedded_redis(settings.data_dir)
        if running is not None:
            update["redis_url"] = SecretStr(running)
    return settings.model_copy(update=update)


def running_embedded_redis(data_dir: Path) -> str | None:
    """The URL of the embedded Redis a running bot serves under `data_dir`, if one answers."""
    path = data_dir.resolve() / "redis.sock"
    if not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError:
        return None  # a stale socket: the application starts its own server
    return f"unix://{path}?db=0" if answer.startswith((b"+PONG", b"-NOAUTH")) else None


@dataclass(frozen=True)
class Reply:
    speaker: str
    text: str
    failed: bool = False

    def render(self) -> str:
        return f"{printable(self.speaker)}: {printable(self.text)}"


class ChatSession:
    """One terminal conversation on a started `Application`: its turns go through the job
    queue exactly as Discord's do, and its history lives in its own transcript channel."""

    def __init__(
        self,
        app: Application,  # started
        *,
        user_id: str = TERMINAL_USER,
        user_name: str = DEFAULT_USER_NAME,
    ) -> None:
        assert app.jobs is not None and app.personalities is not None and app.redis is not None
        self._jobs = app.jobs
        self._personalities = app.personalities
        self._transcripts = TranscriptStore(app.redis)
        self.user_id = check_user_id(user_id)
        self.user_name = user_name
        settings = app.settings
        self.max_chars = min(settings.max_message_chars, MAX_MESSAGE_CHARS_HARD)
        self.wait_seconds = settings.job_timeout + WAIT_MARGIN_SECONDS

    @property
    def channel_id(self) -> str:
        return f"terminal:{self.user_id}"

    async def characters(self) -> list[Personality]:
        # The terminal is the operator's (like the API token, it acts as the bot owner): every
        # character is listed, private ones marked.
        return await self._personalities.list()

    async def find(self, ref: str) -> Personality | None:
        ref = ref.strip()
        if not ref:
            return None
        return await self._personalities.get(ref)

    async def suggestions(self, ref: str) -> list[str]:
        """Names of characters close to `ref` (typos, parts of names)."""
        wanted = normalize_ref(ref.strip().removeprefix("@"))
        by_ref: dict[str, str] = {}
        for personality in await self.characters():
            for name in (personality.name, personality.display_name, personality.slug,
                         *personality.aliases):  # fmt: skip
                by_ref.setdefault(normalize_ref(name), personality.name)
        found = [by_ref[r] for r in difflib.get_close_matches(wanted, list(by_ref), n=10)]
        if wanted:
            found += [name for r, name in by_ref.items() if wanted in r or r in wanted]
        return list(dict.fromkeys(found))[:MAX_SUGGESTIONS]

    async def say(self, personality: Personality, text: str) -> Reply:
        """One turn: submit, wait for the worker, and the reply (or the failure) in words."""
        if len(text) > self.max_chars:
            raise ChatError(
                f"Not sent: that message is {len(text)} characters; the limit is "
                f"{self.max_chars} (MAX_MESSAGE_CHARS)."
            )
        try:
            request = GenerationRequest(
                request_id=new_request_id(),
                personality=personality,
                message=text,
                user_id=self.user_id,
                user_name=self.user_name,
                channel_id=self.channel_id,
                location=LOCATION,
            )
        except ValidationError as exc:
            problems = "; ".join(e["msg"] for e in exc.errors(include_url=False))
            raise ChatError(f"Not sent: {problems}.") from None
        try:
            submission = await self._jobs.submit(request)
            view = await self._jobs.wait(submission.job_id, self.wait_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reference = new_reference_id()
            detail = redactor.redact(f"{type(exc).__name__}: {exc}")[:300]
            log.warning("terminal turn failed", reference_id=reference, error=detail)
            log.debug("terminal turn failed (details)", reference_id=reference, exc_info=True)
            message = personality.error_message or DEFAULT_ERROR_MESSAGE
            return _failure_reply(personality, message, "unavailable", reference)
        return _reply_of(personality, view, self.wait_seconds)

    async def reset(self) -> int:
        return await self._transcripts.clear(self.channel_id)


def _reply_of(personality: Personality, view: JobView | None, waited: float) -> Reply:
    if view is None or not view.done:
        job = view.job_id if view is not None else "unknown"
        text = f"(no reply within {waited:g} s; the job {job} may still finish)"
        return Reply(personality.display_name, text, failed=True)
    result = view.result
    if result is not None and result.status == "completed" and result.content:
        return Reply(result.display_name, result.content)
    failure = view.failure
    message = (result.error_message if result else None) or personality.error_message
    message = message or DEFAULT_ERROR_MESSAGE
    if failure is None:
        return Reply(personality.display_name, message, failed=True)
    return _failure_reply(personality, message, failure.category, failure.reference_id)


def _failure_reply(personality: Personality, message: str, category: str, ref: str) -> Reply:
    return Reply(personality.display_name, f"{message} (error: {category}; ref: {ref})", True)


def describe(personality: Personality) -> str:
    line = personality.name
    if personality.display_name != personality.name:
        line += f" ({personality.display_name})"
    if personality.aliases:
        line += f" - also {', '.join(personality.aliases)}"
    if not personality.public:
        line += " [private]"
    return line


# -- the terminal ----------------------------------------------------------------------------


class Runner(Protocol):
    """Runs a coroutine on the application's event loop and waits for it (from another
    thread: the terminal's)."""

    def run(self, coro: Coroutine[Any, Any, T]) -> T: ...


class LoopThread:
    """An event loop in a daemon thread; the main thread hands it coroutines and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="tzurot-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop; Ctrl-C while waiting cancels it and propagates."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        async def cancel_the_rest() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_the_rest(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


class _Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP: leave as Ctrl-C does."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted


class Terminal:
    """Reads lines, runs commands, prints replies. `stdin`/`stdout` may be pipes (scripts)."""

    def __init__(self, session: ChatSession, loop: Runner, stdin: TextIO, stdout: TextIO) -> None:
        self.session = session
        self._loop = loop
        self._in = stdin
        self._out = stdout
        self.interactive = _isatty(stdin)
        self._fancy = self.interactive and _isatty(stdout)
        self.personality: Personality | None = None

    def say(self, text: str = "") -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def read(self, prompt: str) -> str | None:
        """The next line, or None at EOF. Prompts are shown to people, not to scripts."""
        if self.interactive:
            try:
                return input(prompt) if self._in is sys.stdin else self._read_raw(prompt)
            except EOFError:
                self.say()
                return None
        return self._read_raw("")

    def _read_raw(self, prompt: str) -> str | None:
        if prompt:
            self._out.write(prompt)
            self._out.flush()
        line = self._in.readline()
        return line.rstrip("\r\n") if line else None

    # -- choosing a character ----------------------------------------------------------

    def choose(self, ref: str | None) -> Choice:
        """Sets `personality` from `ref`, or asks: "chosen", "left" (EOF) or "failed"."""
        characters = self._loop.run(self.session.characters())
        if not characters:
            self.say(
                "There are no characters yet: put a TOML file in PERSONALITIES_DIR, or create "
                "one in Discord with /character create."
            )
            return "failed"
        if ref:
            found = self._loop.run(self.session.find(ref))
            if found is not None:
                self.personality = found
                return "chosen"
            self._unknown(ref)
            if not self.interactive:
                return "failed"
        self._list(characters)
        while True:
            self.say("Which character? (a name or a number)")
            line = self.read(PICK_PROMPT)
            if line is None:
                return "left"
            choice = clean_line(line)
            if not choice:
                continue
            found = self._pick(choice, characters)
            if found is not None:
                self.personality = found
                return "chosen"
            self._unknown(choice)
            if not self.interactive:
                return "failed"

    def _pick(self, choice: str, characters: list[Personality]) -> Personality | None:
        if choice.isdigit() and 1 <= int(choice) <= len(characters):
            return characters[int(choice) - 1]
        return self._loop.run(self.session.find(choice))

    def _list(self, characters: list[Personality]) -> None:
        self.say("Characters:")
        for number, personality in enumerate(characters, 1):
            self.say(f"  {number}. {printable(describe(personality))}")

    def _unknown(self, ref: str) -> None:
        shown = printable(ref)[:80]
        close = self._loop.run(self.session.suggestions(ref))
        if close:
            self.say(f"No character named {shown!r}. Did you mean: {', '.join(close)}?")
        else:
            self.say(f"No character named {shown!r}. /characters lists them.")

    # -- the conversation --------------------------------------------------------------

    def converse(self) -> None:
        assert self.personality is not None
        self._greet()
        while True:
            line = self.read(PROMPT)
            if line is None:
                return
            text = clean_line(line)
            if not text:
                continue
            try:
                if text.startswith("/") and not text.startswith("//"):
                    if not self._command(text):
                        return
                    continue
                self._turn(text.removeprefix("/") if text.startswith("//") else text)
            except Exception as exc:  # Redis unreachable for a command, say: tell, go on
                reference = new_reference_id()
                detail = redactor.redact(f"{type(exc).__name__}: {exc}")[:300]
                log.warning("terminal command failed", reference_id=reference, error=detail)
                self.say(f"That did not work (storage unavailable?; ref: {reference}).")

    def _greet(self) -> None:
        assert self.personality is not None
        name = printable(self.personality.display_name)
        self.say(f"Talking to {name}. /help lists the commands, /quit leaves.")

    def _turn(self, text: str) -> None:
        assert self.personality is not None
        if self._fancy:
            self._out.write(f"{printable(self.personality.display_name)} is thinking…")
            self._out.flush()
        try:
            reply = self._loop.run(self.session.say(self.personality, text))
        except ChatError as refusal:
            reply = None
            message = str(refusal)
        finally:
            if self._fancy:
                self._out.write("\r\x1b[K")
        if reply is None:
            self.say(message)
        else:
            self.say(reply.render())

    def _command(self, text: str) -> bool:
        """Runs a /command; False means leave."""
        name, _, argument = text[1:].partition(" ")
        name, argument = name.casefold(), argument.strip()
        if name in {"quit", "exit", "q"}:
            return False
        if name == "help":
            self.say(HELP)
        elif name == "reset":
            removed = self._loop.run(self.session.reset())
            self.say(f"Conversation cleared ({removed} messages).")
        elif name in {"characters", "list"}:
            self._list(self._loop.run(self.session.characters()))
        elif name == "switch":
            self._switch(argument)
        else:
            self.say(f"Unknown command /{printable(name)[:40]}; /help lists them.")
        return True

    def _switch(self, ref: str) -> None:
        if not ref:
            self.say("Usage: /switch NAME (/characters lists them).")
            return
        found = self._loop.run(self.session.find(ref))
        if found is None:
            self._unknown(ref)
            return
        self.personality = found
        self._greet()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _host_name() -> str:
    name = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in socket.gethostname())
    return name[:39] or "tzurot"


def run_chat(
    settings: Settings,
    personality: str | None,
    *,
    user_id: str = TERMINAL_USER,
    user_name: str = DEFAULT_USER_NAME,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """The `chat` command: start the application, talk, stop it. Returns the exit code."""
    from tzurot.app import Application

    app = Application(settings)
    loop = LoopThread()
    previous = {
        signum: signal.signal(signum, _interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)
    }
    code = 0
    if _isatty(stdin) and stdin is sys.stdin:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - line editing and history for input()
    try:
        if _isatty(stdin):
            stderr.write("Starting (Redis, the worker, the model client)…\n")
            stderr.flush()
        try:
            loop.run(app.start())
        except KeyboardInterrupt:
            raise
        except Exception:
            loop.run(_quietly(app.stop()))
            raise
        terminal = Terminal(ChatSession(app, user_id=user_id, user_name=user_name),
                            loop, stdin, stdout)  # fmt: skip
        try:
            chosen = terminal.choose(personality)
            if chosen == "chosen":
                terminal.converse()
            code = 1 if chosen == "failed" else 0
        except KeyboardInterrupt:
            terminal.say()
        except Exception as exc:  # e.g. Redis gone while choosing: say so, still stop cleanly
            stderr.write(f"tzurot: failed: {redactor.redact(f'{type(exc).__name__}: {exc}')}\n")
            code = 1
        stopping_note = "Stopping…\n" if terminal.interactive else ""
        stderr.write(stopping_note)
        stderr.flush()
        loop.run(app.stop())
    except KeyboardInterrupt:
        # Interrupted while starting or stopping: stop once more, briefly.
        with contextlib.suppress(BaseException):
            loop.run(_quietly(app.stop()))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        loop.close()
    return code


async def _quietly(coro: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(Exception):
        await coro
