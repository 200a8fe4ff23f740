"""litellm's own per-call cost: a default `litellm.acompletion` vs our configured LiteLLMProvider.

Run from the project root:  .venv/bin/python -m bench.litellm_overhead

Three processes per measurement, all on 127.0.0.1:
- the fake OpenAI-compatible server from tests/fixtures/fake_llm.py, in its own process, so its
  CPU is not counted;
- one fresh worker process per mode, which makes the calls and reports its own CPU time
  (user + system, all threads, so litellm's executor threads count too) and latencies:
  - `default`: plain `litellm.acompletion` with litellm's defaults; only the offline and
    local-cost-map environment variables are set (tzurot is not imported);
  - `before`: `configured` with `turn_off_message_logging=True`, as configure_litellm() set it
    before this benchmark was written (the only switch that differs on our non-streaming path);
  - `configured`: `LiteLLMProvider.complete`, i.e. `configure_litellm()` plus our per-call kwargs;
  - `private` (reference only, NOT what tzurot does): `configured` plus two private overrides,
    to show what litellm still spends that no public setting turns off.

Each mode runs `--rounds` times, interleaved; the table shows the lowest CPU per call over the
rounds (noise from other processes only adds CPU) and the median latency and calls/s.
Prints a markdown table and writes it to bench/results.md under its own section. Every loop has
a count and every process a time limit.
"""

from __future__ import annotations

# Standard library only at module level: the `default` worker must see litellm as shipped.
import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._harness import cpu_seconds, pct

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS_PATH = Path(__file__).resolve().parent / "results.md"
SECTION_TITLE = "## litellm per-call overhead (`python -m bench.litellm_overhead`)"
COMMAND = ".venv/bin/python -m bench.litellm_overhead"

MODES = ("default", "before", "configured", "private")
MODEL = "openrouter/anthropic/claude-haiku-4.5"  # the bot's DEFAULT_MODEL, sent to the fake
API_KEY = "sk-bench-0123456789abcdef"
WORKER_LIMIT_S = 240.0  # one worker process, import included
SERVER_START_S = 30.0
PHASE_LIMIT_S = 90.0  # any one measured loop
DRAIN_LIMIT_S = 5.0  # waiting for litellm's background logging tasks after a loop
OFFLINE_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true"}
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

# A prompt and a reply of realistic size: a personality's system prompt, some history, and a
# reply of a few paragraphs (litellm copies and walks both on every call).
SYSTEM_PROMPT = "You are Lilith, a sardonic but kind librarian. " * 30
HISTORY_TURNS = 10
REPLY = "Of course. " + "The archive keeps what the city forgets, and I keep the archive. " * 12


# --- the fake server process --------------------------------------------------------------------


async def serve(lifetime_s: float) -> None:
    """Run FakeLLM until stdin closes (or `lifetime_s` passes); print the port, then the count."""
    from tests.fixtures.fake_llm import FakeLLM

    fake = FakeLLM(reply=REPLY + " ({message})")
    await fake.start()
    print(fake.port, flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stdin_closed, lifetime_s)
    print(f"calls {len(fake.chat_calls)}", flush=True)
    await fake.stop()


class FakeServer:
    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.calls: int | None = None

    def __enter__(self) -> FakeServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.litellm_overhead", "--serve"],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + SERVER_START_S
        line = ""
        while not line and time.monotonic() < deadline and self.process.poll() is None:
            line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.process.kill()
            raise RuntimeError(f"fake LLM server did not start (got {line!r})")
        self.base_url = f"http://127.0.0.1:{line}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        try:
            out, _ = self.process.communicate(input="", timeout=15)
            counts = [x for x in out.split() if x.isdigit()]
            self.calls = int(counts[-1]) if counts else None
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


# --- the worker process -------------------------------------------------------------------------


def watch_connections(outside: list[str]) -> None:
    """Record every connect/lookup to a host that is not loopback (there must be none)."""

    def hook(event: str, args: tuple[Any, ...]) -> None:
        host: object = None
        if event == "socket.connect" and isinstance(args[1], tuple) and args[1]:
            host = args[1][0]
        elif event == "socket.getaddrinfo" and args:
            host = args[0]
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        if isinstance(host, str) and host not in LOOPBACK and len(outside) < 20:
            outside.append(f"{event} {host}")

    sys.addaudithook(hook)


