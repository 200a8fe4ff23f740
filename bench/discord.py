"""Discord front-end benchmark: the whole bot, as deployed, against the Discord emulator.

Run from the project root:  .venv/bin/python -m bench.discord

Everything is on 127.0.0.1: a private redis-server on a free port, the fake OpenAI-compatible
server (tests/fixtures/fake_llm.py) in its own process, the Discord emulator (tests/emulator) in
this process, and the bot as a child `python -m tzurot` with every component (discord, api,
worker), as a deployment runs it. Prints one table and writes it to bench/results.md under its
own section. Every loop has a count and a time limit. See bench/README.md for the rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Importing the package first keeps litellm offline (no cost-map download) in this process.
import tzurot  # noqa: F401  (side effect: offline litellm)
from bench._harness import (
    FakeModel,
    Row,
    TzurotChild,
    cpu_seconds,
    latency_row,
    machine_line,
    private_redis,
    process_cpu_seconds,
    process_memory_mb,
    publish,
)
from tests.emulator import Channel, DiscordEmulator, Interaction, Message, User
from tests.fixtures.app import settings_env, write_personalities

SECTION_TITLE = "## Discord front end (`python -m bench.discord`)"
COMMAND = ".venv/bin/python -m bench.discord"
START_LIMIT = 60.0  # the bot's start, to /health 200
PHASE_LIMIT = 60.0  # any one waiting loop (seconds)
STOP_LIMIT = 30.0  # SIGTERM to exit
POLL = 0.02  # how often a waiting loop looks (cheaper for the emulator than waking on changes)


@dataclass
class Env:
    emu: DiscordEmulator
    fake: FakeModel
    bot: TzurotChild
    users: list[User]
    args: argparse.Namespace
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    worker: TzurotChild | None = None  # --split-worker: the generations run here

    @property
    def pid(self) -> int:
        return self.bot.pid

    @property
    def pids(self) -> list[int]:
        return [self.bot.pid] + ([self.worker.pid] if self.worker is not None else [])


async def until(check: Callable[[], bool], limit_s: float) -> bool:
    """Poll `check` until it holds or `limit_s` passes; whether it held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(POLL)
    return True


def webhook_replies(emu: DiscordEmulator, channel: Channel) -> list[Message]:
    return [m for m in emu.bot_messages(channel) if m.source == "webhook"]


@contextlib.contextmanager
def cpu_of(pids: list[int], into: dict[str, float]) -> Any:
    """CPU seconds of the bot's process(es) and of this process (the emulator) in the block."""
    bot0, own0 = sum(process_cpu_seconds(p) for p in pids), cpu_seconds()
    try:
        yield
    finally:
        into["bot"] = sum(process_cpu_seconds(p) for p in pids) - bot0
        into["emulator"] = cpu_seconds() - own0


