"""What storing and recalling a memory costs at 1k, 10k and 50k memories in one scope.

    .venv/bin/python -m bench.memory             # ~2 minutes
    .venv/bin/python -m bench.memory --quick     # 1k and 10k only

A private redis-server on a free port; three scopes (one user with three characters) filled
with 384-d vectors (the local model's size) in clusters, so a query has a few hundred near
neighbours and the rest far away, in two venues. Prints p50/p99 of `RedisVectorStore.add` at
the cap (each write drops the oldest) and of `search` cold (a process whose cache is empty: the
whole scope read from Redis), warm (the scope unchanged since the last search) and warm after
another process's write (caught up from the write log), the RSS of holding the 10k and 50k
scopes in the cache, and Redis's memory per scope; the table goes to bench/results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import gc
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

from bench._harness import (
    Row,
    latency_row,
    machine_line,
    markdown_table,
    private_redis,
    process_memory_mb,
    text_table,
    write_section,
)
from tzurot.infra.keys import (
    MEMORY_FREE,
    MEMORY_INFO,
    MEMORY_ORDER,
    MEMORY_RECORDS,
    MEMORY_SLOTS,
    MEMORY_VECTORS,
)
from tzurot.memory.models import MemoryRecord, MemoryScope
from tzurot.memory.store import RedisVectorStore

SECTION_TITLE = "## Memory store (`python -m bench.memory`)"
COMMAND = ".venv/bin/python -m bench.memory"
DIM = 384
MODEL = "local"
CLUSTERS = 200
LIMIT, THRESHOLD = 8, 0.3
USER = "1577288383892291585"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TEXT = ("Sam: what was the name of the cat we talked about last week, the one that kept "
        "stealing socks? / Lilith: Pickle, of course. You said she hid them under the stove "
        "and you found eleven of them when you moved the oven out. ")  # fmt: skip
TARGETS = {10_000: "recall p99 <= 25 ms"}
# Samples per measurement: (adds, cold searches, warm searches, searches after a write).
SAMPLES = {1_000: (300, 200, 1000, 200), 10_000: (300, 200, 1000, 200),
           50_000: (200, 40, 500, 100)}  # fmt: skip


class Data:
    """Clustered unit vectors: a memory is its cluster's centre plus as much noise."""

    def __init__(self, seed: int = 8) -> None:
        self.rng = np.random.default_rng(seed)
        centres = self.rng.standard_normal((CLUSTERS, DIM))
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)

    def vectors(self, n: int) -> np.ndarray:
        noise = self.rng.standard_normal((n, DIM)) / np.sqrt(DIM)
        rows = self.centres[self.rng.integers(0, CLUSTERS, n)] + noise
        unit: np.ndarray = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
        return unit


def record(serial: int) -> MemoryRecord:
    return MemoryRecord(
        id=f"mem-{serial:08d}", text=TEXT + str(serial), at=T0 + timedelta(seconds=serial),
        venue="guild:1" if serial % 2 else "dm", sources=(f"{serial}1", f"{serial}2"),
    )  # fmt: skip


def settled_rss_mb() -> float:
    """VmRSS once garbage is collected and malloc has handed freed memory back (the cold
    reads before leave freed buffers in the heap that would hide what the cache holds)."""
    gc.collect()
    libc = ctypes.util.find_library("c")
    if libc:
        ctypes.CDLL(libc).malloc_trim(0)
    return process_memory_mb()


def ms(seconds: list[float]) -> list[float]:
    return [s * 1000 for s in seconds]


async def timed(call: object) -> float:
    started = time.perf_counter()
    await call  # type: ignore[misc]
    return time.perf_counter() - started


async def scope_bytes(redis: Redis, scope: MemoryScope) -> int:
    keys = [f.key(scope=scope.key) for f in (MEMORY_VECTORS, MEMORY_SLOTS, MEMORY_RECORDS,
                                             MEMORY_ORDER, MEMORY_INFO, MEMORY_FREE)]  # fmt: skip
    sizes = [await redis.memory_usage(k, samples=0) for k in keys]
    return sum(s or 0 for s in sizes)


