"""The Redis vector store, against a real redis-server."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from tzurot.infra.keys import (
    MEMORY_FREE,
    MEMORY_INFO,
    MEMORY_ORDER,
    MEMORY_RECORDS,
    MEMORY_SLOTS,
    MEMORY_VECTORS,
    family_of,
)
from tzurot.memory.models import MemoryRecord, MemoryScope
from tzurot.memory.store import LOG_SLOTS, ModelMismatch, RedisVectorStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SCOPE = MemoryScope("1001", "lilith")
OTHER = MemoryScope("1002", "lilith")
MODEL = "local"
DIM = 8
FAMILIES = {MEMORY_VECTORS, MEMORY_SLOTS, MEMORY_RECORDS, MEMORY_ORDER, MEMORY_INFO, MEMORY_FREE}


def axis(i: int, lean: float = 0.0, towards: int = 1) -> np.ndarray:
    """A unit vector along axis i, leaning towards another axis (similarity falls with lean)."""
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    v[towards] += lean
    return v


def record(
    memory_id: str,
    *,
    minute: int = 0,
    venue: str = "guild:1",
    sources: tuple[str, ...] = (),
    locked: bool = False,
) -> MemoryRecord:
    return MemoryRecord(
        id=memory_id,
        text=f"memory {memory_id}",
        at=T0 + timedelta(minutes=minute),
        venue=venue,
        sources=sources,
        locked=locked,
    )


@pytest.fixture
def store(redis_client: Redis) -> RedisVectorStore:
    return RedisVectorStore(redis_client)


async def add(
    store: RedisVectorStore, memory_id: str, vector: np.ndarray, *, cap: int = 100, **kw: object
) -> list[str]:
    return await store.add(SCOPE, record(memory_id, **kw), vector, model=MODEL, cap=cap)  # type: ignore[arg-type]


async def search(store: RedisVectorStore, vector: np.ndarray, **kw: object) -> list[str]:
    options: dict[str, object] = {"limit": 10, "threshold": 0.0, "venues": None, **kw}
    found = await store.search(SCOPE, vector, model=MODEL, **options)  # type: ignore[arg-type]
    return [r.record.id for r in found]


async def scope_keys(redis: Redis, scope: MemoryScope) -> list[str]:
    return [k.decode() async for k in redis.scan_iter(match=f"*{{{scope.key}}}*")]


async def test_search_best_first_with_threshold_and_limit(store: RedisVectorStore) -> None:
    await add(store, "a", axis(0), minute=1)
    await add(store, "b", axis(0, lean=0.5), minute=2)
    await add(store, "c", axis(0, lean=2.0), minute=3)
    await add(store, "d", axis(2), minute=4)  # orthogonal
    found = await store.search(SCOPE, axis(0) * 3, model=MODEL, limit=10, threshold=0.0,
                               venues=None)  # fmt: skip
    assert [r.record.id for r in found] == ["a", "b", "c", "d"]
    assert found[0].similarity == pytest.approx(1.0, abs=1e-6)
    assert found[1].similarity == pytest.approx(1 / np.sqrt(1.25), abs=1e-6)
    assert found[0].record == record("a", minute=1)
    assert await search(store, axis(0), threshold=0.5) == ["a", "b"]
    assert await search(store, axis(0), limit=1) == ["a"]
    assert await search(store, axis(0), limit=0) == []


async def test_venue_filter(store: RedisVectorStore) -> None:
    await add(store, "g1", axis(0), venue="guild:1")
    await add(store, "g2", axis(0, lean=0.1), venue="guild:2")
    await add(store, "dm", axis(0, lean=0.2), venue="dm")
    assert await search(store, axis(0), venues={"guild:1"}) == ["g1"]
    assert await search(store, axis(0), venues=["guild:2", "dm"]) == ["g2", "dm"]
    assert await search(store, axis(0), venues=None) == ["g1", "g2", "dm"]
    assert await search(store, axis(0), venues=set()) == []
    assert await search(store, axis(0), venues={"guild:9"}) == []


async def test_exclude_sources_keeps_filling_the_limit(store: RedisVectorStore) -> None:
    for i in range(12):
        await add(store, f"m{i}", axis(0, lean=i / 10), sources=(f"msg{i}", f"reply{i}"))
    excluded = {f"reply{i}" for i in range(10)}
    assert await search(store, axis(0), limit=2, exclude_sources=excluded) == ["m10", "m11"]
    assert await search(store, axis(0), limit=3, exclude_sources={"msg0"}) == ["m1", "m2", "m3"]


async def test_cap_drops_the_oldest_unlocked(store: RedisVectorStore) -> None:
    assert await add(store, "old", axis(0), minute=1, cap=3) == []
    await add(store, "mid", axis(1), minute=2, cap=3)
    await add(store, "new", axis(2), minute=3, cap=3)
    assert await store.set_locked(SCOPE, "old", True)
    assert await add(store, "newer", axis(3), minute=4, cap=3) == ["mid"]
    assert await store.count(SCOPE) == 3
    assert await store.get(SCOPE, "mid") is None
    assert await search(store, axis(1), threshold=0.5) == []
    # A late write older than every unlocked memory is the one dropped.
    assert await add(store, "late", axis(4), minute=0, cap=3) == ["late"]
    assert await store.get(SCOPE, "late") is None
    # Everything else locked: the new memory cannot stay.
    assert await store.set_locked(SCOPE, "new", True)
    assert await store.set_locked(SCOPE, "newer", True)
    assert await add(store, "x", axis(5), minute=9, cap=3) == ["x"]
    assert {r.id for r in (await store.page(SCOPE, offset=0, limit=10))[0]} == {
        "old", "new", "newer",
    }  # fmt: skip


async def test_slots_are_reused_and_freed_rows_zeroed(
    store: RedisVectorStore, redis_client: Redis
) -> None:
    vectors_key = MEMORY_VECTORS.key(scope=SCOPE.key)
    for i in range(4):
        await add(store, f"m{i}", axis(i), minute=i, cap=4)
    assert await redis_client.strlen(vectors_key) == 4 * DIM * 4
    assert await store.delete(SCOPE, "m1")
    assert not await store.delete(SCOPE, "m1")
    blob: bytes = await redis_client.get(vectors_key)  # type: ignore[assignment]
    assert blob[DIM * 4 : 2 * DIM * 4] == bytes(DIM * 4)  # the deleted embedding is gone
    await add(store, "m4", axis(5), minute=5, cap=4)
    for i in range(6, 30):  # at the cap: each write drops one and takes its slot
        await add(store, f"m{i}", axis(i % DIM), minute=i, cap=4)
    assert await redis_client.strlen(vectors_key) == 4 * DIM * 4
    assert await redis_client.llen(MEMORY_SLOTS.key(scope=SCOPE.key)) == 4
    assert await store.count(SCOPE) == 4
    assert await search(store, axis(29 % DIM), threshold=0.9) == ["m29"]


async def test_an_id_already_stored_is_left_alone(store: RedisVectorStore) -> None:
    await add(store, "a", axis(0), minute=1)
    assert await add(store, "a", axis(1), minute=5) == []
    assert await store.count(SCOPE) == 1
    assert await search(store, axis(0), threshold=0.9) == ["a"]


async def test_two_processes_see_each_others_writes(redis_url: str) -> None:
    one, two = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        a, b = RedisVectorStore(one), RedisVectorStore(two)
        await a.add(SCOPE, record("x"), axis(0), model=MODEL, cap=10)
        assert await search(b, axis(0)) == ["x"]  # b caches the scope
        await a.add(SCOPE, record("y", minute=1), axis(0, lean=0.1), model=MODEL, cap=10)
        assert await search(b, axis(0)) == ["x", "y"]  # caught up from the write log
        await a.delete(SCOPE, "x")
        assert await search(b, axis(0)) == ["y"]
        for i in range(LOG_SLOTS + 3):  # further behind than the log: read whole again
            await a.add(SCOPE, record(f"z{i}", minute=2 + i), axis(1), model=MODEL, cap=100)
        assert await search(b, axis(0), threshold=0.5) == ["y"]
        assert len(await search(b, axis(1), threshold=0.5, limit=100)) == LOG_SLOTS + 3
        # Purged and written again as often: a new epoch, never the old cache.
        await a.purge(SCOPE)
        assert await search(b, axis(0)) == []
        await a.add(SCOPE, record("fresh"), axis(2), model=MODEL, cap=10)
        await a.add(SCOPE, record("fresh2", minute=1), axis(3), model=MODEL, cap=10)
        assert await search(b, axis(2), threshold=0.5) == ["fresh"]
        assert await search(b, axis(0), threshold=0.5) == []
    finally:
        await one.aclose()
        await two.aclose()


async def test_an_unchanged_scope_is_read_from_the_cache(
    store: RedisVectorStore, redis_client: Redis
) -> None:
    async def gets() -> int:
        stats = await redis_client.info("commandstats")
        return int(stats.get("cmdstat_get", {}).get("calls", 0))

    for i in range(5):
        await add(store, f"m{i}", axis(i), minute=i)
    assert await search(store, axis(0), threshold=0.5) == ["m0"]
    before = await gets()
    for _ in range(3):
        assert await search(store, axis(0), threshold=0.5) == ["m0"]
    await add(store, "m5", axis(0, lean=0.1), minute=5)  # caught up without reading the blob
    assert await search(store, axis(0), threshold=0.5) == ["m0", "m5"]
    assert await gets() == before
    assert store.cached_bytes > 0


async def test_a_tiny_cache_changes_nothing_but_speed(redis_client: Redis) -> None:
    store = RedisVectorStore(redis_client, cache_bytes=0)
    await store.add(SCOPE, record("a"), axis(0), model=MODEL, cap=10)
    await store.add(OTHER, record("b"), axis(0), model=MODEL, cap=10)
    assert await search(store, axis(0)) == ["a"]
    assert store.cached_bytes == 0
    small = RedisVectorStore(redis_client, cache_bytes=2000)  # room for one scope
    found = await small.search(OTHER, axis(0), model=MODEL, limit=5, threshold=0, venues=None)
    assert [r.record.id for r in found] == ["b"]
    assert await search(small, axis(0)) == ["a"]
    assert 0 < small.cached_bytes <= 2000


async def test_model_mismatch(store: RedisVectorStore) -> None:
    await add(store, "a", axis(0))
    assert await store.model_of(SCOPE) == MODEL
    assert await store.model_of(OTHER) is None
    with pytest.raises(ModelMismatch) as raised:
        await store.add(SCOPE, record("b"), axis(0), model="openai/x", cap=10)
    assert (raised.value.stored_model, raised.value.stored_dim) == (MODEL, DIM)
    with pytest.raises(ModelMismatch):
        await store.add(SCOPE, record("b"), np.ones(DIM + 1), model=MODEL, cap=10)
    found = await store.search(SCOPE, axis(0), model="openai/x", limit=5, threshold=0,
                               venues=None)  # fmt: skip
    assert found == []
    with pytest.raises(ValueError):
        await store.search(SCOPE, np.ones(DIM + 1), model=MODEL, limit=5, threshold=0,
                           venues=None)  # fmt: skip
    # A scope left empty takes the new model.
    await store.delete(SCOPE, "a")
    await store.add(SCOPE, record("c"), np.ones(16), model="openai/x", cap=10)
    assert await store.model_of(SCOPE) == "openai/x"
    found = await store.search(SCOPE, np.ones(16), model="openai/x", limit=5, threshold=0,
                               venues=None)  # fmt: skip
    assert [r.record.id for r in found] == ["c"]


@pytest.mark.parametrize(
    "vector",
    [
        np.array([np.nan] + [0.0] * (DIM - 1)),
        np.array([np.inf] + [0.0] * (DIM - 1)),
        np.zeros(DIM),
        np.ones((2, DIM)),
        np.array([]),
        np.ones(10_000),
    ],
)
async def test_hostile_vectors_are_refused(store: RedisVectorStore, vector: np.ndarray) -> None:
    with pytest.raises(ValueError):
        await add(store, "a", vector)
    await add(store, "ok", axis(0))
    with pytest.raises(ValueError):
        await search(store, vector)
    assert await store.count(SCOPE) == 1


async def test_unnormalised_vectors_are_normalised(
    store: RedisVectorStore, redis_client: Redis
) -> None:
    await add(store, "a", [3.0, 4.0, 0, 0, 0, 0, 0, 0])  # type: ignore[arg-type]
    blob: bytes = await redis_client.get(MEMORY_VECTORS.key(scope=SCOPE.key))  # type: ignore[assignment]
    assert np.frombuffer(blob, dtype="<f4")[:2] == pytest.approx([0.6, 0.8])


async def test_a_corrupt_record_is_skipped_and_logged(
    store: RedisVectorStore, redis_client: Redis
) -> None:
    await add(store, "good", axis(0, lean=0.1), minute=1)
    await add(store, "bad", axis(0), minute=2)
    await redis_client.hset(MEMORY_RECORDS.key(scope=SCOPE.key), "bad", b"{not json")
    with capture_logs() as logs:
        assert await search(store, axis(0)) == ["good"]
        assert await store.get(SCOPE, "bad") is None
        records, total = await store.page(SCOPE, offset=0, limit=10)
    assert [r.id for r in records] == ["good"] and total == 2
    assert any(e["event"] == "unreadable memory skipped" for e in logs)
    assert not await store.set_locked(SCOPE, "bad", True)
    assert await store.delete(SCOPE, "bad")  # its slot is still found and freed
    assert await redis_client.llen(MEMORY_FREE.key(scope=SCOPE.key)) == 1


async def test_get_page_lock_count(store: RedisVectorStore) -> None:
    for i in range(7):
        venue = "dm" if i % 2 else "guild:1"
        await add(store, f"m{i}", axis(i % DIM), minute=i, venue=venue)
    assert await store.count(SCOPE) == 7
    assert await store.get(SCOPE, "m3") == record("m3", minute=3, venue="dm")
    assert await store.get(SCOPE, "nope") is None
    records, total = await store.page(SCOPE, offset=0, limit=3)
    assert [r.id for r in records] == ["m6", "m5", "m4"] and total == 7
    records, total = await store.page(SCOPE, offset=6, limit=3)
    assert [r.id for r in records] == ["m0"] and total == 7
    records, total = await store.page(SCOPE, offset=1, limit=2, venues={"dm"})
    assert [r.id for r in records] == ["m3", "m1"] and total == 3
    assert await store.page(SCOPE, offset=0, limit=5, venues=set()) == ([], 0)
    assert await store.set_locked(SCOPE, "m3", True)
    assert await store.set_locked(SCOPE, "m3", True)
    assert (await store.get(SCOPE, "m3")) == record("m3", minute=3, venue="dm", locked=True)
    assert await store.set_locked(SCOPE, "m3", False)
    assert not (await store.get(SCOPE, "m3")).locked  # type: ignore[union-attr]
    assert not await store.set_locked(SCOPE, "nope", True)


async def test_purge_removes_every_key_of_the_scope(
    store: RedisVectorStore, redis_client: Redis
) -> None:
    for i in range(5):
        await add(store, f"m{i}", axis(i), minute=i)
    await store.delete(SCOPE, "m2")  # leaves a free slot too
    await store.add(OTHER, record("o"), axis(0), model=MODEL, cap=10)
    assert len(await scope_keys(redis_client, SCOPE)) == 6
    assert await store.purge(SCOPE) == 4
    assert await scope_keys(redis_client, SCOPE) == []
    assert await store.count(SCOPE) == 0 and await store.model_of(SCOPE) is None
    assert await search(store, axis(0)) == []
    assert await store.purge(SCOPE) == 0
    assert await store.count(OTHER) == 1


async def test_every_key_is_a_listed_family(store: RedisVectorStore, redis_client: Redis) -> None:
    for i in range(5):
        await add(store, f"m{i}", axis(i), minute=i, cap=3)
    await store.delete(SCOPE, "m4")
    await store.set_locked(SCOPE, "m3", True)
    await search(store, axis(0))
    await store.page(SCOPE, offset=0, limit=5, venues={"guild:1"})
    keys = [k.decode() async for k in redis_client.scan_iter()]
    assert keys
    for key in keys:
        assert family_of(key) in FAMILIES, key
    info = await redis_client.hgetall(MEMORY_INFO.key(scope=SCOPE.key))
    assert len(info) <= 4 + LOG_SLOTS  # model, dim, epoch, version and the write log


async def test_a_page_larger_than_one_hmget(store: RedisVectorStore) -> None:
    for i in range(1100):
        await add(store, f"m{i}", axis(i % DIM), minute=i, cap=2000)
    records, total = await store.page(SCOPE, offset=0, limit=5000)
    assert total == 1100 and len(records) == 1100
    assert records[0].id == "m1099" and records[-1].id == "m0"
    records, total = await store.page(SCOPE, offset=0, limit=5000, venues={"guild:1"})
    assert total == 1100 and len(records) == 1100
