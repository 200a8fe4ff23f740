"""Streaming benchmark: how soon a streamed reply shows, and how many edits it costs.

Run from the project root:  .venv/bin/python -m bench.streaming

Everything is on 127.0.0.1: a private redis-server on a free port, the bot as a child
`python -m tzurot` with every component (discord, api, worker), and, in this process, the
Discord emulator and the fake OpenAI-compatible server (tests/fixtures/fake_llm.py) streaming
each answer in deltas. Both run on this process's monotonic clock, so the time from the model's
first token (the fake sending its first delta) to the first visible text (the emulator
receiving the webhook post that shows it) is read on one clock. Rows:

1. one streamed reply at a time (`--sequential` of them, one channel);
2. `--channels` streamed replies at once, one in each channel (each with its own webhook);
3. the ratios of the two: what concurrency costs.

Edits per reply count every PATCH the emulator applied to the reply's messages. Every loop has
a count and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tzurot  # noqa: F401  (side effect: offline litellm)
from bench._harness import (
    Row,
    TzurotChild,
    latency_row,
    machine_line,
    pct,
    private_redis,
    process_cpu_seconds,
    publish,
)
from tests.emulator import Channel, DiscordEmulator, Message, User
from tests.fixtures.app import settings_env, write_personalities
from tests.fixtures.fake_llm import FakeLLM, Step, StreamRecord
from tzurot.discord.delivery.render import reply_chunks

SECTION_TITLE = "## Streaming replies (`python -m bench.streaming`)"
COMMAND = ".venv/bin/python -m bench.streaming"
START_LIMIT = 60.0
REPLY_LIMIT = 60.0  # any one wait for replies
STOP_LIMIT = 30.0
POLL = 0.25
NAME = "Lilith the Wise"
_LINE = re.compile(r"stream (\d+), line (\d+)")


def reply_text(words: int) -> str:
    out = []
    for i in range(words):
        out.append(f"word{i:04d}")
        if i % 12 == 11:
            out[-1] += "."
    return " ".join(out)


@dataclass
class Sample:
    first_visible_ms: float | None
    edits: int
    posts: int
    min_gap_s: float | None  # the shortest time between two versions of one message
    whole: bool  # the messages ended as the plain (non-streamed) reply would be


def by_channel(emu: DiscordEmulator, channel_ids: set[int]) -> dict[int, list[Message]]:
    """The webhook messages of these channels, in one pass over the emulator's messages."""
    found: dict[int, list[Message]] = {}
    for message_id in emu.world.message_order:
        message = emu.world.messages[message_id]
        if message.channel_id in channel_ids and message.webhook_id:
            found.setdefault(message.channel_id, []).append(message)
    return found


async def until(check: Callable[[], bool], limit_s: float) -> bool:
    """Poll `check` (a few times a second: the emulator shares this process) until it holds
    or `limit_s` passes; whether it held."""
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL)
    return True


def replies(emu: DiscordEmulator, channel: Channel, after: int) -> list[Message]:
    return [m for m in emu.bot_messages(channel) if m.webhook_id and m.id > after]


def measure(
    emu: DiscordEmulator, channel: Channel, after: int, stream: StreamRecord | None, text: str
) -> Sample:
    messages = [m for m in replies(emu, channel, after) if not m.deleted]
    first = min((m.posted_at for m in messages), default=None)
    visible = None
    if first is not None and stream is not None and stream.first_token_at is not None:
        visible = 1000 * (first - stream.first_token_at)
    gaps = [
        b.at - a.at for m in messages for a, b in itertools.pairwise(m.versions)
    ]  # fmt: skip
    return Sample(
        visible,
        sum(len(m.revisions) for m in messages),
        len(messages),
        min(gaps) if gaps else None,
        [m.content for m in messages] == reply_chunks(text, NAME),
    )


def delivery_split(logs: str) -> tuple[list[float], list[float]]:
    """From the bot's "streamed reply shown" lines: ms from the first text's stream entry to
    delivery reading it, and from reading it to its message posted."""
    read: list[float] = []
    shown: list[float] = []
    for line in logs.splitlines():
        if "streamed reply shown" not in line:
            continue
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("first_read_ms") is not None:
                read.append(float(entry["first_read_ms"]))
            if entry.get("first_shown_ms") is not None:
                shown.append(float(entry["first_shown_ms"]))
    return read, shown


