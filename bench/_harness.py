"""What bench.pipeline and bench.discord share: statistics, the table, results.md sections, the
private Redis, the fake model server in its own process, and reading other processes' CPU/RSS.

`python -m bench._harness fake-model` is the fake model server's process (see `FakeModel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.fixtures.redis_server import RedisServer

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS_PATH = Path(__file__).resolve().parent / "results.md"
RESULTS_TITLE = "# Benchmark results"
FAKE_START_S = 30.0  # the fake model server's start-up, import included
FAKE_LIFETIME_S = 1200.0  # it stops by itself after this long, whatever happens to its parent


# --- statistics ---------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    data = sorted(values)
    if not data:
        return float("nan")
    rank = max(1, min(len(data), int(q / 100.0 * len(data) + 0.999999)))
    return data[rank - 1]


def cpu_seconds() -> float:
    """User + system CPU of this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of another process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def process_memory_mb(pid: int | str = "self", field_name: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# --- the table ----------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    n: str = ""
    p50: str = ""
    p99: str = ""
    max: str = ""
    result: str = ""
    target: str = ""


def latency_row(
    name: str,
    values_ms: Sequence[float],
    *,
    total: int | None = None,
    result: str = "",
    target: str = "",
) -> Row:
    n = str(len(values_ms)) if total is None else f"{len(values_ms)}/{total}"
    if not values_ms:
        return Row(name, n, result=result or "no samples", target=target)
    return Row(
        name,
        n,
        f"{pct(values_ms, 50):.2f}",
        f"{pct(values_ms, 99):.2f}",
        f"{max(values_ms):.2f}",
        result,
        target,
    )


HEADERS = ("measurement", "n", "p50 ms", "p99 ms", "max ms", "result", "target")
_NUMERIC = {1, 2, 3, 4}


def _cells(row: Row) -> tuple[str, ...]:
    return (row.name, row.n, row.p50, row.p99, row.max, row.result, row.target)


def text_table(rows: Sequence[Row]) -> str:
    table = [HEADERS, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(
            v.rjust(widths[i]) if i in _NUMERIC else v.ljust(widths[i])
            for i, v in enumerate(values)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(HEADERS), rule, *(line(_cells(r)) for r in rows)])


def markdown_table(rows: Sequence[Row]) -> list[str]:
    align = ["---:" if i in _NUMERIC else "---" for i in range(len(HEADERS))]
    return [
        "| " + " | ".join(HEADERS) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(c.replace("|", "/") for c in _cells(r)) + " |" for r in rows),
    ]


def machine_line() -> str:
    """Date, CPU, cores, Python, redis-server, as the header of a results section."""
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    redis_version = "?"
    binary = shutil.which("redis-server")
    if binary:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
            )
            redis_version = next(
                (p.split("=", 1)[1] for p in out.stdout.split() if p.startswith("v=")), "?"
            )
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {model}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}; redis-server {redis_version}"
    )


def write_section(title: str, body: str) -> None:
    """Replace the `## title` section of results.md (up to the next heading); keep the rest."""
    existing = RESULTS_PATH.read_text(encoding="utf-8") if RESULTS_PATH.exists() else ""
    if not existing.startswith(RESULTS_TITLE):
        existing = RESULTS_TITLE + "\n\n" + existing
    section = f"{title}\n\n{body.strip()}\n"
    start = existing.find(title + "\n")
    if start < 0:
        text = existing.rstrip("\n") + "\n\n" + section
    else:
        rest = start + len(title)
        ends = [i for i in (existing.find("\n## ", rest), existing.find("\n# ", rest)) if i >= 0]
        after = existing[min(ends) + 1 :] if ends else ""
        text = existing[:start] + section + ("\n" + after if after else "")
    RESULTS_PATH.write_text(text, encoding="utf-8")


def publish(
    header: str, rows: Sequence[Row], notes: Sequence[str], *, title: str, write: bool
) -> None:
    """Print a benchmark's table and notes; with `write`, keep them as its results.md section."""
    print(header)
    print(text_table(rows))
    for note in notes:
        print(f"- {note}")
    if write:
        body = "\n".join([header, "", *markdown_table(rows), "", *(f"- {n}" for n in notes)])
        write_section(title, body)
        print("written to bench/results.md")


# --- Redis --------------------------------------------------------------------------------------


