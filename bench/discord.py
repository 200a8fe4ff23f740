"""Discord front-end benchmark: the whole bot (discord, api, worker) against the Discord emulator.

Run from the project root:  .venv/bin/python -m bench.discord

Everything is local (127.0.0.1): a private redis-server on a free port, the fake
OpenAI-compatible server and the Discord emulator from the tests, and a real `Application` in this
process's event loop. Measures

1. /chat acknowledgement latency (INTERACTION_CREATE written -> deferred callback received by
   the emulator) under a burst of interactions sent at once, with a slow fake LLM;
2. message -> webhook overhead (MESSAGE_CREATE dispatched -> webhook execution received by the
   emulator) with a zero-latency fake LLM, sequentially and as a burst over many channels.

Prints one table and writes it to bench/results.md under "Discord front end" (replacing the last run's). Every loop has a
count and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# Importing the package first keeps litellm offline (no cost-map download) in this process.
import tzurot  # noqa: F401  (side effect: offline litellm)
from tests.emulator import Channel, DiscordEmulator, Interaction, Message, User
from tests.fixtures.app import make_settings, settings_env, write_personalities
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer
from tzurot.app import Application
from tzurot.logs import configure_logging

RESULTS_PATH = Path(__file__).resolve().parent / "results.md"
SECTION_TITLE = "## Discord front end"
ACK_DEADLINE = 3.0  # Discord's interaction callback deadline
PHASE_LIMIT = 60.0  # wall-clock cap per phase (seconds)
STOP_LIMIT = 20.0  # wall-clock cap on Application.stop()


@dataclass
class Row:
    name: str
    n: str
    p50: str = ""
    p99: str = ""
    max: str = ""
    result: str = ""
    target: str = ""


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def latency_row(name: str, values: Sequence[float], total: int, result: str, target: str) -> Row:
    if not values:
        return Row(name, f"0/{total}", result=result or "no samples", target=target)
    return Row(
        name,
        f"{len(values)}/{total}",
        ms(pct(values, 0.50)),
        ms(pct(values, 0.99)),
        ms(max(values)),
        result,
        target,
    )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def webhook_replies(emu: DiscordEmulator, channel: Channel) -> list[Message]:
    return [m for m in emu.bot_messages(channel) if m.source == "webhook"]


async def wait_for_webhook_reply(
    emu: DiscordEmulator, channel: Channel, count: int, timeout: float
) -> Message | None:
    """The `count`-th webhook message in `channel`, or None after `timeout` seconds."""

    def enough() -> Message | None:
        found = webhook_replies(emu, channel)
        return found[count - 1] if len(found) >= count else None

    try:
        return await emu.world.notifier.wait_for(enough, timeout, lambda: "webhook reply")
    except Exception:  # EmulatorTimeoutError (or a subclass of TimeoutError)
        return None


# -- phase 1: interaction acknowledgement ---------------------------------------------------


async def phase_ack(
    emu: DiscordEmulator, fake: FakeLLM, users: list[User], burst: int, rows: list[Row]
) -> None:
    channel = emu.add_text_channel(name="ack")
    await asyncio.sleep(0.2)  # let the CHANNEL_CREATE reach the bot's cache
    # Warm-up: one /chat so lazy imports / first-connection costs are not in the burst.
    fake.latency = 0.0
    warm = await emu.slash_command(
        channel, users[0], "chat", {"personality": "Lilith", "message": "warm up"}
    )
    await warm.wait_for_response(timeout=10)
    await warm.wait_for_edit(timeout=20)

    fake.latency = 2.0
    started = time.monotonic()
    interactions: list[Interaction] = await asyncio.gather(
        *(
            emu.slash_command(
                channel,
                users[i % len(users)],
                "chat",
                {"personality": "Lilith", "message": f"burst {i}"},
            )
            for i in range(burst)
        )
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15.0
    while loop.time() < deadline and any(
        i.deferred_at is None and not i.rejected for i in interactions
    ):
        await asyncio.sleep(0.05)
    lat = [
        i.deferred_at - i.dispatched_at
        for i in interactions
        if i.deferred_at is not None and i.dispatched_at is not None
    ]
    within = sum(1 for v in lat if v <= ACK_DEADLINE)
    rejected = sum(1 for i in interactions if i.rejected)
    rows.append(
        latency_row(
            f"/chat ack latency, burst of {burst} (LLM 2 s)",
            lat,
            burst,
            f"{within}/{burst} acked <= 3 s; {rejected} rejected",
            "all acked <= 3 s; p99 < 1 s",
        )
    )

    # Drain: every answer edited in, so the next phases run on an idle bot.
    answered_deadline = loop.time() + 45.0
    while loop.time() < answered_deadline and any(not i.original_edits for i in interactions):
        await asyncio.sleep(0.1)
    answered = sum(1 for i in interactions if i.original_edits)
    print(
        f"  ack burst: {answered}/{burst} answers edited in "
        f"{time.monotonic() - started:.1f} s after the burst",
        file=sys.stderr,
    )
    fake.latency = 0.0


# -- phase 2: message -> webhook overhead ----------------------------------------------------


async def phase_sequential(
    emu: DiscordEmulator, users: list[User], count: int, rows: list[Row]
) -> None:
    channel = emu.add_text_channel(name="sequential")
    await asyncio.sleep(0.2)
    author = users[0]
    # Warm-up message: creates the channel webhook (first-use cost reported separately).
    warm = await emu.post_message(channel, author, "@Lilith warm up")
    first = await wait_for_webhook_reply(emu, channel, 1, 20.0)
    first_ms = ms(first.posted_at - warm.posted_at) if first else "timeout"
    print(f"  sequential: warm-up reply {first_ms} ms", file=sys.stderr)

    lat: list[float] = []
    loop = asyncio.get_running_loop()
    phase_deadline = loop.time() + PHASE_LIMIT
    for i in range(count):
        if loop.time() > phase_deadline:
            break
        message = await emu.post_message(channel, author, f"@Lilith message number {i}")
        reply = await wait_for_webhook_reply(emu, channel, i + 2, 10.0)
        if reply is None:
            break
        lat.append(reply.posted_at - message.posted_at)
    rows.append(
        latency_row(
            f"@mention -> webhook, {count} sequential (LLM 0 s)",
            lat,
            count,
            f"first (creates webhook): {first_ms} ms",
            "p50 < 100 ms",
        )
    )


async def phase_burst(emu: DiscordEmulator, users: list[User], count: int, rows: list[Row]) -> None:
    channels = [emu.add_text_channel(name=f"burst-{i}") for i in range(count)]
    await asyncio.sleep(0.5)
    started = time.monotonic()
    messages: list[Message] = await asyncio.gather(
        *(
            emu.post_message(channel, users[i % len(users)], f"@Lilith burst {i}")
            for i, channel in enumerate(channels)
        )
    )
    replies = await asyncio.gather(
        *(wait_for_webhook_reply(emu, channel, 1, 30.0) for channel in channels)
    )
    lat = [r.posted_at - m.posted_at for m, r in zip(messages, replies, strict=True) if r]
    elapsed = time.monotonic() - started
    rows.append(
        latency_row(
            f"@mention -> webhook, burst of {count} in {count} channels",
            lat,
            count,
            f"all done in {elapsed:.2f} s; includes webhook creation per channel",
            "p50 < 100 ms",
        )
    )


# -- driver ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, rows: list[Row], notes: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="tzurot-bench-discord-") as tmp:
        tmpdir = Path(tmp)
        redis = RedisServer(tmpdir / "redis")
        redis.start()
        fake = FakeLLM()
        emu = DiscordEmulator()
        app: Application | None = None
        try:
            await fake.start()
            guild = emu.add_guild("Bench Guild")
            emu.add_text_channel(guild, "general")
            await emu.start()
            personalities = write_personalities(tmpdir / "personalities")
            env = settings_env(
                redis.url,
                fake.base_url,
                personalities,
                COMPONENTS="discord,api,worker",
                DISCORD_TOKEN=emu.token,
                DISCORD_REST_URL=emu.rest_url,
                DISCORD_DEV_GUILD_ID=str(emu.guild.id),
                LOG_LEVEL="WARNING",
                SHUTDOWN_GRACE_PERIOD="2",
            )
            app = Application(make_settings(env))
            t0 = time.monotonic()
            await app.start()
            await emu.wait_until_ready(timeout=30)
            assert app.discord is not None
            await asyncio.wait_for(app.discord.ready.wait(), 30)
            notes.append(f"bot start to ready: {time.monotonic() - t0:.2f} s")
            users = [emu.add_user(f"user{i}") for i in range(10)]

            async with asyncio.timeout(PHASE_LIMIT + 30):
                await phase_ack(emu, fake, users, args.burst, rows)
            print(f"  phase_ack done at {time.monotonic() - t0:.1f} s", file=sys.stderr)
            async with asyncio.timeout(PHASE_LIMIT + 30):
                await phase_sequential(emu, users, args.sequential, rows)
            print(f"  phase_sequential done at {time.monotonic() - t0:.1f} s", file=sys.stderr)
            if args.channels > 0:
                async with asyncio.timeout(PHASE_LIMIT):
                    await phase_burst(emu, users, args.channels, rows)
            print(f"  phase_burst done at {time.monotonic() - t0:.1f} s", file=sys.stderr)
            unknown = {f"{r.method} {r.path}" for r in emu.rest.unknown}
            if unknown:
                notes.append(f"emulator had no route for: {sorted(unknown)[:5]}")
            if emu.rest.internal_errors:
                notes.append(f"emulator internal errors: {len(emu.rest.internal_errors)}")
            limited = [r for r in emu.requests if r.status == 429]
            notes.append(f"REST requests: {len(emu.requests)}, 429s: {len(limited)}")
        finally:
            stop_task: asyncio.Task[None] | None = None
            if app is not None:
                # Bounded: Application.stop() can hang for minutes (see the note it leaves).
                stopping = time.monotonic()
                stop_task = asyncio.create_task(app.stop())
                done, _ = await asyncio.wait({stop_task}, timeout=STOP_LIMIT)
                took = time.monotonic() - stopping
                notes.append(
                    f"Application.stop(): {took:.1f} s"
                    if done
                    else f"Application.stop() still running after {STOP_LIMIT:.0f} s "
                    "(DiscordBot.stop -> DeliveryConsumer.stop awaits a cancelled task "
                    "blocked in XREADGROUP); abandoned"
                )
            await emu.stop()
            await fake.stop()
            redis.stop()
            if stop_task is not None and not stop_task.done():
                await asyncio.wait({stop_task}, timeout=5)


HEADERS = ("Measurement", "n", "p50 ms", "p99 ms", "max ms", "Result", "Target")


def cells(row: Row) -> tuple[str, ...]:
    return (row.name, row.n, row.p50, row.p99, row.max, row.result, row.target)


def text_table(rows: list[Row]) -> str:
    table = [HEADERS, *(cells(r) for r in rows)]
    widths = [max(len(line[c]) for line in table) for c in range(len(HEADERS))]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join(
        [line(HEADERS), line(tuple("-" * w for w in widths))] + [line(cells(r)) for r in rows]
    )


def markdown(rows: list[Row], notes: list[str], header: str) -> str:
    out = ["", "## Discord front end", "", header, ""]
    out.append("| " + " | ".join(HEADERS) + " |")
    out.append("|" + "|".join("---" for _ in HEADERS) + "|")
    out += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in rows]
    out.append("")
    out += [f"- {n}" for n in notes]
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--burst", type=int, default=200, help="/chat interactions sent at once")
    parser.add_argument("--sequential", type=int, default=100, help="sequential @mentions")
    parser.add_argument("--channels", type=int, default=50, help="concurrent @mentions (0: skip)")
    parser.add_argument("--no-write", action="store_true", help="do not append to results.md")
    args = parser.parse_args(argv)
    for name, value, cap in (
        ("burst", args.burst, 1000),
        ("sequential", args.sequential, 1000),
        ("channels", args.channels, 200),
    ):
        if not 0 <= value <= cap:
            parser.error(f"--{name} must be between 0 and {cap}")
    args.burst = max(1, args.burst)
    args.sequential = max(1, args.sequential)

    os.environ.setdefault("LOG_LEVEL", "WARNING")
    configure_logging("WARNING", "console")
    rows: list[Row] = []
    notes: list[str] = []
    started = time.monotonic()
    asyncio.run(run(args, rows, notes))
    notes.append(f"benchmark wall time: {time.monotonic() - started:.1f} s")
    header = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; CPU: {cpu_model()} ({os.cpu_count()} cores); "
        f"Python {platform.python_version()}; command: `.venv/bin/python -m bench.discord`"
    )
    print(header)
    print(text_table(rows))
    for note in notes:
        print(f"- {note}")
    if not args.no_write:
        write_section(markdown(rows, notes, header))
        print(f"written to {RESULTS_PATH}")
    return 0


def write_section(section: str) -> None:
    """Replace this benchmark's section of results.md, keeping everything else."""
    existing = RESULTS_PATH.read_text(encoding="utf-8") if RESULTS_PATH.exists() else ""
    start = existing.find(SECTION_TITLE)
    if start < 0:
        before, after = existing, ""
    else:
        end = existing.find("\n## ", start + len(SECTION_TITLE))
        before, after = existing[:start], existing[end + 1 :] if end >= 0 else ""
    text = before.rstrip("\n") + "\n\n" + section.strip("\n") + "\n"
    RESULTS_PATH.write_text(text + ("\n" + after if after else ""), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