def chat_history() -> list[tuple[str, str]]:
    turns = [("system", SYSTEM_PROMPT)]
    for i in range(HISTORY_TURNS):
        turns.append(("user", f"Alice: question {i} about the archive and its oldest maps?"))
        turns.append(("assistant", f"Answer {i}: " + "the maps are in the east wing. " * 6))
    turns.append(("user", "Alice: and the one with the red seal?"))
    return turns


def apply_private_overrides() -> None:
    """Reference only, never done in tzurot: what no public litellm setting turns off."""
    from litellm._internal_context import is_internal_call
    from litellm.litellm_core_utils.litellm_logging import Logging

    # Marks every call in this task (and the tasks it starts) as a litellm-internal sub-call,
    # which skips the background success handler (standard logging payload, second pricing).
    is_internal_call.set(True)

    # No price computed while filling the response's _hidden_params.
    def no_cost(self: object, *args: object, **kwargs: object) -> None:
        return None

    Logging.response_cost_calculator = no_cost
    Logging._response_cost_calculator = no_cost


async def make_caller(mode: str, base_url: str) -> tuple[Callable[[], Awaitable[str]], float]:
    """The call to measure, and how long importing and configuring litellm took."""
    turns = chat_history()
    started = time.perf_counter()
    if mode == "default":
        import litellm

        messages = [{"role": role, "content": content} for role, content in turns]
        import_s = time.perf_counter() - started

        async def call_default() -> str:
            response = await litellm.acompletion(
                model=MODEL,
                messages=messages,
                api_base=base_url,
                api_key=API_KEY,
                temperature=0.7,
                max_tokens=256,
                timeout=30,
                num_retries=0,
                max_retries=0,
            )
            return str(response.choices[0].message.content or "")

        return call_default, import_s

    from pydantic import SecretStr

    import tzurot  # noqa: F401  (side effect: the offline env, as in the bot)
    from tzurot.ai.models import ChatMessage, ModelTarget
    from tzurot.ai.provider import LiteLLMProvider
    from tzurot.logs import configure_logging

    configure_logging("INFO", stream=sys.stderr)  # as the bot runs (LOG_LEVEL's default)
    started = time.perf_counter()  # litellm's import and configure_litellm(), in a thread
    provider = LiteLLMProvider()
    await provider.warm_up()
    import_s = time.perf_counter() - started
    if mode == "before":
        import litellm

        litellm.turn_off_message_logging = True  # what configure_litellm() set before this change
    if mode == "private":
        apply_private_overrides()
    chat = [ChatMessage(role=role, content=content) for role, content in turns]
    target = ModelTarget(model=MODEL, api_base=base_url, api_key=SecretStr(API_KEY))

    async def call_provider() -> str:
        completion = await provider.complete(
            chat, target, temperature=0.7, max_tokens=256, timeout=30
        )
        return completion.content

    return call_provider, import_s


async def drain(baseline: set[asyncio.Task[Any]]) -> None:
    """Wait (bounded) for the tasks litellm started in the background, so their CPU counts."""
    deadline = time.monotonic() + DRAIN_LIMIT_S
    me = asyncio.current_task()
    while time.monotonic() < deadline:
        pending = [t for t in asyncio.all_tasks() if t is not me and t not in baseline]
        if not pending:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # and for the executor threads' last bits


async def measure(
    call: Callable[[], Awaitable[str]], count: int, in_flight: int, baseline: set[asyncio.Task[Any]]
) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    remaining = iter(range(count))
    deadline = time.monotonic() + PHASE_LIMIT_S

    async def lane() -> None:
        nonlocal failures
        for _ in remaining:
            if time.monotonic() > deadline:
                return
            t0 = time.perf_counter()
            try:
                ok = bool(await call())
            except Exception:
                ok = False
            if ok:
                latencies.append((time.perf_counter() - t0) * 1000.0)
            else:
                failures += 1

    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(in_flight)))
    wall = time.perf_counter() - wall0
    await drain(baseline)
    cpu = cpu_seconds() - cpu0
    done = len(latencies) + failures
    return {
        "n": len(latencies),
        "failures": failures,
        "cpu_ms": cpu / max(done, 1) * 1000.0,
        "p50_ms": pct(latencies, 50),
        "p99_ms": pct(latencies, 99),
        "calls_per_s": done / wall if wall > 0 else float("nan"),
    }