@contextlib.contextmanager
def private_redis(directory: Path, fsync: str = "everysec") -> Iterator[RedisServer]:
    """A redis-server on a free loopback port (an ephemeral one: never 6379), switched to the
    embedded Redis's `appendfsync everysec` (the test fixture fsyncs every write)."""
    from tests.fixtures.redis_server import RedisServer

    server = RedisServer(directory)
    server.start()
    try:
        with server.client() as client:
            client.config_set("appendfsync", fsync)
        yield server
    finally:
        server.stop()


def redis_pid(server: RedisServer) -> int | None:
    proc = getattr(server, "_proc", None)
    return int(proc.pid) if proc is not None else None


# --- the fake model server, in its own process --------------------------------------------------


class FakeModel:
    """tests/fixtures/fake_llm.FakeLLM (with bench.litellm_overhead's realistic reply) in a child
    process, so its CPU is not counted in, nor competes inside, the process being measured.

    Like bench.litellm_overhead's FakeServer, plus a latency that can be changed while it runs
    (a line on its stdin)."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> FakeModel:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench._harness", "fake-model", str(self.latency)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._read_line(FAKE_START_S)
        if not line.isdigit():
            self.process.kill()
            raise RuntimeError(f"fake model server did not start (got {line!r})")
        self.base_url = f"http://127.0.0.1:{line}/v1"
        return self

    def _read_line(self, timeout: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while not line and time.monotonic() < deadline and self.process.poll() is None:
            line = self.process.stdout.readline().strip()
        return line

    def _ask(self, command: str) -> str:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read_line(10.0)

    def set_latency(self, seconds: float) -> None:
        if self._ask(f"latency {seconds}") != "ok":
            raise RuntimeError("the fake model server did not take the new latency")
        self.latency = seconds

    def calls(self) -> int:
        """Chat calls the server has answered since it started."""
        answer = self._ask("calls").split()
        return int(answer[-1]) if answer and answer[-1].isdigit() else -1

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        try:
            self.process.communicate(input="", timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


async def _serve_fake_model(latency: float) -> None:
    from bench.litellm_overhead import REPLY
    from tests.fixtures.fake_llm import FakeLLM

    fake = FakeLLM(reply=REPLY + " ({message})", latency=latency)
    await fake.start()
    print(fake.port, flush=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FAKE_LIFETIME_S
    total = 0
    try:
        while loop.time() < deadline:
            try:
                line = await asyncio.wait_for(
                    loop.run_in_executor(None, sys.stdin.readline), deadline - loop.time()
                )
            except TimeoutError:
                break
            if not line:  # the parent closed stdin (or died)
                break
            command, _, value = line.strip().partition(" ")
            if command == "latency":
                fake.latency = float(value)
                print("ok", flush=True)
            elif command == "calls":
                total += len(fake.chat_calls)
                fake.requests.clear()  # keeps its memory flat over a long run
                print(f"calls {total}", flush=True)
            else:
                print("?", flush=True)
    finally:
        await fake.stop()


def main(argv: list[str]) -> int:
    if argv[:1] == ["fake-model"]:
        asyncio.run(_serve_fake_model(float(argv[1]) if len(argv) > 1 else 0.0))
        return 0
    print("usage: python -m bench._harness fake-model [latency]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# --- a tzurot child process ---------------------------------------------------------------------


class TzurotChild:
    """`python -m tzurot` as a child (like tests/fixtures/app.TzurotProcess), or with
    `variants`, `python -m bench._variants VARIANTS` (the bot with bench-only changes)."""

    def __init__(self, env: dict[str, str], log_path: Path, variants: str = "") -> None:
        from tests.fixtures.ports import free_port

        self.port = free_port()
        self.env = {**os.environ, **env, "API_PORT": str(self.port), "LOG_FORMAT": "json"}
        self.log_path = log_path
        self.variants = variants
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float, *, health: bool) -> None:
        """Start it; wait for /health 200 (`health`), else for its "tzurot started" line."""
        import aiohttp

        self.proc = self._spawn()
        url = f"http://127.0.0.1:{self.port}/health"
        async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"tzurot exited: {self.logs()[-2000:]}")
                if not health:
                    if "tzurot started" in self.logs():
                        return
                else:
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(url) as response:
                            if response.status == 200:
                                return
                await asyncio.sleep(0.05)

    def _spawn(self) -> subprocess.Popen[bytes]:
        module = ["-m", "bench._variants", self.variants] if self.variants else ["-m", "tzurot"]
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, *module],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def stop(self, timeout: float) -> int | str:
        """SIGTERM, then SIGKILL after `timeout`; the exit code."""
        if self.proc is None:
            return "not started"
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return await asyncio.to_thread(self.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                return "killed"
        return self.proc.returncode

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