@contextlib.asynccontextmanager
async def spied(env: Env, name: str) -> AsyncIterator[None]:
    """With --py-spy: sample the bot's stacks during the block into DIR/name.txt (raw)."""
    if env.args.py_spy is None:
        yield
        return
    binary, directory = env.args.py_spy
    spy = await asyncio.create_subprocess_exec(
        binary, "record", "-p", str(env.pid), "-r", "500", "-f", "raw", "-d", "60",
        "-o", str(Path(directory) / f"{name}.txt"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(1.0)  # attached
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(spy.wait(), 20)
        except TimeoutError:
            spy.kill()


# --- 7, 8: start-up and idle memory -------------------------------------------------------------


async def start_bot(env: Env) -> None:
    emu, bot = env.emu, env.bot
    loop = asyncio.get_running_loop()
    began = loop.time()
    starting = asyncio.create_task(bot.start(START_LIMIT, health=True))  # Popen, /health 200
    ready = await until(lambda: emu.gateway.log.ready_count > 0, START_LIMIT)
    ready_s = loop.time() - began
    await starting
    healthy_s = loop.time() - began
    commands = await until(lambda: any(c["name"] == "chat" for c in emu.commands(emu.guild)), 30)
    if not (ready and commands):
        raise RuntimeError(f"the bot did not get ready: {bot.logs()[-2000:]}")
    await asyncio.sleep(env.args.settle)
    env.rows.append(
        Row(
            "8  process start -> gateway READY",
            result=f"{ready_s:.2f} s (all components up, /health 200: {healthy_s:.2f} s)",
            target="<= 3 s",
        )
    )
    env.rows.append(
        Row(
            "7  idle RSS of the started bot (all components)",
            result=f"{process_memory_mb(env.pid):.0f} MB",
        )
    )


# --- 5: /chat acknowledgements ------------------------------------------------------------------


async def phase_ack(env: Env) -> None:
    emu, fake, users, args = env.emu, env.fake, env.users, env.args
    channel = emu.add_text_channel(emu.guild, name="ack")
    await asyncio.sleep(0.3)  # the CHANNEL_CREATE reaches the bot's cache
    fake.set_latency(0.0)
    for i in range(3):  # warm-up: the first /chat's lazy costs stay out of the burst
        warm = await emu.slash_command(
            channel, users[0], "chat", {"personality": "Lilith", "message": f"warm up {i}"}
        )
        await warm.wait_for_edit(timeout=20)

    fake.set_latency(args.slow_latency)
    loop = asyncio.get_running_loop()
    cpu: dict[str, float] = {}
    cpu_ack: dict[str, float] = {}
    with cpu_of(env.pids, cpu):
        async with spied(env, "ack"):
            with cpu_of(env.pids, cpu_ack):
                started = loop.time()
                interactions: list[Interaction] = await asyncio.gather(
                    *(
                        emu.slash_command(
                            channel,
                            users[i % len(users)],
                            "chat",
                            {"personality": "Lilith", "message": f"burst {i}: the old maps?"},
                        )
                        for i in range(args.burst)
                    )
                )
                written = loop.time() - started
                await until(
                    lambda: all(i.deferred_at is not None or i.rejected for i in interactions),
                    PHASE_LIMIT / 4,
                )
                acked = loop.time() - started
        answered = await until(lambda: all(i.original_edits for i in interactions), PHASE_LIMIT)
        answered_s = loop.time() - started
    latencies = [
        1000 * (i.deferred_at - i.dispatched_at)
        for i in interactions
        if i.deferred_at is not None and i.dispatched_at is not None
    ]
    done = sum(1 for i in interactions if i.original_edits)
    rejected = sum(1 for i in interactions if i.rejected)
    env.rows.append(
        latency_row(
            f"5  /chat acknowledgement, burst of {args.burst} (model {args.slow_latency:g} s)",
            latencies,
            total=args.burst,
            result=f"{done}/{args.burst} answered ({answered_s:.1f} s); {rejected} rejected",
            target="p50 <= 100, p99 <= 500",
        )
    )
    env.notes.append(
        f"Row 5: the {args.burst} INTERACTION_CREATEs were written within {written:.2f} s, all "
        f"acknowledged {acked:.2f} s after the first; every answer edited in: "
        f"{'yes' if answered else 'NO'} "
        f"({answered_s:.1f} s). Bot CPU until every acknowledgement was in: {cpu_ack['bot']:.2f} s, "
        f"until every answer: {cpu['bot']:.2f} s; this process (emulator) "
        f"{cpu_ack['emulator']:.2f} s / {cpu['emulator']:.2f} s. WORKER_CONCURRENCY={args.concurrency}, so all "
        f"{args.burst} generations start at once."
    )


# --- 6: mention bursts --------------------------------------------------------------------------


async def mention_burst(
    env: Env, channels: Sequence[Channel], nth: int
) -> tuple[list[float], float]:
    """One @mention in every channel at once; (latencies ms, seconds until the last reply)."""
    emu, users = env.emu, env.users
    loop = asyncio.get_running_loop()
    started = loop.time()
    messages: list[Message] = await asyncio.gather(
        *(
            emu.post_message(channel, users[i % len(users)], f"@Lilith burst {nth}, line {i}")
            for i, channel in enumerate(channels)
        )
    )
    await until(lambda: all(len(webhook_replies(emu, c)) >= nth for c in channels), PHASE_LIMIT / 2)
    elapsed = loop.time() - started
    latencies = []
    for message, channel in zip(messages, channels, strict=True):
        replies = webhook_replies(emu, channel)
        if len(replies) >= nth:
            latencies.append(1000 * (replies[nth - 1].posted_at - message.posted_at))
    return latencies, elapsed


async def phase_mentions(env: Env) -> None:
    emu, args = env.emu, env.args
    env.fake.set_latency(0.0)
    count = args.channels
    channels = [emu.add_text_channel(emu.guild, name=f"burst-{i}") for i in range(count)]
    await asyncio.sleep(0.5)
    webhooks_before = len(emu.requests_matching("POST", "/channels/*/webhooks"))
    cpu_first: dict[str, float] = {}
    async with spied(env, "mentions-first"):
        with cpu_of(env.pids, cpu_first):
            first, first_s = await mention_burst(env, channels, 1)
    created = len(emu.requests_matching("POST", "/channels/*/webhooks")) - webhooks_before
    await asyncio.sleep(1.0)
    cpu_second: dict[str, float] = {}
    async with spied(env, "mentions-second"):
        with cpu_of(env.pids, cpu_second):
            second, second_s = await mention_burst(env, channels, 2)
    target = "p50 <= 150"
    env.rows.append(
        latency_row(
            f"6a @mention -> webhook post, {count} channels at once, first ever",
            first,
            total=count,
            result=f"last after {first_s:.2f} s; {created} webhooks created",
            target=target,
        )
    )
    env.rows.append(
        latency_row(
            f"6b @mention -> webhook post, {count} channels at once, webhooks exist",
            second,
            total=count,
            result=f"last after {second_s:.2f} s",
            target=target,
        )
    )
    # Reference: the same path with nothing else going on.
    channel = channels[0]
    single: list[float] = []
    for i in range(args.sequential):
        message = await emu.post_message(channel, env.users[0], f"@Lilith one at a time {i}")
        if not await until(lambda i=i: len(webhook_replies(emu, channel)) >= 3 + i, 10):
            break
        single.append(1000 * (webhook_replies(emu, channel)[2 + i].posted_at - message.posted_at))
    env.rows.append(latency_row(f"6c reference: {args.sequential} @mentions one at a time", single))
    env.notes.append(
        f"Rows 6: model at 0 ms; from writing MESSAGE_CREATE to the webhook execution reaching "
        f"the emulator. CPU per burst: bot {cpu_first['bot']:.2f} s / {cpu_second['bot']:.2f} s, "
        f"this process (emulator) {cpu_first['emulator']:.2f} s / {cpu_second['emulator']:.2f} s."
    )


# --- driver -------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, rows: list[Row], notes: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="tzurot-bench-discord-") as tmp:
        root = Path(tmp)
        personalities = write_personalities(root / "personalities")
        with private_redis(root / "redis") as redis, FakeModel(0.0) as fake:
            emu = DiscordEmulator()
            emu.add_guild("Bench Guild")
            emu.add_text_channel(emu.guild, "general")
            await emu.start()
            components = "discord,api" if args.split_worker else "discord,api,worker"
            environment = settings_env(
                redis.url, fake.base_url, personalities,
                COMPONENTS=components, DISCORD_TOKEN=emu.token,
                DISCORD_REST_URL=emu.rest_url, DISCORD_DEV_GUILD_ID=str(emu.guild.id),
                PLURALKIT_API_URL=emu.pluralkit.url,
                WORKER_CONCURRENCY=str(args.concurrency), LOG_LEVEL="INFO",
                SHUTDOWN_GRACE_PERIOD="5", PROCESS_NAME="bench-bot",
                # A burst of 200 from 10 people in one channel is what the limits are there to
                # refuse; this measures what a burst the bot accepts costs.
                RATE_LIMIT_USER_PER_MINUTE="0", RATE_LIMIT_CHANNEL_PER_MINUTE="0",
            )  # fmt: skip
            bot = TzurotChild(environment, root / "bot.log", args.variants)
            users = [emu.add_user(f"user{i}") for i in range(10)]
            env = Env(emu, fake, bot, users, args, rows, notes)
            try:
                await start_bot(env)
                if args.split_worker:
                    worker_env = {
                        **environment, "COMPONENTS": "worker", "PROCESS_NAME": "bench-worker"
                    }  # fmt: skip
                    env.worker = TzurotChild(worker_env, root / "worker.log", args.variants)
                    await env.worker.start(START_LIMIT, health=False)
                await phase_ack(env)
                await asyncio.sleep(1.0)
                await phase_mentions(env)
                notes.append(
                    f"Bot peak RSS (VmHWM) over the run: {process_memory_mb(env.pid, 'VmHWM'):.0f}"
                    f" MB. REST requests the emulator saw: {len(emu.requests)}, "
                    f"{sum(1 for r in emu.requests if r.status == 429)} answered 429, "
                    f"{sum(1 for r in emu.requests if r.status >= 500)} 5xx."
                )
                logs = bot.logs() + (env.worker.logs() if env.worker is not None else "")
                errors = [line for line in logs.splitlines() if '"level": "error"' in line]
                if errors:
                    notes.append(f"The bot logged {len(errors)} errors; first: {errors[0][:300]}")
            finally:
                stopping = time.monotonic()
                codes = [await child.stop(STOP_LIMIT) for child in (bot, env.worker) if child]
                notes.append(f"SIGTERM to exit: {time.monotonic() - stopping:.1f} s, exit {codes}.")
                await emu.stop()


def section_title(args: argparse.Namespace) -> str:
    """The plain run's section, or one of its own for a variant (they never overwrite it)."""
    variant = ", ".join(
        part for part in (args.variants, "split worker" if args.split_worker else "") if part
    )
    if not variant:
        return SECTION_TITLE
    flags = (f" --variants {args.variants}" if args.variants else "") + (
        " --split-worker" if args.split_worker else ""
    )
    return f"## Discord front end, variant: {variant} (`python -m bench.discord{flags}`)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.discord", description=__doc__)
    parser.add_argument("--burst", type=int, default=200, help="/chat interactions at once")
    parser.add_argument("--channels", type=int, default=50, help="channels in the mention burst")
    parser.add_argument("--sequential", type=int, default=20, help="reference mentions, row 6c")
    parser.add_argument("--concurrency", type=int, default=250, help="the bot's WORKER_CONCURRENCY")
    parser.add_argument("--slow-latency", type=float, default=2.0, help="fake model s in row 5")
    parser.add_argument("--settle", type=float, default=3.0, help="idle s before reading RSS")
    parser.add_argument(
        "--py-spy",
        nargs=2,
        metavar=("BINARY", "DIR"),
        help="sample the bot with py-spy during rows 5 and 6 (slows them down a little)",
    )
    parser.add_argument(
        "--variants",
        default="",
        help="run the bot with bench-only changes (bench/_variants.py), e.g. gc-freeze,uvloop",
    )
    parser.add_argument(
        "--split-worker",
        action="store_true",
        help="deploy as two processes: COMPONENTS=discord,api and COMPONENTS=worker",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results.md")
    args = parser.parse_args(argv)
    if args.py_spy is not None:
        Path(args.py_spy[1]).mkdir(parents=True, exist_ok=True)
    for name, cap in (("burst", 1000), ("channels", 200), ("sequential", 200)):
        if not 1 <= getattr(args, name) <= cap:
            parser.error(f"--{name} must be between 1 and {cap}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    rows: list[Row] = []
    notes: list[str] = []
    started = time.monotonic()
    asyncio.run(run(args, rows, notes))
    command = " ".join([COMMAND, *(argv if argv is not None else sys.argv[1:])])
    header = f"{machine_line()}; run took {time.monotonic() - started:.0f} s; command: `{command}`"
    how = (
        "two children, `python -m tzurot` with COMPONENTS=discord,api and one with "
        "COMPONENTS=worker"
        if args.split_worker
        else "a child `python -m tzurot` with COMPONENTS=discord,api,worker"
    )
    if args.variants:
        how += f", run through bench/_variants.py with {args.variants} (bench-only changes)"
    notes.insert(
        0,
        f"The bot is {how} (LOG_LEVEL=INFO, JSON logs to a file), as a deployment runs it; the "
        "emulator runs in this benchmark's process and the fake model server in a process of "
        "its own.",
    )
    publish(header, rows, notes, title=section_title(args), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