def stream_for(fake: FakeLLM, nth: int, line: int) -> StreamRecord | None:
    for record in fake.streams:
        messages = (record.call.json or {}).get("messages") or []
        last = str(messages[-1].get("content", "")) if messages else ""
        found = _LINE.search(last)
        if found and (int(found.group(1)), int(found.group(2))) == (nth, line):
            return record
    return None


async def burst(
    emu: DiscordEmulator,
    fake: FakeLLM,
    channels: list[Channel],
    users: list[User],
    nth: int,
    text: str,
    step: Step,
) -> list[Sample]:
    """One streamed reply in each channel at once; a sample per channel."""
    fake.script(*[step] * len(channels))
    marks = {c.id: max((m.id for m in emu.bot_messages(c)), default=0) for c in channels}
    wanted = reply_chunks(text, NAME)
    await asyncio.gather(
        *(
            emu.post_message(c, users[i % len(users)], f"@Lilith stream {nth}, line {i}")
            for i, c in enumerate(channels)
        )
    )

    def finished() -> bool:
        found = by_channel(emu, {c.id for c in channels})
        return all(
            [m.content for m in found.get(c.id, []) if m.id > marks[c.id] and not m.deleted]
            == wanted
            for c in channels
        )

    await until(finished, REPLY_LIMIT)
    await asyncio.sleep(1.5)  # no edit still on its way
    return [
        measure(emu, c, marks[c.id], stream_for(fake, nth, i), text) for i, c in enumerate(channels)
    ]


def rows_for(label: str, samples: list[Sample], total: int) -> tuple[Row, Row, float, float]:
    visible = [s.first_visible_ms for s in samples if s.first_visible_ms is not None]
    edits = [float(s.edits) for s in samples]
    whole = sum(s.whole for s in samples)
    gaps = [s.min_gap_s for s in samples if s.min_gap_s is not None]
    first = latency_row(
        f"{label}: first token -> first visible text",
        visible,
        total=total,
        result=f"{whole}/{total} ended as the plain reply",
        target="p50 <= 300",
    )
    edit_row = Row(
        f"{label}: edits per reply",
        f"{len(edits)}/{total}",
        f"{pct(edits, 50):.0f}",
        f"{pct(edits, 99):.0f}",
        f"{max(edits, default=0):.0f}",
        f"posts per reply {pct([float(s.posts) for s in samples], 50):.0f}; shortest gap "
        f"between two edits of a message {min(gaps, default=float('nan')):.2f} s",
        "gap >= ~1 s",
    )
    return first, edit_row, pct(visible, 50), pct(edits, 50)


