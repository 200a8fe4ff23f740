"""Pipeline benchmark: submit -> SAQ worker -> model -> result, what it costs in Redis and CPU.

Run from the project root:  .venv/bin/python -m bench.pipeline

Everything is on 127.0.0.1: a private redis-server on a free port, the fake OpenAI-compatible
server (tests/fixtures/fake_llm.py) in its own process, a real `Application` in this process
for rows 1-3, and for row 4 a fresh floor process and child `python -m tzurot` workers. Prints
one table and writes it to bench/results.md under its own section. Every loop has a count and
a time limit. See bench/README.md for what each row measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import logging
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

# Importing the package first keeps litellm offline (no cost-map download) in this process.
import tzurot  # noqa: F401  (side effect: LITELLM_LOCAL_MODEL_COST_MAP / offline mode)
from bench._harness import (
    PROJECT_ROOT,
    FakeModel,
    Row,
    TzurotChild,
    cpu_seconds,
    latency_row,
    machine_line,
    pct,
    private_redis,
    process_cpu_seconds,
    publish,
    redis_pid,
)
from tests.fixtures.app import make_settings, settings_env, write_personalities
from tzurot.ai.contracts import GenerationRequest
from tzurot.ai.models import ChatMessage, Completion, ModelTarget
from tzurot.ai.provider import ChatModel
from tzurot.app import Application
from tzurot.infra.keys import DONE_CHANNEL
from tzurot.jobs import JobQueue, job_id_for
from tzurot.logs import configure_logging
from tzurot.personalities import Personality

SECTION_TITLE = "## Pipeline (`python -m bench.pipeline`)"
COMMAND = ".venv/bin/python -m bench.pipeline"
PERSONALITY = "lilith"

PHASE_LIMIT = 60.0  # any one measured loop (seconds)
SHORT_WAIT = 10.0  # per generation, model at 0 ms
LONG_WAIT = 45.0  # per generation, model at 2 s
CHILD_LIMIT = 120.0  # a child process's whole run (the floor) or its start-up (a worker)
STOP_LIMIT = 30.0  # stopping a child tzurot


# --- the model clients --------------------------------------------------------------------------


class Instant:
    """A model client that answers at once: what is left is the pipeline's own cost."""

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        target: ModelTarget,
        *,
        temperature: float,
        max_tokens: int,
        timeout: float,
        **sampling: float,
    ) -> Completion:
        return Completion(
            content="ok", thinking=None, model=target.model, prompt_tokens=None,
            completion_tokens=None, finish_reason="stop",
        )  # fmt: skip


# --- requests and round trips -------------------------------------------------------------------


def new_request(
    personality: Personality, run: str, tag: str, index: int, channel_id: str | None = None
) -> GenerationRequest:
    return GenerationRequest(
        request_id=f"bench-{run}-{tag}-{index}",
        personality=personality,
        message=f"benchmark message {index}: what do the old maps in the east wing show?",
        user_id="bench-user",
        user_name="Bench",
        channel_id=channel_id,
    )


async def round_trip(jobs: JobQueue, request: GenerationRequest, wait_s: float) -> float | None:
    """One generation through the typed interface: seconds from submit to the completed result
    (None if it did not complete)."""
    started = time.perf_counter()
    submission = await jobs.submit(request)
    view = await jobs.wait(submission.job_id, wait_s)
    if view is None or view.status != "completed":
        return None
    return time.perf_counter() - started


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    def add(self, seconds: float | None) -> None:
        if seconds is None:
            self.failures += 1
        else:
            self.latencies_ms.append(seconds * 1000.0)

    @property
    def done(self) -> int:
        return len(self.latencies_ms) + self.failures


async def sequential(
    count: int, one: Callable[[int], Awaitable[float | None]], limit_s: float = PHASE_LIMIT
) -> Run:
    run = Run()
    deadline = time.monotonic() + limit_s
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    for index in range(count):
        if time.monotonic() > deadline:
            break
        run.add(await one(index))
    run.wall_s, run.cpu_s = time.perf_counter() - wall0, cpu_seconds() - cpu0
    return run


