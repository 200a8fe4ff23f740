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
import cProfile
import os
import platform
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# Importing the package first keeps litellm offline (no cost-map download) in this process.
import tzurot  # noqa: F401  (side effect: LITELLM_LOCAL_MODEL_COST_MAP / offline mode)
from tests.fixtures.app import ApiClient, make_settings, settings_env, write_personalities
from tests.fixtures.fake_llm import FakeLLM
from tests.fixtures.redis_server import RedisServer
from tzurot.ai.contracts import GenerationRequest
from tzurot.ai.models import ChatMessage, Completion, ModelTarget
from tzurot.ai.provider import ChatModel
from tzurot.app import Application
from tzurot.jobs import JobQueue
from tzurot.logs import configure_logging

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS_PATH = Path(__file__).resolve().parent / "results.md"
RESULTS_TITLE = "# Pipeline benchmark results"
PERSONALITY = "lilith"  # the slug: the typed interface takes resolved personalities

# Wall-clock limits (seconds); the whole run stays well under 5 minutes.
PHASE_LIMIT = 60.0  # any one measured loop
SHORT_WAIT = 10.0  # per job, 0 ms LLM (also the HTTP ?wait=)
LONG_WAIT = 45.0  # per job, the 1,000-in-flight run


# --- statistics ---------------------------------------------------------------------------------


@dataclass
class Latencies:
    values_ms: list[float] = field(default_factory=list)
    failures: int = 0

    def add(self, seconds: float, ok: bool) -> None:
        if ok:
            self.values_ms.append(seconds * 1000.0)
        else:
            self.failures += 1

    def pct(self, q: float) -> float:
        """Nearest-rank percentile."""
        data = sorted(self.values_ms)
        if not data:
            return float("nan")
        rank = max(1, min(len(data), int(q / 100.0 * len(data) + 0.999999)))
        return data[rank - 1]

    @property
    def count(self) -> int:
        return len(self.values_ms)


@dataclass
class Burst:
    """A concurrent run: latencies plus where the time went."""

    stats: Latencies
    wall_s: float
    cpu_s: float
    all_submitted_s: float


