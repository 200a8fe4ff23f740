"""`python -m tzurot chat`: a terminal conversation through the real jobs, worker and history,
run as a child process on the test Redis and the fake LLM, scripted through stdin."""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.fixtures.app import (
    LLM_KEY,
    PROJECT_ROOT,
    SIGNING_KEY,
    AppFactory,
    make_settings,
    settings_env,
)
from tests.fixtures.fake_llm import FakeLLM, Step
from tests.fixtures.redis_server import RedisServer
from tzurot.app import Application
from tzurot.config import Component
from tzurot.infra import EmbeddedRedis, connect
from tzurot.personalities.models import Personality
from tzurot.personalities.store import PersonalityStore
from tzurot.terminal import (
    ChatSession,
    Terminal,
    clean_line,
    printable,
    running_embedded_redis,
    terminal_settings,
)

T = TypeVar("T")
REF = re.compile(r"\(error: (?P<category>[a-z_]+); ref: (?P<ref>[0-9a-f]{8})\)")


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def chat_env(
    redis_server: RedisServer, fake_llm: FakeLLM, personalities_dir: Path, tmp_path: Path
) -> dict[str, str]:
    env = settings_env(redis_server.url, fake_llm.base_url, personalities_dir)
    del env["LOG_LEVEL"]  # the terminal's own default (WARNING) applies
    env["DATA_DIR"] = str(tmp_path / "data")
    return env


