"""Memory path benchmark: what long-term memory costs a generation, as ratios within one run.

Run from the project root:  .venv/bin/python -m bench.memory_path

The same set-up as bench.pipeline (its helpers are imported from there): a private
redis-server on a free port, the fake OpenAI-compatible server (tests/fixtures/fake_llm.py,
which also answers /v1/embeddings) in its own process, real `Application`s in this process with
a model client answering at once. Memory on is MEMORY_ENABLED=true,
EMBEDDING_MODEL=openai/fake-embedding (litellm to the fake server), FACT_EVERY_EXCHANGES=0;
memory off is MEMORY_ENABLED=false. Every loop has a count and a time limit. Prints one table
and writes it to bench/results.md under its own section. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._harness import (
    FakeModel,
    Row,
    cpu_seconds,
    latency_row,
    machine_line,
    pct,
    private_redis,
    publish,
)
from bench.pipeline import (
    PERSONALITY,
    PHASE_LIMIT,
    SHORT_WAIT,
    CommandLog,
    Env,
    Instant,
    Run,
    new_request,
    round_trip,
    running_app,
    sequential,
)
from tests.fixtures.app import write_personalities
from tzurot.jobs import JobQueue
from tzurot.logs import configure_logging
from tzurot.memory.embedders import embedder_from_settings
from tzurot.memory.models import venue_of
from tzurot.memory.service import Exchange, MemoryService
from tzurot.personalities import Personality

SECTION_TITLE = "## Memory path (`python -m bench.memory_path`)"
COMMAND = ".venv/bin/python -m bench.memory_path"

USER = "bench-user"  # bench.pipeline.new_request's user: the generations' memory scope
RECALL_USER = "bench-recall"  # row 3's scope, exactly SEEDED memories
CHANNEL = "bench-memory-channel"  # every generation has a channel: history is on
VENUE = venue_of(None, CHANNEL, discord=False)  # "api": an API request without delivery
MEMORY_ON = {
    "MEMORY_ENABLED": "true",
    "EMBEDDING_MODEL": "openai/fake-embedding",
    "FACT_EVERY_EXCHANGES": "0",
}
MEMORY_OFF = {"MEMORY_ENABLED": "false"}
DRAIN_LIMIT = 30.0  # waiting for the background memory writes to land
SEED_IN_FLIGHT = 16  # only to fill the scopes faster
SETTLE_S = 0.25  # a pause between blocks, unmeasured: BLAS worker threads' spin ends in it

_SUBJECTS = ("old maps", "silver key", "north tower", "garden wall", "river boat",
             "red lantern", "stone bridge", "iron gate", "blue door", "quiet library")  # fmt: skip
_PLACES = ("east wing", "cellar", "attic", "harbour", "market", "chapel", "orchard", "mill",
           "forge", "courtyard")  # fmt: skip
_VERBS = ("show", "hide", "mean", "hold", "need")


def seed_exchange(user_id: str, slug: str, name: str, index: int) -> Exchange:
    """A past exchange: 1 in 10 shares most words with the benchmark's question, so a recall
    finds more memories above the threshold than its limit (as a chatty user's would)."""
    subject, place = _SUBJECTS[index % 10], _PLACES[(index // 10) % 10]
    verb = _VERBS[(index // 100) % len(_VERBS)]
    return Exchange(
        job_id=f"llm-seed-{user_id}-{index}",
        user_id=user_id,
        user_name="Bench",
        personality=slug,
        personality_name=name,
        venue=VENUE,
        user_text=f"note {index}: what does the {subject} in the {place} {verb}?",
        reply_text=f"The {subject} was found near the {place} long ago, they say; ask again.",
        at=datetime.now(UTC) - timedelta(days=30) + timedelta(minutes=index),
        model="openai/fake-model",
    )


async def seed(memory: MemoryService, user_id: str, personality: Personality, count: int) -> int:
    """`count` memories through `MemoryService.remember` (embedding included); returns how many
    the scope holds after."""
    gate = asyncio.Semaphore(SEED_IN_FLIGHT)

    async def one(index: int) -> None:
        async with gate:
            exchange = seed_exchange(user_id, personality.slug, personality.display_name, index)
            await memory.remember(exchange)

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    _, pending = await asyncio.wait(tasks, timeout=PHASE_LIMIT)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return await memory.count(user_id, personality.slug)


async def memories_reach(memory: MemoryService, user_id: str, count: int) -> bool:
    """Polls (HLEN) until the scope holds `count` memories: the background writes landed."""
    deadline = time.monotonic() + DRAIN_LIMIT
    while time.monotonic() < deadline:
        if await memory.count(user_id, PERSONALITY) >= count:
            return True
        await asyncio.sleep(0.005)
    return False


def generations(
    jobs: JobQueue, personality: Personality, run: str, tag: str
) -> Callable[[int], Awaitable[float | None]]:
    def one(i: int) -> Awaitable[float | None]:
        return round_trip(jobs, new_request(personality, run, tag, i, CHANNEL), SHORT_WAIT)

    return one


def other_threads_cpu() -> float:
    """User + system CPU of this process's threads other than the main one (the event loop's):
    litellm's executor threads, and NumPy's BLAS worker threads if it starts any."""
    main = threading.main_thread().native_id
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for task in Path("/proc/self/task").iterdir():
        if task.name == str(main):
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


# --- command families ---------------------------------------------------------------------------

_ID_LIKE = re.compile(r"[0-9]|\.")


def family(command: str) -> str:
    """`HGETALL tzurot:memory-prefs:bench-user` -> `HGETALL tzurot:memory-prefs`; scripts by their
    first key. Like bench.pipeline's (private) `_kind`, but keeps dashed names (memory-prefs,
    memory-scopes, tzurot-background) and stops at a hash tag or the user id."""
    parts = command.split(" ")
    name = parts[0].upper()
    key = ""
    if name in {"EVALSHA", "EVAL"} and len(parts) > 3 and parts[2] != "0":
        key = parts[3]
    elif name not in {"PING", "EVALSHA", "EVAL", "INFO", "MULTI", "EXEC"} and len(parts) > 1:
        key = parts[1]
    kept = []
    for segment in key.split(":")[:3]:
        if segment.startswith("{") or segment in (USER, RECALL_USER) or _ID_LIKE.search(segment):
            break
        kept.append(segment)
    return f"{name} {':'.join(kept)}".strip()


def families(log: CommandLog, start: float, end: float) -> Counter[str]:
    """Commands clients sent between two time.time() values (Lua's own excluded), by family."""
    return Counter(
        family(text)
        for at, client, text in list(log.entries)
        if start <= at < end and client != "lua"
    )


async def memory_writes_seen(log: CommandLog, start: float, count: int) -> bool:
    """Waits, sending nothing, until MONITOR has shown `count` memory writes finishing since
    `start` (remember()'s last command is the SADD to the user's memory-scopes set)."""
    deadline = time.monotonic() + DRAIN_LIMIT
    while time.monotonic() < deadline:
        seen = sum(
            1
            for at, client, text in list(log.entries)
            if at >= start
            and client != "lua"
            and text.startswith("SADD")
            and "memory-scopes" in text
        )
        if seen >= count:
            return True
        await asyncio.sleep(0.01)
    return False


# --- 0. the memory scopes --------------------------------------------------------------------


async def phase_seed(env: Env) -> None:
    """Fills the generations' scope and row 3's (db 1) with `--memories` memories each."""
    count = env.args.memories
    async with running_app(env, 1, chat_model=Instant(), LOG_LEVEL="WARNING", **MEMORY_ON) as (
        app,
        personality,
    ):
        assert app.memory is not None
        started = time.perf_counter()
        filled = await seed(app.memory, USER, personality, count)
        recall_filled = await seed(app.memory, RECALL_USER, personality, count)
        seconds = time.perf_counter() - started
    env.notes.append(
        f"Seeded with MemoryService.remember(Exchange(...)) ({SEED_IN_FLIGHT} in flight, "
        f"{seconds:.1f} s): the generations' scope ({USER}, {PERSONALITY}) {filled} memories, "
        f"row 3's ({RECALL_USER}) {recall_filled}; 1 in 10 shares most words with the "
        f"benchmark's question, in the venue {VENUE!r} of the API requests."
    )


# --- 1. Redis commands per generation -----------------------------------------------------------


@dataclass
class Window:
    run: Run
    per_generation: float
    by_family: dict[str, float]  # per generation, idle subtracted
    idle_rate: float
    drained: bool


async def commands_window(env: Env, db: int, memory: bool) -> Window:
    args = env.args
    tag = "on" if memory else "off"
    extra = MEMORY_ON if memory else MEMORY_OFF
    async with running_app(env, db, chat_model=Instant(), LOG_LEVEL="WARNING", **extra) as (
        app,
        personality,
    ):
        jobs = app.jobs
        assert jobs is not None
        stored = await app.memory.count(USER, PERSONALITY) if app.memory is not None else 0
        one = generations(jobs, personality, env.run, f"c{tag}")
        await sequential(args.warmup, generations(jobs, personality, env.run, f"cw{tag}"))
        if memory:
            assert app.memory is not None
            await memories_reach(app.memory, USER, stored + args.warmup)
        idle: list[tuple[float, float]] = []
        with CommandLog(env.redis.port, limit_s=PHASE_LIMIT * 3) as log:
            await asyncio.sleep(1.0)
            start = time.time()
            await asyncio.sleep(args.idle_s)
            idle.append((start, time.time()))
            start = time.time()
            run = await sequential(args.generations, one)
            drained = True
            if memory:  # the last generation's memory job belongs to the window
                drained = await memory_writes_seen(log, start, len(run.latencies_ms))
            await asyncio.sleep(0.5)  # the last job's trailing writes (SAQ's finish)
            end = time.time()
            idle_start = time.time()
            await asyncio.sleep(args.idle_s)
            idle.append((idle_start, time.time()))
    idle_seconds = sum(b - a for a, b in idle)
    idle_counts: Counter[str] = Counter()
    for a, b in idle:
        idle_counts.update(families(log, a, b))
    seconds = end - start
    counts = families(log, start, end)
    n = max(len(run.latencies_ms), 1)
    by_family = {
        kind: (counts[kind] - idle_counts[kind] / idle_seconds * seconds) / n
        for kind in set(counts) | set(idle_counts)
    }
    idle_rate = sum(idle_counts.values()) / idle_seconds
    per_generation = (sum(counts.values()) - idle_rate * seconds) / n
    return Window(run, per_generation, by_family, idle_rate, drained)


def shown(values: dict[str, float], threshold: float = 0.05) -> str:
    items = sorted(values.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{kind} {value:+.1f}" for kind, value in items if abs(value) >= threshold)


async def phase_commands(env: Env) -> None:
    off = await commands_window(env, 0, memory=False)
    on = await commands_window(env, 1, memory=True)
    count = env.args.generations
    env.rows.append(
        latency_row(
            "1a Redis commands per generation, memory off",
            off.run.latencies_ms,
            result=f"{off.per_generation:.1f} commands",
        )
    )
    env.rows.append(
        latency_row(
            "1b Redis commands per generation, memory on (its memory- job included)",
            on.run.latencies_ms,
            result=f"{on.per_generation:.1f} commands",
        )
    )
    env.rows.append(
        Row(
            "1c memory on / off",
            result=f"{on.per_generation / off.per_generation:.2f} x "
            f"(+{on.per_generation - off.per_generation:.1f} commands)",
        )
    )
    difference = {
        kind: on.by_family.get(kind, 0.0) - off.by_family.get(kind, 0.0)
        for kind in set(on.by_family) | set(off.by_family)
    }
    env.notes.append(
        f"Rows 1: {count} generations one at a time per mode after {env.args.warmup} warm-up, "
        f"each with a channel id (history on), model client answering at once, "
        f"WORKER_CONCURRENCY=50; caller JobQueue.submit + wait. Commands clients sent (MONITOR "
        f"read in a thread, as bench.pipeline's CommandLog; commands run inside Lua scripts "
        f"excluded) minus the idle rate measured in two {env.args.idle_s:g} s windows around each "
        f"(off {off.idle_rate:.1f}/s, on {on.idle_rate:.1f}/s), per generation. With memory on the "
        f"window stays open until MONITOR has shown every generation's memory write finish (the "
        f"SADD that ends remember(); "
        f"{'all seen' if on.drained else 'NOT all seen before the limit'}), then 0.5 s for SAQ's "
        f"finish. The latency columns of rows 1 are with MONITOR on (row 2 has it off)."
    )
    env.notes.append(
        "Row 1 by command and key family, per generation: memory off: "
        + shown(off.by_family)
        + "; memory on: "
        + shown(on.by_family)
        + "; what memory adds (on - off): "
        + shown(difference)
        + "."
    )


# --- 2. generation latency ----------------------------------------------------------------------


@dataclass
class Mode:
    run: Run
    cpu_s: float = 0.0
    other_s: float = 0.0  # of cpu_s, on threads other than the event loop's
    drained: bool = True


async def phase_latency(env: Env) -> None:
    args = env.args
    async with (
        running_app(env, 0, chat_model=Instant(), LOG_LEVEL="WARNING", **MEMORY_OFF) as (
            off_app,
            off_who,
        ),
        running_app(env, 1, chat_model=Instant(), LOG_LEVEL="WARNING", **MEMORY_ON) as (
            on_app,
            on_who,
        ),
    ):
        off_jobs, on_jobs, memory = off_app.jobs, on_app.jobs, on_app.memory
        assert off_jobs is not None and on_jobs is not None and memory is not None
        await sequential(args.warmup, generations(off_jobs, off_who, env.run, "lwoff"))
        stored = await memory.count(USER, PERSONALITY)
        warm = await sequential(args.warmup, generations(on_jobs, on_who, env.run, "lwon"))
        stored += len(warm.latencies_ms)
        await memories_reach(memory, USER, stored)  # the last warm-up write
        first_size = stored
        modes = {"off": Mode(Run()), "on": Mode(Run()), "drained": Mode(Run())}
        blocks = max(args.blocks, 1)
        per_block = max(args.generations // blocks, 1)

        def waited(tag: str) -> Callable[[int], Awaitable[float | None]]:
            timed = generations(on_jobs, on_who, env.run, tag)

            async def one(i: int) -> float | None:
                nonlocal stored
                seconds = await timed(i)  # the latency ends here; the wait below is not in it
                if seconds is not None:
                    stored += 1
                    if not await memories_reach(memory, USER, stored):
                        modes["drained"].drained = False
                return seconds

            return one

        for block in range(blocks):  # interleaved, so drift hits every mode alike
            for name in ("off", "on", "drained"):
                mode = modes[name]
                cpu0, other0 = cpu_seconds(), other_threads_cpu()
                if name == "off":
                    part = await sequential(
                        per_block, generations(off_jobs, off_who, env.run, f"l{block}off")
                    )
                elif name == "on":
                    part = await sequential(
                        per_block, generations(on_jobs, on_who, env.run, f"l{block}on")
                    )
                    stored += len(part.latencies_ms)
                    # The block's last write lands before the next block (in its CPU).
                    mode.drained &= await memories_reach(memory, USER, stored)
                else:
                    part = await sequential(per_block, waited(f"l{block}dr"))
                mode.cpu_s += cpu_seconds() - cpu0
                mode.other_s += other_threads_cpu() - other0
                mode.run.latencies_ms += part.latencies_ms
                mode.run.failures += part.failures
                await asyncio.sleep(SETTLE_S)
        last = new_request(on_who, env.run, "probe", 0, CHANNEL)
        probe = await memory.recall(
            user_id=USER, personality=PERSONALITY, venue=VENUE, query=last.message
        )
    off, on, drained = modes["off"], modes["on"], modes["drained"]

    def cpu(mode: Mode) -> str:
        n = max(mode.run.done, 1)
        return (
            f"{1000 * mode.cpu_s / n:.2f} ms CPU ({1000 * mode.other_s / n:.2f} on other threads)"
        )

    env.rows.append(
        latency_row(
            "2a generation submit->result, memory off",
            off.run.latencies_ms,
            result=cpu(off),
        )
    )
    env.rows.append(
        latency_row(
            "2b generation submit->result, memory on (writes in the background)",
            on.run.latencies_ms,
            result=f"{cpu(on)}, memory writes included",
        )
    )
    env.rows.append(
        latency_row(
            "2c reference: memory on, each write landed before the next submit",
            drained.run.latencies_ms,
        )
    )
    ratios = []
    for label, mode in (("2b", on), ("2c", drained)):
        p50 = pct(mode.run.latencies_ms, 50) / pct(off.run.latencies_ms, 50)
        p99 = pct(mode.run.latencies_ms, 99) / pct(off.run.latencies_ms, 99)
        ratios.append(f"{label}: p50 {p50:.2f} x, p99 {p99:.2f} x")
    env.rows.append(
        Row(
            "2d on / off",
            result="; ".join(ratios),
            target="",
        )
    )
    failures = {name: mode.run.failures for name, mode in modes.items()}
    env.notes.append(
        f"Rows 2: no MONITOR; both Applications (off on db 0, on on db 1) run in this process "
        f"at once, {blocks} blocks of {per_block} generations per mode, interleaved, one at a "
        f"time, after {args.warmup} warm-up each; from JobQueue.submit to JobQueue.wait "
        f"returning the completed result. The memory write is off the reply's path: before "
        f"returning its result the Generator only enqueues the `memory-` job (one SAQ enqueue, "
        f"on the path); the background worker of the same process then embeds and stores the "
        f"exchange, so in 2b it overlaps the next generation (it shares the event loop). 2c "
        f"waits (polling HLEN, untimed) until each write landed before the next submit: what "
        f"the reply's path gains (recall, the enqueue, 20 memories in the prompt). CPU is "
        f"this process's user + system per generation (the fake servers' not included), "
        f"'other threads' the part not on the event loop's thread; 2b's "
        f"includes the memory writes. The scope grows from {first_size} memories as the "
        f"generations are remembered; a recall with the generations' question at the end "
        f"found {len(probe.memories)} (limit 20). Failed: {failures}; every write landed: "
        f"{on.drained and drained.drained}."
    )


# --- 3. recall by itself ------------------------------------------------------------------------


async def phase_recall(env: Env) -> None:
    args = env.args
    async with running_app(env, 1, chat_model=Instant(), LOG_LEVEL="WARNING", **MEMORY_ON) as (
        app,
        personality,
    ):
        memory, redis = app.memory, app.redis
        assert memory is not None and redis is not None
        scope_size = await memory.count(RECALL_USER, PERSONALITY)
        big_size = await memory.count(USER, PERSONALITY)  # the generations' scope, grown
        embedder = embedder_from_settings(app.settings)  # the same litellm embedder recall uses
        exclude = [f"reply:llm-history-{j}" for j in range(25)]  # a history window's reply ids
        found: list[int] = []

        async def ping(_: int) -> float | None:
            started = time.perf_counter()
            await redis.ping()
            return time.perf_counter() - started

        async def embed(i: int) -> float | None:
            started = time.perf_counter()
            await embedder.embed([query_text(i)])
            return time.perf_counter() - started

        def recall(user_id: str) -> Callable[[int], Awaitable[float | None]]:
            async def one(i: int) -> float | None:
                started = time.perf_counter()
                recollection = await memory.recall(
                    user_id=user_id,
                    personality=PERSONALITY,
                    venue=VENUE,
                    query=query_text(i),
                    exclude_sources=exclude,
                )
                seconds = time.perf_counter() - started
                if user_id == RECALL_USER:
                    found.append(len(recollection.memories))
                return seconds

            return one

        calls: dict[str, Callable[[int], Awaitable[float | None]]] = {
            "ping": ping, "embed": embed, "recall": recall(RECALL_USER), "big": recall(USER),
        }  # fmt: skip
        for one in calls.values():
            await sequential(args.warmup, one)
        found.clear()
        runs = {name: Run() for name in calls}
        others = dict.fromkeys(calls, 0.0)
        rounds = max(args.rounds, 1)
        per_round = max(args.recalls // rounds, 1)
        for _round in range(rounds):  # interleaved, so drift hits every call alike
            for name, one in calls.items():
                other0 = other_threads_cpu()
                part = await sequential(per_round, one)
                others[name] += other_threads_cpu() - other0
                await asyncio.sleep(SETTLE_S)
                runs[name].latencies_ms += part.latencies_ms
                runs[name].failures += part.failures
                runs[name].cpu_s += part.cpu_s
        await embedder.close()
    products = await matvec_cpu([scope_size, big_size], dim=384, calls=10, gap_s=0.2)

    ping_p50 = pct(runs["ping"].latencies_ms, 50)

    def result(name: str) -> str:
        run = runs[name]
        cpu = 1000 * run.cpu_s / max(run.done, 1)
        other = 1000 * others[name] / max(run.done, 1)
        times = pct(run.latencies_ms, 50) / ping_p50
        return f"{times:.1f} x PING p50, {cpu:.2f} ms CPU ({other:.2f} on other threads)"

    env.rows.append(
        latency_row(
            "3a bare PING (the app's connection)", runs["ping"].latencies_ms, result=result("ping")
        )
    )
    env.rows.append(
        latency_row(
            "3b the query's embedding alone (litellm -> fake server)",
            runs["embed"].latencies_ms,
            result=result("embed"),
        )
    )
    env.rows.append(
        latency_row(
            f"3c MemoryService.recall, {scope_size:,} memories",
            runs["recall"].latencies_ms,
            result=result("recall"),
        )
    )
    rest = pct(runs["recall"].latencies_ms, 50) - pct(runs["embed"].latencies_ms, 50)
    env.rows.append(Row("3d recall p50 minus the embedding's (3c - 3b)", result=f"{rest:+.2f} ms"))
    env.rows.append(
        latency_row(
            f"3e reference: recall on the generations' scope, {big_size:,} memories",
            runs["big"].latencies_ms,
            result=result("big"),
        )
    )
    env.rows.append(
        Row(
            "3f reference: the search's NumPy product alone (rows @ query), one per 0.2 s",
            n="10",
            result=", ".join(f"{n:,} x 384: {1000 * cpu:.2f} ms CPU" for n, cpu in products),
        )
    )
    mean_found = sum(found) / max(len(found), 1)
    above = above_threshold(query_text(0), scope_size, 0.5, personality.display_name)
    env.notes.append(
        f"Rows 3: one Application (memory on), one call at a time, {rounds} interleaved rounds "
        f"of {per_round} per kind after {args.warmup} warm-up each (so the scope is in the "
        f"store's cache: each search is one EVALSHA version check + one HMGET of the best "
        f"candidates). recall = HGETALL prefs, HGETALL facts, the embedding (litellm "
        f"aembedding to the fake server, in its own process: its CPU is not counted), the "
        f"search (limit 20, threshold 0.5, venue {VENUE!r}, 25 excluded sources); "
        f"{mean_found:.1f} memories found on average ({above} of the {scope_size:,} are above "
        f"the threshold for the first query, by the fake server's embedding). CPU is this "
        f"process's per call; 'other threads' is the part not on the event loop's thread. The 3b "
        f"embedder is a second embedder_from_settings(...) instance, like the one recall uses. "
        f"3e runs interleaved with the others on the scope rows 1-2 grew (the generations' own "
        f"exchanges, all similar to the query). {SETTLE_S:g} s pause after each block, "
        f"unmeasured. 3f: the product alone on random rows, the event loop otherwise idle; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}. CPU on "
        f"'other threads' in rows 2-3 beyond litellm's is NumPy's BLAS worker: above about "
        f"1,150 rows of 384 the product is split over two threads and the worker then "
        f"busy-waits for its next task (up to about 0.1 s) instead of sleeping."
    )


async def matvec_cpu(
    sizes: Sequence[int], *, dim: int, calls: int, gap_s: float
) -> list[tuple[int, float]]:
    """This process's CPU per `rows @ query` (float32, as RedisVectorStore.search computes it)
    for scopes of `sizes` rows, one call every `gap_s` seconds (a quiet bot's recall rate)."""
    import numpy as np

    rng = np.random.default_rng(5)
    found = []
    for n in sizes:
        rows = rng.standard_normal((n, dim)).astype(np.float32)
        query = rows[0].copy()
        await asyncio.sleep(SETTLE_S)
        cpu0 = cpu_seconds()
        for _ in range(calls):
            rows @ query
            await asyncio.sleep(gap_s)
        found.append((n, (cpu_seconds() - cpu0) / calls))
    return found


def query_text(i: int) -> str:
    """Row 3's query: bench.pipeline.new_request's message."""
    return f"benchmark message {i}: what do the old maps in the east wing show?"


def above_threshold(query: str, count: int, threshold: float, name: str) -> int:
    """How many of the seeded memories the fake server's embedding puts at or above
    `threshold` from `query` (computed here with its function, no call)."""
    from tests.fixtures.fake_llm import fake_embedding

    wanted = fake_embedding(query)
    total = 0
    for index in range(count):
        text = seed_exchange(RECALL_USER, PERSONALITY, name, index).text()
        vector = fake_embedding(text)
        total += sum(a * b for a, b in zip(wanted, vector, strict=True)) >= threshold
    return total


# --- driver -------------------------------------------------------------------------------------


async def run_benchmark(args: argparse.Namespace, rows: list[Row], notes: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="tzurot-bench-") as tmp:
        root = Path(tmp)
        personalities = write_personalities(root / "personalities")
        with private_redis(root / "redis", args.fsync) as redis, FakeModel(0.0) as fake:
            env = Env(secrets.token_hex(3), redis, fake, personalities, root, args, rows, notes)
            phases = set(args.only or "123")
            await phase_seed(env)
            if "1" in phases:
                await phase_commands(env)
            if "2" in phases:
                await phase_latency(env)
            if "3" in phases:
                await phase_recall(env)
            notes.append(
                f"Fake model server: {fake.calls()} chat calls answered (the model client "
                "answers in-process; the server answered the embeddings)."
            )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_path", description=__doc__)
    parser.add_argument("--warmup", type=int, default=20, help="warm-up calls per part")
    parser.add_argument("--generations", type=int, default=200, help="per mode, rows 1 and 2")
    parser.add_argument("--blocks", type=int, default=8, help="interleaved blocks in row 2")
    parser.add_argument("--memories", type=int, default=1000, help="memories per seeded scope")
    parser.add_argument("--recalls", type=int, default=500, help="calls per kind in row 3")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds in row 3")
    parser.add_argument("--idle-s", type=float, default=4.0, help="each idle window in row 1")
    parser.add_argument("--fsync", choices=["everysec", "always", "no"], default="everysec")
    parser.add_argument("--only", help="run only these rows' phases, e.g. 13 (default 123)")
    parser.add_argument(
        "--variants", default="", help="gc-freeze: as bench.pipeline, after each Application"
    )
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("WARNING", "console", stream=sys.stderr)
    logging.getLogger("tests").setLevel(logging.WARNING)
    rows: list[Row] = []
    notes: list[str] = []
    started = time.monotonic()
    asyncio.run(run_benchmark(args, rows, notes))
    given = list(argv) if argv is not None else sys.argv[1:]
    command = " ".join([COMMAND, *given])
    header = f"{machine_line()}; run took {time.monotonic() - started:.0f} s; command: `{command}`"
    publish(header, rows, notes, title=SECTION_TITLE, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