async def run(args: argparse.Namespace, rows: list[Row], notes: list[str]) -> None:
    text = reply_text(args.words)
    step = Step(
        content=text,
        chunk_size=args.chunk_size,
        chunk_delay=args.chunk_delay,
        first_token_delay=args.first_token_delay,
    )
    with tempfile.TemporaryDirectory(prefix="tzurot-bench-streaming-") as tmp:
        root = Path(tmp)
        personalities = write_personalities(root / "personalities")
        with private_redis(root / "redis") as redis:
            fake = FakeLLM()
            await fake.start()
            emu = DiscordEmulator()
            emu.add_guild("Bench Guild")
            emu.add_text_channel(emu.guild, "general")
            await emu.start()
            environment = settings_env(
                redis.url, fake.base_url, personalities,
                COMPONENTS="discord,api,worker", DISCORD_TOKEN=emu.token,
                DISCORD_REST_URL=emu.rest_url, DISCORD_DEV_GUILD_ID=str(emu.guild.id),
                PLURALKIT_API_URL=emu.pluralkit.url,
                WORKER_CONCURRENCY=str(max(args.channels * 2, 10)), LOG_LEVEL="INFO",
                SHUTDOWN_GRACE_PERIOD="5", PROCESS_NAME="bench-streaming",
                RATE_LIMIT_USER_PER_MINUTE="0", RATE_LIMIT_CHANNEL_PER_MINUTE="0",
            )  # fmt: skip
            bot = TzurotChild(environment, root / "bot.log")
            users = [emu.add_user(f"user{i}") for i in range(10)]
            try:
                await bot.start(START_LIMIT, health=True)
                if not await until(lambda: emu.gateway.log.ready_count > 0, START_LIMIT):
                    raise RuntimeError(f"the bot did not get ready: {bot.logs()[-2000:]}")
                channels = [emu.add_text_channel(emu.guild, f"stream-{i}")
                            for i in range(args.channels)]  # fmt: skip
                await asyncio.sleep(1.0)
                # Warm-up: every channel's webhook made, the first calls' lazy costs paid.
                await burst(emu, fake, channels, users, 0, reply_text(30), Step(content="Hi."))

                single: list[Sample] = []
                cpu0 = process_cpu_seconds(bot.pid)
                logged = len(bot.logs())
                for n in range(args.sequential):
                    single += await burst(emu, fake, channels[:1], users, 1 + n, text, step)
                cpu_single = process_cpu_seconds(bot.pid) - cpu0
                single_split = delivery_split(bot.logs()[logged:])
                concurrent: list[Sample] = []
                cpu0 = process_cpu_seconds(bot.pid)
                logged = len(bot.logs())
                for n in range(args.rounds):
                    nth = 1000 + n
                    concurrent += await burst(emu, fake, channels, users, nth, text, step)
                cpu_many = process_cpu_seconds(bot.pid) - cpu0
                many_split = delivery_split(bot.logs()[logged:])

                a, b, visible_1, edits_1 = rows_for("1  one at a time", single, args.sequential)
                c, d, visible_n, edits_n = rows_for(
                    f"2  {args.channels} at once", concurrent, args.channels * args.rounds
                )
                rows += [a, b, c, d]
                for label, (read, shown) in (
                    ("1  one at a time", single_split),
                    (f"2  {args.channels} at once", many_split),
                ):
                    rows.append(latency_row(f"{label}: of which stream written -> read", read))
                    rows.append(latency_row(f"{label}: of which read -> posted", shown))
                rows.append(
                    Row(
                        f"3  ratio, {args.channels} at once / one at a time",
                        result=f"first visible p50 x{visible_n / visible_1:.2f}; "
                        f"edits per reply p50 x{edits_n / max(edits_1, 1):.2f}",
                    )
                )
                limited = sum(1 for r in emu.requests if r.status == 429)
                notes.append(
                    f"Each reply: {len(text)} characters ({len(reply_chunks(text, NAME))} "
                    f"messages), streamed in deltas of {args.chunk_size} characters every "
                    f"{args.chunk_delay * 1000:.0f} ms after a first token at "
                    f"{args.first_token_delay * 1000:.0f} ms: about "
                    f"{args.first_token_delay + len(text) / args.chunk_size * args.chunk_delay:.1f}"
                    " s of writing per reply."
                )
                notes.append(
                    f"Row 1: {args.sequential} replies one after another in one channel; row 2: "
                    f"{args.rounds} round(s) of one reply in each of {args.channels} channels at "
                    f"once. Bot CPU: {cpu_single / max(args.sequential, 1):.3f} s per reply one at "
                    f"a time, {cpu_many / max(args.channels * args.rounds, 1):.3f} s per reply "
                    f"{args.channels} at once. REST requests the emulator saw: "
                    f"{len(emu.requests)}, {limited} answered 429."
                )
                errors = [line for line in bot.logs().splitlines() if '"level": "error"' in line]
                if errors:
                    notes.append(f"The bot logged {len(errors)} errors; first: {errors[0][:300]}")
            finally:
                code = await bot.stop(STOP_LIMIT)
                notes.append(f"Bot exit code after SIGTERM: {code}.")
                await emu.stop()
                await fake.stop()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__)
    parser.add_argument("--channels", type=int, default=50, help="streamed replies at once")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of replies at once")
    parser.add_argument("--sequential", type=int, default=10, help="replies one at a time")
    parser.add_argument("--words", type=int, default=330, help="words per reply (~10 chars)")
    parser.add_argument("--chunk-size", type=int, default=16, help="characters per delta")
    parser.add_argument("--chunk-delay", type=float, default=0.015, help="s between deltas")
    parser.add_argument("--first-token-delay", type=float, default=0.3, help="s to first delta")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results.md")
    args = parser.parse_args(argv)
    for name, cap in (("channels", 200), ("rounds", 10), ("sequential", 100), ("words", 2000)):
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
    notes.insert(
        0,
        "The bot is a child `python -m tzurot` with COMPONENTS=discord,api,worker (LOG_LEVEL=INFO, "
        "JSON logs to a file); the emulator and the fake model run in this benchmark's process, "
        "on its clock. First visible text: the emulator receiving the post of the reply's first "
        "message, minus the fake model sending its first delta.",
    )
    publish(header, rows, notes, title=SECTION_TITLE, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