async def chat(env: dict[str, str], *args: str, lines: list[str], timeout: float = 90) -> Run:
    inherited = {k: v for k, v in os.environ.items() if k not in {"LOG_LEVEL", "LOG_FORMAT"}}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tzurot", "chat", *args,
        cwd=PROJECT_ROOT, env={**inherited, **env},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    script = "".join(line + "\n" for line in lines).encode()
    try:
        out, err = await asyncio.wait_for(proc.communicate(script), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def contents(call_json: dict[str, object] | None) -> str:
    assert call_json is not None
    messages = call_json["messages"]
    assert isinstance(messages, list)
    return "\n".join(str(m.get("content", "")) for m in messages)


def assert_clean(run: Run) -> None:
    for stream in (run.out, run.err):
        assert "Traceback" not in stream
        assert LLM_KEY not in stream and SIGNING_KEY not in stream
    assert "[info" not in run.err and '"level": "info"' not in run.err  # WARNING by default


async def test_a_conversation_remembers_resets_and_switches(
    chat_env: dict[str, str], redis_server: RedisServer, fake_llm: FakeLLM
) -> None:
    # A character created in Redis by the store, as the bot's /character create would.
    redis = connect(redis_server.url)
    nova = Personality(name="Nova", system_prompt="You are Nova, a bright star.", aliases=("nv",))
    await PersonalityStore(redis).upsert(nova)

    run = await chat(
        chat_env, "Lilith", "--name", "Ana",
        lines=["hello", "", "   ", "how are you?", "/reset", "again", "/switch Nova",
               "hi nova", "/switch Lilit", "/switch", "/bogus", "/help", "//slash"],
    )  # fmt: skip

    assert run.code == 0, run.err  # EOF ends it cleanly
    assert_clean(run)
    out = run.out
    assert "Talking to Lilith the Wise." in out
    assert "Lilith the Wise: reply to: Ana: hello\n" in out
    assert "Lilith the Wise: reply to: Ana: how are you?\n" in out
    assert "Conversation cleared (4 messages)." in out
    assert "Lilith the Wise: reply to: Ana: again\n" in out
    assert "Talking to Nova." in out
    assert "Nova: reply to: Ana: hi nova\n" in out
    assert "No character named 'Lilit'. Did you mean: Lilith?" in out
    assert "Usage: /switch NAME" in out
    assert "Unknown command /bogus; /help lists them." in out
    assert "/reset" in out and "/quit" in out  # the help text
    assert "Nova: reply to: Ana: /slash\n" in out

    calls = fake_llm.chat_calls
    assert len(calls) == 5  # empty lines and commands never reach the model
    second = contents(calls[1].json)
    assert "hello" in second and "reply to: Ana: hello" in second  # the first turn is history
    after_reset = contents(calls[2].json)
    assert "hello" not in after_reset and "how are you" not in after_reset
    to_nova = contents(calls[3].json)
    assert "You are Nova, a bright star." in to_nova
    assert "again" in to_nova  # the conversation stays across /switch
    # Its own transcript channel, under the stable local user id.
    assert await redis.exists("tzurot:transcript:{terminal:terminal}:turns")
    await redis.aclose()


async def test_failures_and_hostile_lines_get_words_never_tracebacks(
    chat_env: dict[str, str], fake_llm: FakeLLM
) -> None:
    fake_llm.script(Step(status=200), Step(status=400), Step(status=500))
    env = {**chat_env, "JOB_ATTEMPTS": "1", "MAX_MESSAGE_CHARS": "50"}

    run = await chat(
        env, "lil", "--user", "tester",
        lines=["x" * 51, "he\x1b[31mllo\x07 th\x00ere", "one", "two", "three", "/quit",
               "never sent"],
    )  # fmt: skip

    assert run.code == 0, run.err
    assert_clean(run)
    lines = run.out.splitlines()
    assert "Not sent: that message is 51 characters; the limit is 50 (MAX_MESSAGE_CHARS)." in lines
    assert "Lilith the Wise: reply to: User: hello there" in lines
    failures = [line for line in lines if REF.search(line)]
    assert len(failures) == 2, run.out
    for line, category in zip(failures, ["bad_request", "server_error"], strict=True):
        assert line.startswith("Lilith the Wise: Lilith frowns: something went wrong. (error: ")
        match = REF.search(line)
        assert match is not None and match["category"] == category
    assert "Lilith the Wise: reply to: User: three" in lines
    assert len(fake_llm.chat_calls) == 4  # the long line was refused; nothing after /quit
    assert "never sent" not in "".join(contents(c.json) for c in fake_llm.chat_calls)


class OnLoop:
    """The terminal's runner for a test: the app runs in the test's loop, the terminal in a
    thread of its own (as the real one runs in the main thread)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


async def terminal(
    app: Application, text: str, ref: str | None, *, tty: bool = False
) -> tuple[str, str]:
    """Chooses (from `ref` or by asking) and converses on `app`; (choice, what was shown)."""
    stdin = FakeTty(text) if tty else io.StringIO(text)
    stdout = FakeTty() if tty else io.StringIO()
    term = Terminal(ChatSession(app), OnLoop(), stdin, stdout)

    def talk() -> str:
        chosen = term.choose(ref)
        if chosen == "chosen":
            term.converse()
        return chosen

    chosen = await asyncio.to_thread(talk)
    return chosen, stdout.getvalue()


async def test_unknown_names_and_choosing_from_the_list(
    start_app: AppFactory, fake_llm: FakeLLM
) -> None:
    app = await start_app(COMPONENTS="worker")

    chosen, out = await terminal(app, "hi\n", "Lilit")  # a script is not asked again
    assert chosen == "failed"
    assert out == "No character named 'Lilit'. Did you mean: Lilith?\n"

    chosen, out = await terminal(app, "nobody\nhi\n", None)
    assert chosen == "failed"
    assert out.startswith("Characters:\n  1. Lilith (Lilith the Wise) - also lil\nWhich")
    assert "No character named 'nobody'. /characters lists them." in out

    chosen, out = await terminal(app, "1\nhi there\n", None)
    assert chosen == "chosen"
    assert "Lilith the Wise: reply to: User: hi there\n" in out

    # A person at a terminal is asked until they choose, with prompts; EOF leaves.
    chosen, out = await terminal(app, "nobody\n\nLIL\nhow do you do\n", "Lilit", tty=True)
    assert chosen == "chosen"
    assert out.count("character> ") == 3 and "you> " in out
    assert "Lilith the Wise is thinking…\r\x1b[KLilith the Wise: reply to: User: how do" in out
    chosen, out = await terminal(app, "", None, tty=True)
    assert chosen == "left"
    assert len(fake_llm.chat_calls) == 2

    assert app.personalities is not None and await app.personalities.delete("lilith")
    chosen, out = await terminal(app, "", "Lilith")
    assert chosen == "failed" and out.startswith("There are no characters yet")


def test_lines_and_replies_are_cleaned_of_control_characters() -> None:
    assert clean_line("  a\x1b[2Jb\x1b]0;title\x07c\td\x7f\x00  ") == "abc\td"
    assert clean_line("\x1b[A\x1b[B") == ""
    assert printable("one\ntwo\x1b[31m\x08") == "one\ntwo"


def test_the_terminal_runs_the_worker_alone_under_a_name_of_its_own(tmp_path: Path) -> None:
    settings = make_settings(
        {"DATA_DIR": str(tmp_path), "COMPONENTS": "worker", "PROCESS_NAME": "box"}
    )
    chosen = terminal_settings(settings)
    assert chosen.components == frozenset({Component.WORKER})
    assert chosen.process_name == "box-terminal"
    assert chosen.worker_concurrency <= 4
    assert chosen.redis_url is None  # no bot running here: the embedded Redis is started
    assert terminal_settings(settings, with_api=True).components == frozenset(
        {Component.WORKER, Component.API}
    )


async def test_a_running_bots_embedded_redis_is_shared_not_started_twice(tmp_path: Path) -> None:
    (tmp_path / "redis.sock").write_text("")  # left behind by a bot that is gone
    assert running_embedded_redis(tmp_path) is None
    embedded = EmbeddedRedis(tmp_path)
    await embedded.start()
    try:
        assert running_embedded_redis(tmp_path) == embedded.url
        settings = make_settings({"DATA_DIR": str(tmp_path), "COMPONENTS": "worker"})
        shared = terminal_settings(settings).redis_url
        assert shared is not None and shared.get_secret_value() == embedded.url
    finally:
        await embedded.stop()