async def worker(mode: str, base_url: str, args: argparse.Namespace) -> dict[str, Any]:
    outside: list[str] = []
    watch_connections(outside)
    call, import_s = await make_caller(mode, base_url)

    for _ in range(args.warmup):
        await call()
    await asyncio.gather(*(call() for _ in range(args.in_flight)))  # opens the connections
    await asyncio.sleep(0.5)
    baseline = set(asyncio.all_tasks())  # e.g. litellm's logging worker, started by now
    await drain(baseline)

    sequential = await measure(call, args.sequential, 1, baseline)
    concurrent = await measure(call, args.concurrent, args.in_flight, baseline)

    import litellm

    return {
        "mode": mode,
        "import_s": import_s,
        "sequential": sequential,
        "concurrent": concurrent,
        "outside_loopback": outside,
        "litellm_version": getattr(litellm, "__version__", None) or _dist_version("litellm"),
        "callbacks": sum(
            len(getattr(litellm, name, ()))
            for name in ("callbacks", "input_callback", "success_callback", "failure_callback")
        ),
        "turn_off_message_logging": litellm.turn_off_message_logging,
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


# --- the driver ---------------------------------------------------------------------------------


def worker_env() -> dict[str, str]:
    """The parent's environment without any litellm/aiohttp knobs, plus offline mode only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM_", "AIOHTTP_"))}
    env.update(OFFLINE_ENV)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


def run_worker(mode: str, base_url: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.litellm_overhead",
        "--worker",
        mode,
        "--base-url",
        base_url,
        "--warmup",
        str(args.warmup),
        "--sequential",
        str(args.sequential),
        "--concurrent",
        str(args.concurrent),
        "--in-flight",
        str(args.in_flight),
    ]
    out = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=WORKER_LIMIT_S,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{mode} worker failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def summary_of(results: list[dict[str, Any]], phase: str, key: str) -> float:
    """CPU: the lowest round (other processes' noise only ever adds CPU); the rest: the median."""
    values = [r[phase][key] for r in results]
    return min(values) if key == "cpu_ms" else statistics.median(values)


COLUMNS = {
    "default": "default litellm",
    "before": "ours before (turn_off_message_logging=True)",
    "configured": "ours (configured)",
    "private": "ours + private overrides (reference, not applied)",
}
RATIOS = (("configured", "default"), ("configured", "before"))


def build_table(runs: dict[str, list[dict[str, Any]]], in_flight: int) -> list[str]:
    modes = [m for m in MODES if m in runs]
    ratios = [(a, b) for a, b in RATIOS if a in runs and b in runs]
    headers = [
        "measurement",
        *(COLUMNS[m] for m in modes),
        *(f"{COLUMNS[a].split(' (')[0]} / {COLUMNS[b].split(' (')[0]}" for a, b in ratios),
    ]
    rows: list[list[str]] = []

    def add(label: str, values: dict[str, float], fmt: str) -> None:
        row = [label, *(format(values[m], fmt) for m in modes)]
        row += [f"{values[a] / values[b]:.2f}" if values[b] else "n/a" for a, b in ratios]
        rows.append(row)

    for phase, title in (("sequential", "1 at a time"), ("concurrent", f"{in_flight} in flight")):
        for key, label, fmt in (
            ("cpu_ms", "CPU per call (ms)", ".2f"),
            ("p50_ms", "p50 latency (ms)", ".2f"),
            ("p99_ms", "p99 latency (ms)", ".2f"),
            ("calls_per_s", "calls/s", ".0f"),
        ):
            if phase == "sequential" and key == "calls_per_s":
                continue
            add(f"{title}: {label}", {m: summary_of(runs[m], phase, key) for m in modes}, fmt)
    add(
        "import + configure litellm (s)",
        {m: statistics.median(r["import_s"] for r in runs[m]) for m in modes},
        ".2f",
    )
    align = ["---", *["---:"] * (len(headers) - 1)]
    return [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def write_section(section: str) -> None:
    """Replace this benchmark's section of results.md (up to the next heading); keep the rest."""
    existing = RESULTS_PATH.read_text(encoding="utf-8") if RESULTS_PATH.exists() else ""
    start = existing.find(SECTION_TITLE)
    if start < 0:
        before, after = existing, ""
    else:
        body = start + len(SECTION_TITLE)
        ends = [i for i in (existing.find("\n## ", body), existing.find("\n# ", body)) if i >= 0]
        end = min(ends) if ends else -1
        before, after = existing[:start], existing[end + 1 :] if end >= 0 else ""
    text = before.rstrip("\n") + "\n\n" + section.strip("\n") + "\n"
    if after:
        text += "\n" + after
    RESULTS_PATH.write_text(text.lstrip("\n"), encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--warmup", type=int, default=30, help="calls before measuring")
    parser.add_argument("--sequential", type=int, default=300, help="calls, one at a time")
    parser.add_argument("--concurrent", type=int, default=1000, help="calls, --in-flight at once")
    parser.add_argument("--in-flight", type=int, default=200, help="calls in flight at once")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of each mode")
    parser.add_argument("--no-private", action="store_true", help="skip the reference column")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results.md")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        asyncio.run(serve(lifetime_s=WORKER_LIMIT_S * 3 * max(args.rounds, 1) + 60))
        return 0
    if args.worker:
        print(json.dumps(asyncio.run(worker(args.worker, args.base_url, args))))
        return 0

    modes = [m for m in MODES if not (args.no_private and m == "private")]
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    started = time.monotonic()
    with FakeServer() as server:
        for round_no in range(max(args.rounds, 1)):
            for mode in modes:
                result = run_worker(mode, server.base_url, args)
                runs[mode].append(result)
                seq, conc = result["sequential"], result["concurrent"]
                print(
                    f"round {round_no + 1} {mode:10s} cpu/call seq {seq['cpu_ms']:.2f} ms, "
                    f"{args.in_flight} in flight {conc['cpu_ms']:.2f} ms",
                    file=sys.stderr,
                )
    elapsed = time.monotonic() - started

    everything = [r for results in runs.values() for r in results]
    failures = sum(r[p]["failures"] for r in everything for p in ("sequential", "concurrent"))
    outside = sorted({x for r in everything for x in r["outside_loopback"]})
    expected = sum(
        args.warmup + args.in_flight + args.sequential + args.concurrent for _ in everything
    )
    configured = runs["configured"][0]
    header = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}; litellm {configured['litellm_version']}; "
        f"run took {elapsed:.0f} s; command: `{COMMAND}`"
    )
    notes = [
        f"Model `{MODEL}` against the fake OpenAI-compatible server (0 ms, in its own process, "
        f"so its CPU is not counted); a {len(SYSTEM_PROMPT)}-char system prompt, "
        f"{HISTORY_TURNS} turns of history and a {len(REPLY)}-char reply.",
        f"{args.sequential} calls one at a time, then {args.concurrent} calls with "
        f"{args.in_flight} in flight, after {args.warmup} + {args.in_flight} warm-up calls; "
        f"a fresh process per mode, {len(runs['default'])} interleaved rounds: CPU is the lowest "
        "round (noise from other processes only adds), latency and calls/s the median.",
        "CPU per call: the worker's user + system time (all threads, so litellm's executor "
        "threads count) over the calls, including the background logging tasks litellm "
        "leaves running after each call returns (waited for before reading the clock).",
        "default: `litellm.acompletion` with litellm's defaults, only LITELLM_LOCAL_MODEL_COST_MAP "
        "and LITELLM_OFFLINE_MODE set. configured: `LiteLLMProvider.complete` "
        f"(configure_litellm() + per-call kwargs; {configured['callbacks']} litellm callbacks, "
        f"turn_off_message_logging={configured['turn_off_message_logging']}).",
        "ours before: the same provider with `litellm.turn_off_message_logging = True`, "
        "the setting configure_litellm() had until this benchmark.",
        "ours + private overrides: reference only, not applied in tzurot. Adds "
        "`litellm._internal_context.is_internal_call` (skips the background success handler: "
        "standard logging payload, a second pricing) and a no-op "
        "`Logging.response_cost_calculator` (the pricing done while filling `_hidden_params`).",
        f"Failed calls: {failures}. Fake server saw {server.calls} chat calls "
        f"(expected {expected}). Connections outside loopback: "
        f"{', '.join(outside) if outside else 'none'}.",
    ]
    if args.no_private:
        notes = [n for n in notes if not n.startswith("ours + private")]
    table = build_table(runs, args.in_flight)
    section = "\n".join([SECTION_TITLE, "", header, "", *table, "", *(f"- {n}" for n in notes), ""])
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"written to {RESULTS_PATH.relative_to(PROJECT_ROOT)}")
    return 0 if failures == 0 and not outside else 1


if __name__ == "__main__":
    sys.exit(main())