async def concurrent(
    count: int,
    in_flight: int,
    one: Callable[[int], Awaitable[float | None]],
    limit_s: float = PHASE_LIMIT,
) -> Run:
    """`count` calls of `one`, at most `in_flight` at once, within `limit_s`."""
    run = Run()
    gate = asyncio.Semaphore(in_flight)

    async def gated(index: int) -> None:
        async with gate:
            run.add(await one(index))

    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    tasks = [asyncio.create_task(gated(i)) for i in range(count)]
    _, pending = await asyncio.wait(tasks, timeout=limit_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    run.failures += len(pending)
    run.wall_s, run.cpu_s = time.perf_counter() - wall0, cpu_seconds() - cpu0
    return run


# --- set-up -------------------------------------------------------------------------------------


@dataclass
class Env:
    run: str
    redis: Any  # tests.fixtures.redis_server.RedisServer
    fake: FakeModel
    personalities: Path
    tmp: Path
    args: argparse.Namespace
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/{db}"


@contextlib.asynccontextmanager
async def running_app(
    env: Env, db: int, chat_model: ChatModel | None = None, **extra: str
) -> AsyncIterator[tuple[Application, Personality]]:
    settings = make_settings(
        settings_env(env.url(db), env.fake.base_url, env.personalities, **extra)
    )
    app = Application(settings, chat_model=chat_model)
    await app.start()
    if "gc-freeze" in env.args.variants.split(","):  # what bench/_variants.py does
        gc.collect()
        gc.freeze()
    try:
        assert app.personalities is not None
        personality = await app.personalities.get(PERSONALITY)
        assert personality is not None
        yield app, personality
    finally:
        await app.stop()
        gc.unfreeze()


@contextlib.contextmanager
def logging_to(path: Path, level: str) -> Iterator[TextIO]:
    """The bot's logging set-up (JSON lines, as deployed), into a file instead of stdout."""
    with path.open("a", encoding="utf-8") as stream:
        configure_logging(level, "json", stream=stream)
        try:
            yield stream
        finally:
            stream.flush()
            configure_logging("WARNING", "console", stream=sys.stderr)


@contextlib.contextmanager
def profiled(directory: Path | None, name: str) -> Iterator[None]:
    if directory is None:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        directory.mkdir(parents=True, exist_ok=True)
        profile.dump_stats(directory / f"{name}.prof")


# --- 1. Redis commands per generation -----------------------------------------------------------


class CommandLog:
    """The Redis server's MONITOR, read by a separate sync client in a thread: the time, client
    and text of every command a client sends (commands run by Lua scripts are marked "lua")."""

    def __init__(self, port: int, limit_s: float) -> None:
        import redis

        self._client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=limit_s)
        self._poke = redis.Redis(host="127.0.0.1", port=port)
        self.entries: list[tuple[float, str, str]] = []  # (server time, client type, command)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._deadline = time.time() + limit_s
        self._thread = threading.Thread(target=self._run, name="redis-monitor", daemon=True)

    def _run(self) -> None:
        with self._client.monitor() as monitor:
            self._ready.set()
            for command in monitor.listen():
                if self._stop.is_set() or time.time() > self._deadline:
                    break
                self.entries.append((command["time"], command["client_type"], command["command"]))

    def __enter__(self) -> CommandLog:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self._poke.ping()  # wakes the reader if nothing else is sent
        self._thread.join(timeout=10)
        self._poke.close()
        self._client.close()

    def sent(self, start: float, end: float) -> Counter[str]:
        """Commands clients sent between two time.time() values, by kind."""
        return Counter(
            _kind(text)
            for at, client, text in list(self.entries)
            if start <= at < end and client != "lua"
        )


