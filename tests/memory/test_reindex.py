"""EMBEDDING_MODEL changes: a scope's memories are re-embedded with the new model, and a
re-embedding cut short by a kill is finished by the cron task. Real Redis, the fake LLM's
embeddings through litellm."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from redis.asyncio import Redis

from tests.fixtures.fake_llm import FakeLLM
from tzurot.infra.keys import MEMORY_PENDING
from tzurot.memory.embedders import LiteLLMEmbedder
from tzurot.memory.facts import FactStore
from tzurot.memory.models import MemoryScope
from tzurot.memory.service import Exchange, MemoryConfig, MemoryService
from tzurot.memory.store import RedisVectorStore

SCOPE = MemoryScope("1001", "lilith")
START = datetime(2026, 11, 1, tzinfo=UTC)


def service(redis: Redis, fake_llm: FakeLLM, model: str) -> MemoryService:
    embedder = LiteLLMEmbedder(model, api_base=fake_llm.base_url, api_key=SecretStr("test-key"))
    jobs: Any = None  # nothing here queues a job (no facts, no parked writes)
    return MemoryService(redis, RedisVectorStore(redis), FactStore(redis), embedder, jobs,
                         MemoryConfig())  # fmt: skip


def exchange(n: int, text: str) -> Exchange:
    return Exchange(
        job_id=f"llm-{n}", user_id=SCOPE.user_id, user_name="alice", personality="lilith",
        personality_name="Lilith", venue="dm", user_text=text, reply_text="noted",
        at=START + timedelta(days=n),
    )  # fmt: skip


async def texts(memory: MemoryService) -> list[str]:
    records, _ = await memory.browse(SCOPE.user_id, SCOPE.personality, offset=0, limit=50)
    return [r.text.split("\n")[0] for r in records]


async def test_a_new_embedding_model_re_embeds_the_scope_and_keeps_every_memory(
    redis_client: Redis, fake_llm: FakeLLM
) -> None:
    old = service(redis_client, fake_llm, "openai/embedding-one")
    for n, text in enumerate(["my cat is Miso", "I live in Lisbon", "I play the cello"]):
        await old.remember(exchange(n, text))

    new = service(redis_client, fake_llm, "openai/embedding-two")
    assert (await new.recall(user_id="1001", personality="lilith", venue="dm",
                             query="my cat Miso")).memories == []  # fmt: skip
    await new.remember(exchange(3, "my cat Miso likes tuna"))

    assert await texts(new) == [
        "alice: my cat Miso likes tuna", "alice: I play the cello", "alice: I live in Lisbon",
        "alice: my cat is Miso",
    ]  # fmt: skip
    assert await RedisVectorStore(redis_client).model_of(SCOPE) == "openai/embedding-two"
    recalled = await new.recall(user_id="1001", personality="lilith", venue="dm",
                                query="my cat Miso", threshold=0.3)  # fmt: skip
    assert "alice: my cat is Miso" in [r.record.text.split("\n")[0] for r in recalled.memories]
    assert await redis_client.hlen(MEMORY_PENDING.key()) == 0  # nothing left parked


async def test_a_re_embedding_cut_short_is_finished_by_the_cron_task(
    redis_client: Redis, fake_llm: FakeLLM
) -> None:
    old = service(redis_client, fake_llm, "openai/embedding-one")
    for n, text in enumerate(["my cat is Miso", "I live in Lisbon"]):
        await old.remember(exchange(n, text))
    records, _ = await old.browse("1001", "lilith", offset=0, limit=10)
    # What a process killed between the purge and the writes leaves: the memories parked, the
    # scope empty.
    parked = {"parked_at": time.time(), "kind": "reindex",
              "payload": json.dumps([r.model_dump(mode="json") for r in records])}  # fmt: skip
    await redis_client.hset(MEMORY_PENDING.key(), f"reindex:{SCOPE.key}", json.dumps(parked))
    await RedisVectorStore(redis_client).purge(SCOPE)

    new = service(redis_client, fake_llm, "openai/embedding-two")
    assert await new.retry_parked() == 1

    assert await texts(new) == ["alice: I live in Lisbon", "alice: my cat is Miso"]
    assert await RedisVectorStore(redis_client).model_of(SCOPE) == "openai/embedding-two"
    assert await redis_client.hlen(MEMORY_PENDING.key()) == 0


async def test_a_kill_before_the_purge_is_finished_too(
    redis_client: Redis, fake_llm: FakeLLM
) -> None:
    old = service(redis_client, fake_llm, "openai/embedding-one")
    await old.remember(exchange(0, "my cat is Miso"))
    records, _ = await old.browse("1001", "lilith", offset=0, limit=10)
    parked = {"parked_at": time.time(), "kind": "reindex",
              "payload": json.dumps([r.model_dump(mode="json") for r in records])}  # fmt: skip
    await redis_client.hset(MEMORY_PENDING.key(), f"reindex:{SCOPE.key}", json.dumps(parked))

    new = service(redis_client, fake_llm, "openai/embedding-two")
    assert await new.retry_parked() == 1

    assert await texts(new) == ["alice: my cat is Miso"]
    assert await RedisVectorStore(redis_client).model_of(SCOPE) == "openai/embedding-two"