def cpu_seconds() -> float:
    """User + system CPU of this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- memory -------------------------------------------------------------------------------------


def proc_status_mb(field_name: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the peak is this phase's own."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


class RssSampler:
    """Samples VmRSS every 20 ms as a cross-check on VmHWM; stops by itself at `limit_s`."""

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


# --- the things being measured ------------------------------------------------------------------


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
        cwd=PROJECT_ROOT,
    )
    return float(out.stdout.strip().splitlines()[-1])


class NetworkWait:
    """A model client that only waits, as a call to a remote model does, and costs no CPU:
    rows 6a/6b measure the pipeline (SAQ, Redis, prompt, results) without litellm's own
    per-call cost."""

    def __init__(self, latency: float) -> None:
        self.latency = latency

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        target: ModelTarget,
        *,
        temperature: float,
        max_tokens: int,
        timeout: float,
    ) -> Completion:
        await asyncio.sleep(self.latency)
        return Completion(
            content="ok", thinking=None, model=target.model, prompt_tokens=None,
            completion_tokens=None, finish_reason="stop",
        )  # fmt: skip


async def phase_pipeline_only(
    args: argparse.Namespace,
    run: str,
    redis_url: str,
    fake: FakeLLM,
    personalities: Path,
    report: Report,
) -> None:
    """Rows 6a, 6b: the same pipeline with a model client that costs nothing."""
    model = NetworkWait(0.0)
    concurrency = args.in_flight_concurrency
    async with running_app(
        redis_url, fake, personalities, chat_model=model, WORKER_CONCURRENCY=str(concurrency)
    ) as app:
        jobs = app.jobs
        assert jobs is not None
        warm = [new_request(run, "pwarm", i) for i in range(args.warmup)]
        await burst(jobs, warm, submitters=1, wait_s=LONG_WAIT, limit_s=PHASE_LIMIT)

        stats, cpu = await sequential(
            args.sequential, PHASE_LIMIT, lambda i: round_trip(jobs, new_request(run, "pseq", i))
        )
        model.latency = args.slow_latency
        requests = [new_request(run, "pflight", i) for i in range(args.in_flight)]
        flight = await burst(
            jobs, requests, submitters=len(requests), wait_s=LONG_WAIT, limit_s=PHASE_LIMIT
        )
    report.rows.append(
        latency_row("6a pipeline alone (no model client), 1 at a time", stats, target="few ms")
    )
    report.rows.append(
        latency_row(
            f"6b pipeline alone: {args.in_flight} in flight, model wait {args.slow_latency:g} s",
            flight.stats,
            target=f"wall ~{args.slow_latency:g} s",
            result=f"wall {flight.wall_s:.2f} s",
        )
    )
    report.notes.append(
        f"Rows 6a/6b: CPU {1000 * cpu / max(stats.count, 1):.1f} ms per job one at a time, "
        f"{1000 * flight.cpu_s / max(len(requests), 1):.1f} ms per job in flight; the "
        "difference to rows 1a/3 is litellm's own cost per call."
    )


def new_request(run: str, tag: str, index: int) -> GenerationRequest:
    return GenerationRequest(
        request_id=f"bench-{run}-{tag}-{index}",
        personality=PERSONALITY,
        message=f"benchmark message {index}",
        user_id="bench-user",
        user_name="Bench",
    )


async def round_trip(jobs: JobQueue, request: GenerationRequest) -> tuple[float, bool]:
    """One job through the typed interface: (seconds from submit to result, completed?)."""
    started = time.perf_counter()
    submission = await jobs.submit(request)
    view = await jobs.wait(submission.job_id, SHORT_WAIT)
    return time.perf_counter() - started, view is not None and view.status == "completed"


async def sequential(
    count: int, limit_s: float, one: Callable[[int], Awaitable[tuple[float, bool]]]
) -> tuple[Latencies, float]:
    """`count` round trips one after another (fewer if `limit_s` runs out); (stats, cpu s)."""
    stats = Latencies()
    deadline = time.monotonic() + limit_s
    cpu_before = cpu_seconds()
    for index in range(count):
        if time.monotonic() > deadline:
            break
        seconds, ok = await one(index)
        stats.add(seconds, ok)
    return stats, cpu_seconds() - cpu_before


async def burst(
    jobs: JobQueue,
    requests: list[GenerationRequest],
    *,
    submitters: int,
    wait_s: float,
    limit_s: float,
) -> Burst:
    """Submit + wait for every request, at most `submitters` at once, within `limit_s`."""
    stats = Latencies()
    gate = asyncio.Semaphore(submitters)
    last_submit = 0.0
    started = time.perf_counter()

    async def one(request: GenerationRequest) -> None:
        nonlocal last_submit
        async with gate:
            begin = time.perf_counter()
            submission = await jobs.submit(request)
            last_submit = max(last_submit, time.perf_counter() - started)
            view = await jobs.wait(submission.job_id, wait_s)
            done = view is not None and view.status == "completed"
            stats.add(time.perf_counter() - begin, done)

    cpu_before = cpu_seconds()
    tasks = [asyncio.create_task(one(request)) for request in requests]
    _, pending = await asyncio.wait(tasks, timeout=limit_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    stats.failures += len(pending)
    wall = time.perf_counter() - started
    return Burst(stats, wall, cpu_seconds() - cpu_before, last_submit)


# --- set-up -------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_app(
    redis_url: str,
    fake: FakeLLM,
    personalities: Path,
    chat_model: ChatModel | None = None,
    **extra: str,
) -> AsyncIterator[Application]:
    env = settings_env(redis_url, fake.base_url, personalities, LOG_LEVEL="WARNING", **extra)
    app = Application(make_settings(env), chat_model=chat_model)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@contextlib.contextmanager
def profiled(directory: Path | None, name: str) -> Iterator[None]:
    """cProfile the block into `directory/name.prof` when profiling was asked for."""
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


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Row:
    name: str
    n: str = ""
    p50: str = ""
    p99: str = ""
    max: str = ""
    result: str = ""
    target: str = ""


def latency_row(name: str, stats: Latencies, target: str = "", result: str = "") -> Row:
    n = str(stats.count) + (f" (+{stats.failures} failed)" if stats.failures else "")
    return Row(
        name,
        n=n,
        p50=f"{stats.pct(50):.2f}",
        p99=f"{stats.pct(99):.2f}",
        max=f"{max(stats.values_ms, default=float('nan')):.2f}",
        result=result,
        target=target,
    )


async def run_benchmark(args: argparse.Namespace, report: Report) -> None:
    run = secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="tzurot-bench-") as tmp:
        root = Path(tmp)
        personalities = write_personalities(root / "personalities")
        server = RedisServer(root / "redis")
        server.start()
        try:
            # The fixture fsyncs every write (for the durability tests); the embedded Redis the
            # bot starts in production uses everysec, so measure with that by default.
            with server.client() as client:
                client.config_set("appendfsync", args.fsync)
            async with FakeLLM(latency=0.0) as fake:
                url = f"redis://127.0.0.1:{server.port}/0"
                await phase_fast(args, run, url, fake, personalities, report)
                fake.latency = args.slow_latency
                fake.requests.clear()
                url = f"redis://127.0.0.1:{server.port}/1"
                await phase_in_flight(args, run, url, fake, personalities, report)
                url = f"redis://127.0.0.1:{server.port}/2"
                await phase_pipeline_only(args, run, url, fake, personalities, report)
        finally:
            server.stop()


async def phase_fast(
    args: argparse.Namespace,
    run: str,
    redis_url: str,
    fake: FakeLLM,
    personalities: Path,
    report: Report,
) -> None:
    """Rows 1a, 1b, 2, 4a: fake LLM at 0 ms."""
    concurrency = args.concurrency
    async with running_app(
        redis_url, fake, personalities, WORKER_CONCURRENCY=str(concurrency)
    ) as app:
        await asyncio.sleep(0.5)  # let the dequeue slots and the upkeep timers settle
        idle_rss = proc_status_mb("VmRSS")
        jobs = app.jobs
        assert jobs is not None and app.api is not None and app.api.port is not None
        api = ApiClient(f"http://127.0.0.1:{app.api.port}")

        def typed(tag: str, index: int) -> Awaitable[tuple[float, bool]]:
            return round_trip(jobs, new_request(run, tag, index))

        async def http(tag: str, index: int) -> tuple[float, bool]:
            started = time.perf_counter()
            status, body = await api.generate(
                wait=SHORT_WAIT,
                requestId=f"bench-{run}-{tag}-{index}",
                personality="Lilith",
                message=f"benchmark message {index}",
            )
            ok = status == 200 and isinstance(body, dict) and body.get("status") == "completed"
            return time.perf_counter() - started, ok

        try:
            await sequential(args.warmup, PHASE_LIMIT, lambda i: typed("warm", i))
            await sequential(args.warmup, PHASE_LIMIT, lambda i: http("warmhttp", i))
            typed_stats, typed_cpu = await sequential(
                args.sequential, PHASE_LIMIT, lambda i: typed("seq", i)
            )
            http_stats, http_cpu = await sequential(
                args.sequential, PHASE_LIMIT, lambda i: http("http", i)
            )
        finally:
            await api.close()

        requests = [new_request(run, "tput", i) for i in range(args.jobs)]
        calls_before = len(fake.chat_calls)
        with profiled(args.profile, "throughput"):
            tput = await burst(
                jobs,
                requests,
                submitters=args.submitters,
                wait_s=SHORT_WAIT,
                limit_s=PHASE_LIMIT,
            )
        llm_calls = len(fake.chat_calls) - calls_before

    rows = report.rows
    rows.append(latency_row("1a overhead: typed submit->wait, LLM 0 ms, 1 at a time", typed_stats))
    rows[-1].target = "few ms"
    rows.append(latency_row("1b overhead: HTTP POST /ai/generate?wait=10, 1 at a time", http_stats))
    rows[-1].target = "few ms"
    jobs_per_s = tput.stats.count / tput.wall_s
    rows.append(
        latency_row(
            f"2  throughput: {args.jobs} jobs, {args.submitters} submitters, conc {concurrency}",
            tput.stats,
            result=f"{jobs_per_s:.0f} jobs/s ({tput.wall_s:.1f} s)",
        )
    )
    rows.append(Row(f"4a RSS idle after start (conc {concurrency})", result=f"{idle_rss:.0f} MB"))
    report.notes += [
        f"CPU per job (whole process): 1a {1000 * typed_cpu / max(typed_stats.count, 1):.1f} ms, "
        f"1b {1000 * http_cpu / max(http_stats.count, 1):.1f} ms, "
        f"2 {1000 * tput.cpu_s / max(tput.stats.count, 1):.1f} ms "
        f"(CPU busy {tput.cpu_s / tput.wall_s:.0%} of the wall time in row 2).",
        f"Row 2: {llm_calls} LLM calls for {args.jobs} jobs; {tput.stats.failures} not completed.",
    ]


async def phase_in_flight(
    args: argparse.Namespace,
    run: str,
    redis_url: str,
    fake: FakeLLM,
    personalities: Path,
    report: Report,
) -> None:
    """Rows 3, 4b, 4c: fake LLM at 2 s, 1,000 jobs at once."""
    count = args.in_flight
    concurrency = args.in_flight_concurrency
    async with running_app(
        redis_url, fake, personalities, WORKER_CONCURRENCY=str(concurrency)
    ) as app:
        await asyncio.sleep(1.0)
        idle_rss = proc_status_mb("VmRSS")
        jobs = app.jobs
        assert jobs is not None
        # A few jobs first, so litellm's HTTP client and the personality cache exist.
        warm = [new_request(run, "flightwarm", i) for i in range(args.warmup)]
        await burst(jobs, warm, submitters=len(warm), wait_s=LONG_WAIT, limit_s=PHASE_LIMIT)
        fake.requests.clear()

        requests = [new_request(run, "flight", i) for i in range(count)]
        hwm_reset = reset_peak_rss()
        started = time.monotonic()
        with RssSampler(PHASE_LIMIT + 5) as sampler, profiled(args.profile, "in_flight"):
            flight = await burst(
                jobs, requests, submitters=count, wait_s=LONG_WAIT, limit_s=PHASE_LIMIT
            )
        peak = max(sampler.peak_mb, proc_status_mb("VmHWM") if hwm_reset else 0.0)
        arrivals = sorted(call.at - started for call in fake.chat_calls)

    rows = report.rows
    rows.append(
        latency_row(
            f"3  {count} in flight: LLM {args.slow_latency:g} s, conc {concurrency}",
            flight.stats,
            target=f"wall ~{args.slow_latency:g} s",
            result=f"wall {flight.wall_s:.2f} s",
        )
    )
    rows.append(Row(f"4b RSS idle after start (conc {concurrency})", result=f"{idle_rss:.0f} MB"))
    rows.append(
        Row(
            f"4c RSS peak during the {count} in flight",
            result=f"{peak:.0f} MB",
            target="(incl. fake LLM + client)",
        )
    )
    note = (
        f"Row 3: all {count} submitted after {flight.all_submitted_s:.2f} s; "
        f"CPU {1000 * flight.cpu_s / max(count, 1):.1f} ms per job "
        f"(busy {flight.cpu_s / flight.wall_s:.0%} of the wall time); "
    )
    if arrivals:
        note += (
            f"the fake LLM saw {len(arrivals)} calls arrive between {arrivals[0]:.2f} s and "
            f"{arrivals[-1]:.2f} s; "
        )
    note += f"{flight.stats.failures} jobs not completed within {LONG_WAIT:g} s."
    report.notes.append(note)


# --- output -------------------------------------------------------------------------------------

HEADERS = ("measurement", "n", "p50 ms", "p99 ms", "max ms", "result", "target")
NUMERIC = {1, 2, 3, 4}


def cells(row: Row) -> tuple[str, ...]:
    return (row.name, row.n, row.p50, row.p99, row.max, row.result, row.target)


def text_table(rows: list[Row]) -> str:
    table = [HEADERS, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]

    def line(values: tuple[str, ...]) -> str:
        parts = [
            value.rjust(widths[i]) if i in NUMERIC else value.ljust(widths[i])
            for i, value in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(HEADERS), rule, *(line(cells(r)) for r in rows)])


def markdown(report: Report, header: str, command: str) -> str:
    align = ["---" if i not in NUMERIC else "---:" for i in range(len(HEADERS))]
    lines = [
        RESULTS_TITLE,
        "",
        header,
        "",
        f"Command: `{command}` (from the project root). See bench/README.md for the rows.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(cells(r)) + " |" for r in report.rows),
        "",
        *(f"- {note}" for note in report.notes),
        "",
    ]
    return "\n".join(lines)


def write_results(section: str) -> None:
    """Replace this benchmark's section of results.md; keep the `## ...` sections of others."""
    try:
        existing = RESULTS_PATH.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = ""
    before, after = "", ""
    start = existing.find(RESULTS_TITLE)
    if start < 0:
        after = existing
    else:
        before = existing[:start]
        end = existing.find("\n## ", start)
        after = existing[end + 1 :] if end >= 0 else ""
    text = before + section + ("\n" + after if after else "")
    RESULTS_PATH.write_text(text, encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    parser.add_argument("--warmup", type=int, default=20, help="warm-up jobs per part")
    parser.add_argument("--sequential", type=int, default=300, help="jobs in rows 1a and 1b")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs in row 2")
    parser.add_argument("--submitters", type=int, default=200, help="submitters in row 2")
    parser.add_argument("--concurrency", type=int, default=200, help="WORKER_CONCURRENCY 1-2")
    parser.add_argument("--in-flight", type=int, default=1000, help="jobs in row 3")
    parser.add_argument("--in-flight-concurrency", type=int, default=1100)
    parser.add_argument("--slow-latency", type=float, default=2.0, help="fake LLM s in row 3")
    parser.add_argument("--fsync", choices=["everysec", "always", "no"], default="everysec")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write cProfile stats of rows 2 and 3 into this directory (slows them down)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("WARNING", "console")
    import_ms = litellm_import_ms()
    report = Report()
    started = time.monotonic()
    asyncio.run(run_benchmark(args, report))
    report.rows.append(Row("5  litellm import (fresh interpreter)", result=f"{import_ms:.0f} ms"))
    header = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}; redis-server appendfsync={args.fsync}; "
        f"run took {time.monotonic() - started:.0f} s"
    )
    report.notes.append(
        "One process, one event loop: the app (API + SAQ worker), the fake LLM server and the "
        "benchmark client all share it, so CPU and RSS include all three."
    )
    if args.profile is not None:
        report.notes.append(f"Profiled run (rows 2 and 3 slowed down): stats in {args.profile}.")
    command = " ".join(
        [".venv/bin/python -m bench.pipeline", *(argv if argv is not None else sys.argv[1:])]
    )
    print(header)
    print(text_table(report.rows))
    for note in report.notes:
        print(f"- {note}")
    if not args.no_write:
        write_results(markdown(report, header, command.strip()))
        print(f"written to {RESULTS_PATH.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