_ID_LIKE = re.compile(r"[0-9]|-|\.")


def _kind(command: str) -> str:
    """`SET saq:job:tzurot:llm-bench-…` -> `SET saq:job:tzurot`; scripts by their first key."""
    parts = command.split(" ")
    name = parts[0].upper()
    key = ""
    if name in {"EVALSHA", "EVAL"} and len(parts) > 3 and parts[2] != "0":
        key = parts[3]
    elif name not in {"PING", "EVALSHA", "EVAL", "INFO"} and len(parts) > 1:
        key = parts[1]
    family = []
    for segment in key.split(":")[:3]:
        if _ID_LIKE.search(segment):
            break
        family.append(segment)
    return f"{name} {':'.join(family)}".strip()


class DoneListener:
    """The bench's own subscription to the announcement of finished jobs, on its own
    connection: lets row 1a know a result is recorded without sending a command."""

    def __init__(self, port: int) -> None:
        from redis.asyncio import Redis

        self._redis = Redis(host="127.0.0.1", port=port)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._events: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DoneListener:
        await self._pubsub.subscribe(DONE_CHANNEL.key())
        self._task = asyncio.create_task(self._listen())
        return self

    async def _listen(self) -> None:
        while True:
            message = await self._pubsub.get_message(timeout=None)
            if message is not None and message.get("type") == "message":
                self.event(message["data"].decode()).set()

    def event(self, job_id: str) -> asyncio.Event:
        return self._events.setdefault(job_id, asyncio.Event())

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()


async def phase_redis_commands(env: Env) -> None:
    args = env.args
    count = args.commands
    async with (
        running_app(env, 0, chat_model=Instant(), LOG_LEVEL="WARNING") as (app, personality),
        DoneListener(env.redis.port) as done,
    ):
        jobs = app.jobs
        assert jobs is not None
        for i in range(args.warmup):
            await round_trip(jobs, new_request(personality, env.run, "cwarm", i, "bench-hist"), 10)

        async def alone(i: int) -> float | None:
            started = time.perf_counter()
            submission = await jobs.submit(new_request(personality, env.run, "ca", i))
            try:
                await asyncio.wait_for(done.event(submission.job_id).wait(), SHORT_WAIT)
            except TimeoutError:
                return None
            return time.perf_counter() - started

        def waited(channel: str | None, tag: str) -> Callable[[int], Awaitable[float | None]]:
            def one(i: int) -> Awaitable[float | None]:
                return round_trip(jobs, new_request(personality, env.run, tag, i, channel), 10)

            return one

        windows: dict[str, tuple[float, float, Run]] = {}
        idle: list[tuple[float, float]] = []
        with CommandLog(env.redis.port, limit_s=PHASE_LIMIT * 3) as monitor:
            await asyncio.sleep(1.0)
            for tag, one in (
                ("a", alone),
                ("b", waited(None, "cb")),
                ("c", waited("bench-channel", "cc")),
            ):
                start = time.time()
                await asyncio.sleep(args.idle_s)
                idle.append((start, time.time()))
                start = time.time()
                run = await sequential(count, one)
                await asyncio.sleep(0.5)  # the last job's trailing writes (SAQ's finish)
                windows[tag] = (start, time.time(), run)
            start = time.time()
            await asyncio.sleep(args.idle_s)
            idle.append((start, time.time()))

    idle_seconds = sum(end - start for start, end in idle)
    idle_counts: Counter[str] = Counter()
    for start, end in idle:
        idle_counts.update(monitor.sent(start, end))
    idle_rate = sum(idle_counts.values()) / idle_seconds
    names = {
        "a": "1a Redis commands per generation: submit, worker, result recorded",
        "b": "1b ... plus the caller's JobQueue.wait",
        "c": "1c ... plus channel history (request.channel_id set)",
    }
    breakdown = []
    for tag, (start, end, run) in windows.items():
        counts = monitor.sent(start, end)
        seconds = end - start
        n = max(len(run.latencies_ms), 1)
        per_gen = (sum(counts.values()) - idle_rate * seconds) / n
        row = latency_row(names[tag], run.latencies_ms, result=f"{per_gen:.1f} commands")
        row.target = "<= 12"
        env.rows.append(row)
        kinds = sorted(
            (
                (kind, (counts[kind] - idle_counts[kind] / idle_seconds * seconds) / n)
                for kind in counts
            ),
            key=lambda item: -item[1],
        )
        shown = ", ".join(f"{kind} {value:.1f}" for kind, value in kinds if abs(value) >= 0.05)
        breakdown.append(f"1{tag}: {shown}")
    idle_shown = ", ".join(
        f"{kind} {value / idle_seconds:.1f}" for kind, value in idle_counts.most_common(6)
    )
    env.notes.append(
        f"Rows 1a-1c: {count} generations one at a time each, model client answering at once, "
        f"WORKER_CONCURRENCY=50 (the default). Commands clients sent (MONITOR, Lua's own "
        f"excluded) minus the process's idle rate, {idle_rate:.1f}/s over {idle_seconds:.0f} s "
        f"measured between the rows ({idle_shown}), per generation. By command and key family: "
        + "; ".join(breakdown)
        + "."
    )


