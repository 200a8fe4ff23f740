"""Pipeline benchmark: enqueue -> SAQ worker -> litellm -> fake LLM -> result, in one process.

Run from the project root:  .venv/bin/python -m bench.pipeline

Everything is local: a private redis-server on a free loopback port, the fake OpenAI-compatible
server from the tests, and a real `Application` (api + worker) in this process's event loop.
Prints one table and writes it to bench/results.md. Every loop has a count and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Importing the package first keeps litellm offline (no cost-map download) in this process.
import tzurot  # noqa: F401  (side effect: LITELLM_LOCAL_MODEL_COST_MAP / offline mode)
from tests.fixtures.app import ApiClient, make_settings, settings_env, write_personalities
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer
from tzurot.ai.contracts import GenerationRequest
from tzurot.app import Application
from tzurot.jobs import JobQueue
from tzurot.logs import configure_logging

RESULTS_PATH = Path(__file__).resolve().parent / "results.md"
PERSONALITY = "lilith"  # the slug: the typed interface takes resolved personalities

# Per-phase wall-clock limits (seconds); the whole run stays well under 5 minutes.
PHASE_LIMIT = 60.0
WAIT_TIMEOUT = 10.0


@dataclass
class Row:
    name: str
    n: str = ""
    p50: str = ""
    p99: str = ""
    max: str = ""
    result: str = ""
    target: str = ""


@dataclass
class Latencies:
    values_ms: list[float] = field(default_factory=list)
    failures: int = 0

    def add(self, seconds: float) -> None:
        self.values_ms.append(seconds * 1000.0)

    def pct(self, q: float) -> float:
        data = sorted(self.values_ms)
        if not data:
            return float("nan")
        index = min(len(data) - 1, max(0, round(q / 100.0 * len(data) + 0.5) - 1))
        return data[index]

    @property
    def count(self) -> int:
        return len(self.values_ms)


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


# --- memory -------------------------------------------------------------------------------------


def proc_status_mb(field_name: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so a phase's peak is its own."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


class RssSampler:
    """Samples VmRSS every 20 ms as a cross-check on VmHWM (bounded by a deadline)."""

    def __init__(self, limit_s: float) -> None:
        self.peak_mb = 0.0
        self._limit_s = limit_s
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        deadline = time.monotonic() + self._limit_s
        while time.monotonic() < deadline:
            self.peak_mb = max(self.peak_mb, proc_status_mb("VmRSS"))
            await asyncio.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.peak_mb = max(self.peak_mb, proc_status_mb("VmRSS"))


# --- the things being measured ----------------------------------------------------------------


def litellm_import_ms() -> float:
    """`import litellm` in a fresh interpreter (after `import tzurot` set the offline switches)."""
    code = (
        "import time, tzurot\n"
        "t = time.perf_counter()\n"
        "import litellm\n"
        "print((time.perf_counter() - t) * 1000)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return float(out.stdout.strip().splitlines()[-1])


def new_request(run: str, tag: str, index: int) -> GenerationRequest:
    return GenerationRequest(
        request_id=f"bench-{run}-{tag}-{index}",
        personality=PERSONALITY,
        message=f"benchmark message {index}",
        user_id="bench-user",
        user_name="Bench",
    )


async def typed_roundtrip(jobs: JobQueue, request: GenerationRequest) -> tuple[float, bool]:
    """One job through the typed interface: (seconds from submit to result, completed?)."""
    started = time.perf_counter()
    submission = await jobs.submit(request)
    view = await jobs.wait(submission.job_id, WAIT_TIMEOUT)
    elapsed = time.perf_counter() - started
    return elapsed, view is not None and view.status == "completed"


async def sequential(
    count: int, limit_s: float, one: Callable[[int], Awaitable[tuple[float, bool]]]
) -> Latencies:
    stats = Latencies()
    deadline = time.monotonic() + limit_s
    for index in range(count):
        if time.monotonic() > deadline:
            break
        seconds, ok = await one(index)
        if ok:
            stats.add(seconds)
        else:
            stats.failures += 1
    return stats


async def concurrent(
    jobs: JobQueue, run: str, tag: str, count: int, submitters: int, limit_s: float
) -> tuple[Latencies, float]:
    """`count` typed round trips with at most `submitters` at once; (latencies, wall seconds)."""
    stats = Latencies()
    gate = asyncio.Semaphore(submitters)

    async def one(index: int) -> None:
        async with gate:
            seconds, ok = await typed_roundtrip(jobs, new_request(run, tag, index))
        if ok:
            stats.add(seconds)
        else:
            stats.failures += 1

    started = time.perf_counter()
    async with asyncio.timeout(limit_s):
        await asyncio.gather(*(one(i) for i in range(count)))
    return stats, time.perf_counter() - started


# --- set-up -------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_app(redis_url: str, fake: FakeLLM, personalities: Path, **extra: str) -> Any:
    env = settings_env(redis_url, fake.base_url, personalities, LOG_LEVEL="WARNING", **extra)
    app = Application(make_settings(env))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def redis_db_url(server: RedisServer, db: int) -> str:
    return f"redis://127.0.0.1:{server.port}/{db}"


async def run_benchmark(args: argparse.Namespace, rows: list[Row], notes: list[str]) -> None:
    run = secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="tzurot-bench-") as tmp:
        root = Path(tmp)
        personalities = write_personalities(root / "personalities")
        server = RedisServer(root / "redis")
        server.start()
        try:
            # The fixture asks for fsync on every write (durability tests); the embedded Redis
            # the bot starts in production uses everysec, so measure with that.
            with server.client() as client:
                client.config_set("appendfsync", args.fsync)
            async with FakeLLM(latency=0.0) as fake:
                await phase_overhead_and_throughput(
                    args, run, server, fake, personalities, rows, notes
                )
                fake.latency = args.slow_latency
                fake.requests.clear()
                await phase_in_flight(args, run, server, fake, personalities, rows, notes)
        finally:
            server.stop()


async def phase_overhead_and_throughput(
    args: argparse.Namespace,
    run: str,
    server: RedisServer,
    fake: FakeLLM,
    personalities: Path,
    rows: list[Row],
    notes: list[str],
) -> None:
    concurrency = args.concurrency
    async with running_app(
        redis_db_url(server, 0), fake, personalities, WORKER_CONCURRENCY=str(concurrency)
    ) as app:
        await asyncio.sleep(0.5)  # let the worker's dequeue slots and upkeep settle
        idle_rss = proc_status_mb("VmRSS")
        jobs = app.jobs
        assert jobs is not None and app.api is not None and app.api.port is not None
        api = ApiClient(f"http://127.0.0.1:{app.api.port}")
        try:

            async def typed(index: int, tag: str = "seq") -> tuple[float, bool]:
                return await typed_roundtrip(jobs, new_request(run, tag, index))

            async def warm_typed(index: int) -> tuple[float, bool]:
                return await typed(index, "warm")

            async def http(index: int, tag: str = "http") -> tuple[float, bool]:
                started = time.perf_counter()
                status, body = await api.generate(
                    wait=WAIT_TIMEOUT,
                    requestId=f"bench-{run}-{tag}-{index}",
                    personality="Lilith",
                    message=f"benchmark message {index}",
                )
                elapsed = time.perf_counter() - started
                ok = status == 200 and isinstance(body, dict) and body["status"] == "completed"
                return elapsed, ok

            async def warm_http(index: int) -> tuple[float, bool]:
                return await http(index, "warmhttp")

            await sequential(args.warmup, PHASE_LIMIT, warm_typed)
            await sequential(args.warmup, PHASE_LIMIT, warm_http)
            typed_stats = await sequential(args.sequential, PHASE_LIMIT, typed)
            http_stats = await sequential(args.sequential, PHASE_LIMIT, http)
        finally:
            await api.close()

        calls_before = len(fake.chat_calls)
        tput_stats, wall = await concurrent(
            jobs, run, "tput", args.jobs, args.submitters, PHASE_LIMIT
        )
        llm_calls = len(fake.chat_calls) - calls_before

    rows.append(
        latency_row(
            "1a overhead, typed submit->wait, LLM 0 ms, sequential",
            typed_stats,
            "p50 <= 5 ms",
        )
    )
    rows.append(
        latency_row(
            "1b overhead, HTTP POST /ai/generate?wait=10, sequential",
            http_stats,
            "p50 <= 5 ms",
        )
    )
    throughput = tput_stats.count / wall
    row = latency_row(
        f"2  throughput, {args.jobs} jobs, {args.submitters} submitters, conc {concurrency}",
        tput_stats,
        "",
    )
    row.result = f"{throughput:.0f} jobs/s ({wall:.2f} s)"
    rows.append(row)
    rows.append(Row(f"4a RSS idle after start (conc {concurrency})", result=f"{idle_rss:.0f} MB"))
    notes.append(
        f"Throughput run: {llm_calls} LLM calls for {args.jobs} jobs, "
        f"{tput_stats.failures} not completed."
    )


async def phase_in_flight(
    args: argparse.Namespace,
    run: str,
    server: RedisServer,
    fake: FakeLLM,
    personalities: Path,
    rows: list[Row],
    notes: list[str],
) -> None:
    count = args.in_flight
    concurrency = args.in_flight_concurrency
    async with running_app(
        redis_db_url(server, 1), fake, personalities, WORKER_CONCURRENCY=str(concurrency)
    ) as app:
        await asyncio.sleep(1.0)
        idle_rss = proc_status_mb("VmRSS")
        jobs = app.jobs
        assert jobs is not None
        hwm_reset = reset_peak_rss()
        with RssSampler(PHASE_LIMIT) as sampler:
            stats, wall = await concurrent(jobs, run, "flight", count, count, PHASE_LIMIT)
        peak_hwm = proc_status_mb("VmHWM")
        peak = max(sampler.peak_mb, peak_hwm) if hwm_reset else sampler.peak_mb
        arrivals = [call.at for call in fake.chat_calls]

    row = latency_row(
        f"3  {count} in flight, LLM {args.slow_latency:g} s, conc {concurrency}",
        stats,
        f"wall ~{args.slow_latency:g} s",
    )
    row.result = f"wall {wall:.2f} s"
    rows.append(row)
    rows.append(Row(f"4b RSS idle after start (conc {concurrency})", result=f"{idle_rss:.0f} MB"))
    rows.append(
        Row(
            f"4c RSS peak during {count} in flight",
            result=f"{peak:.0f} MB",
            target="(incl. fake LLM + client)",
        )
    )
    if arrivals:
        spread = max(arrivals) - min(arrivals)
        notes.append(
            f"In-flight run: {len(arrivals)} LLM calls reached the fake server over "
            f"{spread:.2f} s (first to last arrival); {stats.failures} not completed."
        )


def latency_row(name: str, stats: Latencies, target: str) -> Row:
    n = str(stats.count) + (f" ({stats.failures} failed)" if stats.failures else "")
    return Row(
        name,
        n=n,
        p50=fmt(stats.pct(50)),
        p99=fmt(stats.pct(99)),
        max=fmt(max(stats.values_ms, default=float("nan"))),
        target=target,
    )


# --- output -------------------------------------------------------------------------------------

HEADERS = ("measurement", "n", "p50 ms", "p99 ms", "max ms", "result", "target")


def cells(row: Row) -> tuple[str, ...]:
    return (row.name, row.n, row.p50, row.p99, row.max, row.result, row.target)


def text_table(rows: list[Row]) -> str:
    table = [HEADERS, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    numeric = {1, 2, 3, 4}

    def line(values: tuple[str, ...]) -> str:
        parts = [
            v.rjust(widths[i]) if i in numeric else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(HEADERS), rule, *(line(cells(r)) for r in rows)])


def markdown(rows: list[Row], notes: list[str], header: str) -> str:
    lines = [
        "# Pipeline benchmark results",
        "",
        header,
        "",
        "| " + " | ".join(HEADERS) + " |",
        "| " + " | ".join(["---", *["---:"] * 4, "---", "---"]) + " |",
    ]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    lines += ["", *(f"- {note}" for note in notes), ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--submitters", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--in-flight-concurrency", type=int, default=1100)
    parser.add_argument("--slow-latency", type=float, default=2.0)
    parser.add_argument("--fsync", choices=["everysec", "always", "no"], default="everysec")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("WARNING", "console")
    import_ms = litellm_import_ms()
    rows: list[Row] = []
    notes: list[str] = []
    started = time.monotonic()
    asyncio.run(run_benchmark(args, rows, notes))
    rows.append(Row("5  litellm import (fresh interpreter)", result=f"{import_ms:.0f} ms"))
    total = time.monotonic() - started
    header = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}; {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}; redis-server appendfsync={args.fsync}; "
        f"benchmark {total:.0f} s"
    )
    notes.append(
        "Everything runs in one process and one event loop: the app (API + SAQ worker), "
        "the fake LLM server and the client, so RSS and CPU include all three."
    )
    print(header)
    print(text_table(rows))
    for note in notes:
        print(f"- {note}")
    if not args.no_write:
        RESULTS_PATH.write_text(markdown(rows, notes, header), encoding="utf-8")
        print(f"written to {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
