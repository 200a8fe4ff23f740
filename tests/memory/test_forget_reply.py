"""A reply deleted or replaced (Delete reply, Regenerate): its memory is forgotten, and a write
still queued, running or parked never brings it back. Real Redis, the fake LLM's embeddings."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from redis.asyncio import Redis

from tests.fixtures.fake_llm import FakeLLM
from tzurot.infra.keys import MEMORY_PENDING
from tzurot.memory.embedders import LiteLLMEmbedder
from tzurot.memory.facts import FactStore
from tzurot.memory.service import Exchange, MemoryConfig, MemoryService, memory_id_of
from tzurot.memory.store import RedisVectorStore


def service(redis: Redis, fake_llm: FakeLLM) -> MemoryService:
    embedder = LiteLLMEmbedder(
        "openai/embedding-one", api_base=fake_llm.base_url, api_key=SecretStr("test-key")
    )
    jobs: Any = None  # nothing here queues a job
    return MemoryService(redis, RedisVectorStore(redis), FactStore(redis), embedder, jobs,
                         MemoryConfig())  # fmt: skip


def exchange(job_id: str, text: str = "my cat is Miso") -> Exchange:
    return Exchange(
        job_id=job_id, user_id="1001", user_name="alice", personality="lilith",
        personality_name="Lilith", venue="dm", user_text=text, reply_text="noted",
        at=datetime(2026, 11, 1, tzinfo=UTC),
    )  # fmt: skip


async def stored(memory: MemoryService, job_id: str) -> bool:
    return await memory.get("1001", "lilith", memory_id_of(job_id)) is not None


async def test_a_written_memory_is_forgotten_and_others_stay(
    redis_client: Redis, fake_llm: FakeLLM
) -> None:
    memory = service(redis_client, fake_llm)
    await memory.remember(exchange("llm-1"))
    await memory.remember(exchange("llm-2", "I live in Lisbon"))

    assert await memory.forget_reply("1001", "lilith", "llm-1")
    assert not await stored(memory, "llm-1") and await stored(memory, "llm-2")
    assert not await memory.forget_reply("1001", "lilith", "llm-1")  # already gone: fine


async def test_a_write_still_pending_or_parked_never_lands(
    redis_client: Redis, fake_llm: FakeLLM
) -> None:
    memory = service(redis_client, fake_llm)
    parked = json.dumps({"parked_at": time.time(), "payload": exchange("llm-3").model_dump_json()})
    await redis_client.hset(MEMORY_PENDING.key(), "llm-3", parked)
    await memory.forget_reply("1001", "lilith", "llm-3")
    await memory.forget_reply("1001", "lilith", "llm-4")

    assert await redis_client.hget(MEMORY_PENDING.key(), "llm-3") is None
    assert await memory.remember(exchange("llm-3")) is None  # its queued write runs later
    assert await memory.remember(exchange("llm-4")) is None
    assert not await stored(memory, "llm-3") and not await stored(memory, "llm-4")


async def test_a_reply_forgotten_while_its_write_runs_is_not_kept(
    redis_client: Redis, fake_llm: FakeLLM
) -> None:
    memory = service(redis_client, fake_llm)
    embedder: Any = memory._embedder
    real = embedder.embed

    async def embed_then_forget(texts: list[str]) -> Any:
        vectors = await real(texts)
        await memory.forget_reply("1001", "lilith", "llm-5")  # the Delete lands mid-write
        return vectors

    embedder.embed = embed_then_forget
    assert await memory.remember(exchange("llm-5")) is None
    assert not await stored(memory, "llm-5")