# --- 2. our own CPU per generation ---------------------------------------------------------------


async def phase_cpu(env: Env) -> None:
    args = env.args
    log_path = env.tmp / "cpu-phase.log"
    concurrency = args.in_flight
    async with running_app(env, 1, chat_model=Instant(), WORKER_CONCURRENCY=str(concurrency)) as (
        app,
        personality,
    ):
        jobs = app.jobs
        assert jobs is not None
        pid = redis_pid(env.redis)

        def typed(tag: str) -> Callable[[int], Awaitable[float | None]]:
            def one(i: int) -> Awaitable[float | None]:
                return round_trip(jobs, new_request(personality, env.run, tag, i), SHORT_WAIT)

            return one

        # INFO and WARNING twice, interleaved; each keeps its cheaper run (noise only adds CPU).
        results: dict[str, tuple[Run, Run, float, float]] = {}
        for round_no, level in enumerate(("INFO", "WARNING", "INFO", "WARNING")):
            tag = f"{round_no}{level}"  # fresh request ids: a repeated id is a duplicate
            with logging_to(log_path, level):
                await concurrent(args.warmup * 10, concurrency, typed(f"w{tag}"))
                lines0 = _lines(log_path)
                redis0 = process_cpu_seconds(pid) if pid else 0.0
                profile = args.profile if level == "INFO" and level not in results else None
                with profiled(profile, "cpu_sequential"):
                    seq = await sequential(args.sequential, typed(f"s{tag}"))
                with profiled(profile, "cpu_concurrent"):
                    conc = await concurrent(args.jobs, concurrency, typed(f"c{tag}"))
                redis_cpu = (process_cpu_seconds(pid) - redis0) if pid else float("nan")
            done = max(seq.done + conc.done, 1)
            lines = (_lines(log_path) - lines0) / done
            if level in results:
                earlier = results[level]
                seq = min(seq, earlier[0], key=_cpu_per_generation)
                conc = min(conc, earlier[1], key=_cpu_per_generation)
            results[level] = (seq, conc, lines, redis_cpu / done)

    letters = iter("abcd")
    for level, (seq, conc, _, _) in results.items():
        suffix = "" if level == "INFO" else " (LOG_LEVEL=WARNING, reference)"
        for label, run in (
            ("1 at a time", seq),
            (f"{args.jobs}, {concurrency} in flight", conc),
        ):
            env.rows.append(
                latency_row(
                    f"2{next(letters)} CPU per generation, no model client, {label}{suffix}",
                    run.latencies_ms,
                    result=f"{1000 * _cpu_per_generation(run):.2f} ms CPU, "
                    f"{run.done / run.wall_s:.0f}/s",
                    target="<= 1.5 ms" if level == "INFO" else "",
                )
            )
    info, warning = results["INFO"], results["WARNING"]
    env.notes.append(
        "Rows 2: the whole process's user + system CPU (API side and worker, one event loop) "
        "divided by the generations, the lower of two interleaved runs per log level; the model "
        "client answers at once, the caller is "
        f"JobQueue.submit + wait; WORKER_CONCURRENCY={concurrency}. Logging as deployed "
        f"(LOG_LEVEL=INFO, JSON) into a file: {info[2]:.1f} lines per generation at INFO, "
        f"{warning[2]:.1f} at WARNING. redis-server's own CPU: {1000 * info[3]:.2f} ms per "
        "generation (not included)."
    )