async def run(sizes: list[int]) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    data = Data()
    serial = 0
    with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
        writer_redis, reader_redis = Redis.from_url(server.url), Redis.from_url(server.url)
        try:
            writer = RedisVectorStore(writer_redis, cache_bytes=0)
            cold = RedisVectorStore(reader_redis, cache_bytes=0)
            warm = RedisVectorStore(reader_redis, cache_bytes=512 * 1024 * 1024)
            for size in sizes:
                scope = MemoryScope(USER, f"character-{size}")
                adds, colds, warms, afters = SAMPLES[size]
                used_before = (await writer_redis.info("memory"))["used_memory"]
                fill_started = time.perf_counter()
                vectors = data.vectors(size)
                for start in range(0, size, 50):  # 50 writes in flight: only to fill faster
                    await asyncio.gather(*(
                        writer.add(scope, record(serial + i), vectors[i], model=MODEL, cap=size)
                        for i in range(start, min(start + 50, size))
                    ))  # fmt: skip
                serial += size
                fill_s = time.perf_counter() - fill_started
                used = (await writer_redis.info("memory"))["used_memory"] - used_before
                keys_bytes = await scope_bytes(writer_redis, scope)
                notes.append(
                    f"- {size:,} memories: filled in {fill_s:.1f} s (50 writes in flight); "
                    f"Redis used_memory +{used / 2**20:.1f} MiB (MEMORY USAGE of the scope's "
                    f"keys {keys_bytes / 2**20:.1f} MiB, {keys_bytes / size:.0f} B per memory; "
                    f"the vectors alone {size * DIM * 4 / 2**20:.1f} MiB)."
                )
                rows.append(
                    Row(
                        f"Redis memory, {size:,} memories",
                        result=(
                            f"{used / 2**20:.1f} MiB used_memory, {keys_bytes / size:.0f} B/memory"
                        ),
                    )
                )

                # store: one at a time at the cap, each write dropping the oldest
                extra = data.vectors(adds)
                add_times = []
                for i in range(adds):
                    add_times.append(
                        await timed(
                            writer.add(scope, record(serial + i), extra[i], model=MODEL, cap=size)
                        )
                    )
                serial += adds
                rows.append(latency_row(f"store (add) at {size:,}, at the cap", ms(add_times)))

                queries = data.vectors(max(colds, warms, afters))
                exclude = [f"{serial - j}1" for j in range(20)]  # a history window's ids

                async def recall(store: RedisVectorStore, i: int, scope: MemoryScope = scope,
                                 queries: np.ndarray = queries, exclude: list[str] = exclude
                                 ) -> int:  # fmt: skip
                    found = await store.search(
                        scope, queries[i % len(queries)], model=MODEL, limit=LIMIT,
                        threshold=THRESHOLD, venues=["guild:1"], exclude_sources=exclude,
                    )  # fmt: skip
                    return len(found)

                cold_times = [await timed(recall(cold, i)) for i in range(colds)]
                rows.append(latency_row(f"recall (search) at {size:,}, cold", ms(cold_times),
                                        target=TARGETS.get(size, "")))  # fmt: skip

                rss_before = settled_rss_mb()
                await recall(warm, 0)  # loads the scope into the cache
                rss_after = settled_rss_mb()
                found = []
                warm_times = []
                for i in range(warms):
                    started = time.perf_counter()
                    found.append(await recall(warm, i))
                    warm_times.append(time.perf_counter() - started)
                rows.append(
                    latency_row(
                        f"recall (search) at {size:,}, warm",
                        ms(warm_times),
                        result=f"{np.mean(found):.1f} found",
                        target=TARGETS.get(size, ""),
                    )
                )
                if size >= 10_000:
                    rows.append(
                        Row(
                            f"RSS of the {size:,} scope in the cache",
                            result=(
                                f"+{rss_after - rss_before:.1f} MB (cache {warm.cached_bytes / 2**20:.1f}"
                                f" MiB in all, RSS {rss_after:.0f} MB)"
                            ),
                        )
                    )

                after_times = []
                more = data.vectors(afters)
                for i in range(afters):  # another process writes, then this one recalls
                    await writer.add(scope, record(serial + i), more[i], model=MODEL, cap=size)
                    after_times.append(await timed(recall(warm, i)))
                serial += afters
                rows.append(
                    latency_row(
                        f"recall (search) at {size:,}, warm, after another process's add",
                        ms(after_times),
                        target=TARGETS.get(size, ""),
                    )
                )
        finally:
            await writer_redis.aclose()
            await reader_redis.aclose()
    notes[:0] = [
        f"- One scope per size, {DIM}-d float32 vectors around {CLUSTERS} cluster centres "
        f"(a query has ~1/{CLUSTERS} of the scope near it), half in `guild:1`, half in `dm`; "
        f"each recall: limit {LIMIT}, threshold {THRESHOLD}, venues [guild:1], 20 excluded "
        "sources. One call at a time on one connection to a private redis-server (appendfsync "
        "everysec); the embedding itself is not included.",
        "- store: writes into a full scope (cap = its size), each dropping the oldest memory "
        "and reusing its slot. cold: a store with no cache (as a process that never read the "
        "scope): the pipelined GET of the vectors + LRANGE of the slots, then NumPy. warm: the "
        "scope unchanged: one EVALSHA (version check) + one HMGET of the candidates' records. "
        "after another process's add: the reader catches up with the changed rows from the "
        "write log in the same EVALSHA.",
        "- RSS: this process's VmRSS (after gc.collect() and malloc_trim(0)) before and after the first search of the scope loaded it "
        "into the cache (cache_bytes 512 MiB here; the default 64 MiB does not hold a 50k "
        "scope of 384-d vectors, so there every recall is cold).",
        "- The p99 of the warm rows includes the interpreter's full garbage collections "
        "(gen 2 passes of 10-20 ms seen with gc.callbacks in this process), not reloads.",
    ]
    return rows, notes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1k and 10k only (no results.md)")
    args = parser.parse_args(argv)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 50_000]
    started = time.monotonic()
    rows, notes = asyncio.run(run(sizes))
    print(text_table(rows))
    print("\n".join(notes))
    if not args.quick:
        header = (f"{machine_line()}; run took {time.monotonic() - started:.0f} s; "
                  f"command: `{COMMAND}`")  # fmt: skip
        write_section(SECTION_TITLE, "\n".join([header, "", *markdown_table(rows), "", *notes]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