def _cpu_per_generation(run: Run) -> float:
    return run.cpu_s / max(run.done, 1)


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as file:
            return sum(1 for _ in file)
    except FileNotFoundError:
        return 0


# --- 3. end to end over a bare litellm call -----------------------------------------------------


def bare_kwargs(app: Application, personality: Personality) -> dict[str, Any]:
    """What LiteLLMProvider.complete passes to litellm.acompletion for this personality (see
    tzurot/ai/provider.py), with the messages tzurot's prompt builder makes."""
    from tzurot.ai.generation import ModelDefaults
    from tzurot.ai.prompt import build_messages

    settings = app.settings
    target = ModelDefaults(
        settings.default_model, settings.llm_api_base, settings.llm_api_key
    ).target_for(personality)
    messages = build_messages(
        personality,
        user_message="benchmark message 0: what do the old maps in the east wing show?",
        user_name="Bench",
        history=[],
        participants=["Bench"],
        now=datetime.now(UTC),
        location=None,
        model=target.model,
    )
    return {
        "model": target.model,
        "messages": [m.model_dump() for m in messages],
        "api_base": target.api_base,
        "api_key": target.api_key.get_secret_value() if target.api_key else None,
        "temperature": personality.temperature or 0.7,
        "max_tokens": personality.max_tokens or 4096,
        "timeout": settings.llm_attempt_timeout,
        "num_retries": 0,
        "max_retries": 0,
        "no-log": True,
    }


async def phase_vs_litellm(env: Env) -> dict[str, Any]:
    """Rows 3a-3c. Returns the bare call's kwargs (row 4's floor makes the same call)."""
    from tzurot.ai._litellm import loaded_litellm

    args = env.args
    async with running_app(env, 2) as (app, personality):  # the real LiteLLMProvider
        jobs = app.jobs
        assert jobs is not None
        litellm = loaded_litellm()
        assert litellm is not None  # Application.start() waited for the provider's warm-up
        kwargs = bare_kwargs(app, personality)

        async def bare(_: int) -> float | None:
            started = time.perf_counter()
            response = await litellm.acompletion(**kwargs)
            return time.perf_counter() - started if response.choices else None

        def typed(tag: str) -> Callable[[int], Awaitable[float | None]]:
            def one(i: int) -> Awaitable[float | None]:
                return round_trip(jobs, new_request(personality, env.run, tag, i), SHORT_WAIT)

            return one

        await sequential(args.warmup, bare)
        await sequential(args.warmup, typed("lwarm"))
        bare_run, typed_run = Run(), Run()
        blocks = 6
        per_block = max(args.sequential // blocks, 1)
        for block in range(blocks):  # interleaved, so drift hits both alike
            for run, part in (
                (bare_run, await sequential(per_block, bare)),
                (typed_run, await sequential(per_block, typed(f"l{block}"))),
            ):
                run.latencies_ms += part.latencies_ms
                run.failures += part.failures
                run.cpu_s += part.cpu_s
    p50_bare, p50_typed = pct(bare_run.latencies_ms, 50), pct(typed_run.latencies_ms, 50)
    env.rows.append(
        latency_row(
            "3a bare litellm.acompletion to the fake (0 ms), 1 at a time",
            bare_run.latencies_ms,
            result=f"{1000 * bare_run.cpu_s / max(bare_run.done, 1):.2f} ms CPU",
        )
    )
    env.rows.append(
        latency_row(
            "3b typed submit->wait through LiteLLMProvider, 1 at a time",
            typed_run.latencies_ms,
            result=f"{1000 * typed_run.cpu_s / max(typed_run.done, 1):.2f} ms CPU",
        )
    )
    env.rows.append(
        Row(
            "3c end-to-end p50 over the bare call (3b - 3a)",
            result=f"+{p50_typed - p50_bare:.2f} ms",
            target="<= 3 ms",
        )
    )
    env.notes.append(
        f"Rows 3: {bare_run.done} + {typed_run.done} calls, interleaved in {blocks} blocks, in one "
        "process (the Application's API side and worker, WORKER_CONCURRENCY=50, LOG_LEVEL=INFO "
        "JSON into a file); the bare call uses the provider's kwargs and the messages tzurot's "
        "prompt builder makes for the same request. Fake model in its own process. CPU is this "
        "process's, per call."
    )
    return kwargs


# --- 4. 1,000 generations of 2 s ---------------------------------------------------------------


def floor_child_main(args: argparse.Namespace) -> int:
    """In a fresh process: `--count` concurrent bare litellm calls; prints the timings as JSON."""

    import os

    from tzurot.ai._litellm import loaded_litellm
    from tzurot.ai.provider import LiteLLMProvider

    kwargs = json.loads(Path(args.floor_kwargs).read_text())
    devnull = open(os.devnull, "w")  # noqa: SIM115 (for the whole process)
    configure_logging("INFO", "json", stream=devnull)  # as the bot logs

    async def main() -> dict[str, Any]:
        await LiteLLMProvider().warm_up()  # litellm imported and configured as the bot does
        litellm = loaded_litellm()
        assert litellm is not None

        async def one() -> float | None:
            started = time.perf_counter()
            try:
                response = await litellm.acompletion(**kwargs)
            except Exception:
                return None
            return time.perf_counter() - started if response.choices else None

        await asyncio.gather(*(one() for _ in range(args.floor_warmup)))
        await asyncio.sleep(0.5)
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        tasks = [asyncio.create_task(one()) for _ in range(args.floor_count)]
        done, pending = await asyncio.wait(tasks, timeout=LONG_WAIT)
        wall = time.perf_counter() - wall0
        for task in pending:
            task.cancel()
        latencies = [t.result() for t in done if t.result() is not None]
        return {
            "wall_s": wall,
            "cpu_s": cpu_seconds() - cpu0,
            "latencies_ms": [1000 * s for s in latencies if s is not None],
            "failures": args.floor_count - len(latencies),
        }

    print(json.dumps(asyncio.run(main())))
    return 0


async def floor(env: Env, kwargs: dict[str, Any]) -> dict[str, Any]:
    path = env.tmp / "floor-kwargs.json"
    path.write_text(json.dumps(kwargs))
    command = [
        sys.executable, "-m", "bench.pipeline", "--floor-child",
        "--floor-kwargs", str(path), "--floor-count", str(env.args.in_flight_jobs),
        "--floor-warmup", str(env.args.flight_warmup),
    ]  # fmt: skip
    out = await asyncio.to_thread(
        subprocess.run,
        command,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_LIMIT,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"floor process failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def start_worker(env: Env, db: int, name: str) -> TzurotChild:
    environment = settings_env(
        env.url(db), env.fake.base_url, env.personalities,
        COMPONENTS="worker", WORKER_CONCURRENCY=str(env.args.flight_concurrency),
        PROCESS_NAME=name, LOG_LEVEL="INFO", SHUTDOWN_GRACE_PERIOD="5",
    )  # fmt: skip
    process = TzurotChild(environment, env.tmp / f"{name}.log", env.args.variants)
    await process.start(CHILD_LIMIT, health=False)
    return process


async def stop_workers(workers: list[TzurotChild]) -> None:
    for worker in workers:
        await worker.stop(STOP_LIMIT)


@dataclass
class Flight:
    run: Run
    cpu_by_pid: dict[int, float]
    by_worker: Counter[str]


async def flight(
    env: Env, jobs: JobQueue, personality: Personality, tag: str, workers: list[TzurotChild]
) -> Flight:
    """The warm-up, then `--in-flight-jobs` generations submitted at once; wall time from the
    first submit to the last result."""
    args = env.args

    def one(prefix: str) -> Callable[[int], Awaitable[float | None]]:
        def go(i: int) -> Awaitable[float | None]:
            return round_trip(jobs, new_request(personality, env.run, prefix, i), LONG_WAIT)

        return go

    warm = args.flight_warmup * len(workers)
    await concurrent(warm, warm, one(f"{tag}warm"))
    await asyncio.sleep(1.0)
    pids = [w.pid for w in workers]
    cpu0 = {pid: process_cpu_seconds(pid) for pid in pids}
    count = args.in_flight_jobs
    run = await concurrent(count, count, one(tag), limit_s=PHASE_LIMIT)
    cpu = {pid: process_cpu_seconds(pid) - cpu0[pid] for pid in pids}
    found = await jobs.saq.jobs([job_id_for(f"bench-{env.run}-{tag}-{i}") for i in range(count)])
    by_worker = Counter(str(job.worker_id) for job in found if job is not None)
    return Flight(run, cpu, by_worker)


async def phase_in_flight(env: Env, kwargs: dict[str, Any]) -> None:
    args = env.args
    env.fake.set_latency(args.slow_latency)
    floor_result = await floor(env, kwargs)
    floor_wall = float(floor_result["wall_s"])
    count = args.in_flight_jobs
    env.rows.append(
        latency_row(
            f"4a floor: {count} bare litellm calls at once, model {args.slow_latency:g} s, "
            "fresh process",
            floor_result["latencies_ms"],
            result=f"wall {floor_wall:.2f} s",
        )
    )
    workers: list[TzurotChild] = []
    try:
        async with running_app(env, 3, COMPONENTS="api", LOG_LEVEL="WARNING") as (app, who):
            jobs = app.jobs
            assert jobs is not None
            workers.append(await start_worker(env, 3, "bench-w1"))
            one = await flight(env, jobs, who, "f1", workers)
            workers.append(await start_worker(env, 3, "bench-w2"))
            workers.append(await start_worker(env, 3, "bench-w3"))
            three = await flight(env, jobs, who, "f3", workers)
    finally:
        await stop_workers(workers)
    for label, result, target in (
        ("4b one tzurot worker process", one, "<= 1.0"),
        ("4c three tzurot worker processes", three, "<= 0.6"),
    ):
        ratio = result.run.wall_s / floor_wall
        env.rows.append(
            latency_row(
                f"{label}: {count} generations at once, model {args.slow_latency:g} s",
                result.run.latencies_ms,
                result=f"wall {result.run.wall_s:.2f} s = {ratio:.2f} x floor",
                target=f"{target} x floor",
            )
        )
    fails = [floor_result["failures"], one.run.failures, three.run.failures]

    def cpu_text(result: Flight) -> str:
        return " + ".join(f"{cpu:.2f}" for cpu in result.cpu_by_pid.values()) + " s"

    env.notes.append(
        f"Rows 4: the fake model answers after {args.slow_latency:g} s, in its own process. 4a is "
        f"a fresh process making the bot's litellm call (configured as the bot does, after "
        f"{args.flight_warmup} warm-up calls): {floor_result['cpu_s']:.2f} s CPU. 4b/4c: child "
        f"`python -m tzurot` processes with COMPONENTS=worker, "
        f"WORKER_CONCURRENCY={args.flight_concurrency}, LOG_LEVEL=INFO (JSON to a file), each "
        f"warmed with {args.flight_warmup} generations; the generations are submitted (and "
        "waited for) by this benchmark process through JobQueue.submit/wait, an Application "
        "with COMPONENTS=api on the same Redis, as a front end would; wall time from the "
        f"first submit to the last result. Worker CPU during the burst: 4b {cpu_text(one)}, "
        f"4c {cpu_text(three)}. Jobs taken per worker: 4b {dict(one.by_worker)}, "
        f"4c {dict(three.by_worker)}. Failed: floor {fails[0]}, 4b {fails[1]}, 4c {fails[2]}."
    )


# --- driver -------------------------------------------------------------------------------------


async def run_benchmark(args: argparse.Namespace, rows: list[Row], notes: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="tzurot-bench-") as tmp:
        root = Path(tmp)
        personalities = write_personalities(root / "personalities")
        with private_redis(root / "redis", args.fsync) as redis, FakeModel(0.0) as fake:
            env = Env(secrets.token_hex(3), redis, fake, personalities, root, args, rows, notes)
            phases = set(args.only or "1234")
            if "1" in phases:
                await phase_redis_commands(env)
            if "2" in phases:
                await phase_cpu(env)
            kwargs: dict[str, Any] | None = None
            if "3" in phases or "4" in phases:
                with logging_to(root / "litellm-phase.log", "INFO"):
                    kwargs = await phase_vs_litellm(env) if "3" in phases else None
            if "4" in phases:
                if kwargs is None:
                    async with running_app(env, 2) as (app, personality):
                        kwargs = bare_kwargs(app, personality)
                await phase_in_flight(env, kwargs)
            notes.append(f"Fake model server: {fake.calls()} chat calls answered.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    parser.add_argument("--warmup", type=int, default=20, help="warm-up generations per part")
    parser.add_argument("--commands", type=int, default=200, help="generations in rows 1a-1c")
    parser.add_argument("--idle-s", type=float, default=5.0, help="each idle window in row 1")
    parser.add_argument("--sequential", type=int, default=300, help="generations, 1 at a time")
    parser.add_argument("--jobs", type=int, default=2000, help="generations in the concurrent 2")
    parser.add_argument("--in-flight", type=int, default=200, help="in flight in row 2")
    parser.add_argument("--in-flight-jobs", type=int, default=1000, help="generations in row 4")
    parser.add_argument("--flight-concurrency", type=int, default=1100, help="per worker, row 4")
    parser.add_argument("--flight-warmup", type=int, default=100, help="per worker, row 4")
    parser.add_argument("--slow-latency", type=float, default=2.0, help="fake model s, row 4")
    parser.add_argument("--fsync", choices=["everysec", "always", "no"], default="everysec")
    parser.add_argument("--only", help="run only these rows' phases, e.g. 12 (default 1234)")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile row 2 into DIR")
    parser.add_argument(
        "--variants",
        default="",
        help="bench-only changes (bench/_variants.py) for row 4's workers, e.g. gc-freeze; "
        "gc-freeze also applies in this process (rows 1-3) after each Application started",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results.md")
    parser.add_argument("--floor-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor-kwargs", help=argparse.SUPPRESS)
    parser.add_argument("--floor-count", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--floor-warmup", type=int, default=100, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.floor_child:
        return floor_child_main(args)
    configure_logging("WARNING", "console", stream=sys.stderr)
    logging.getLogger("tests").setLevel(logging.WARNING)
    rows: list[Row] = []
    notes: list[str] = []
    started = time.monotonic()
    asyncio.run(run_benchmark(args, rows, notes))
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join([COMMAND, *given])
    header = f"{machine_line()}; run took {time.monotonic() - started:.0f} s; command: `{command}`"
    publish(header, rows, notes, title=SECTION_TITLE, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
