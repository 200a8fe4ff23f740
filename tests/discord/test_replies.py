"""The 24 h reply records (tzurot/discord/replies.py) against a real Redis: saving, finding a
reply by any of its messages or by its trigger, and retiring a replaced or deleted reply."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from tzurot.ai.contracts import Delivery, GenerationFailure, GenerationRequest, GenerationResult
from tzurot.conversations import ChatTurn, TranscriptStore
from tzurot.discord.replies import KEEP_SECONDS, Replies
from tzurot.infra.keys import REPLY, REPLY_MESSAGE, family_of
from tzurot.personalities.models import Personality

LILITH = Personality(name="Lilith", display_name="Lilith the Wise", system_prompt="You are Lilith.",
                     owner_id="77")  # fmt: skip
DELIVERY = Delivery(kind="channel", channel_id="2002", guild_id="3003", reply_to_message_id="1")


def result(job_id: str = "llm-1", *, regenerates: str | None = None, **fields: Any) -> Any:
    request = GenerationRequest(
        request_id=job_id.removeprefix("llm-"), personality=LILITH, message="hello",
        user_id="1001", user_name="alice", channel_id="2002", guild_id="3003",
        source_message_id="1", delivery=DELIVERY, regenerates=regenerates,
        created_at=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
    )  # fmt: skip
    values: dict[str, Any] = {
        "job_id": job_id, "request": request, "status": "completed", "content": "Hi!",
        "thinking": "be kind", "model": "fake-model-2026", "target_model": "openai/fake-model",
        "prompt_tokens": 12, "completion_tokens": 3, "provider": "openai", "latency_ms": 140,
        "settings_used": {"model": "openai/fake-model"},
        "settings_sources": {"model": "built-in default"}, "memories_used": ("alice: cats",),
    }  # fmt: skip
    return GenerationResult(**(values | fields))


async def test_a_delivered_reply_is_found_by_each_message_and_by_its_trigger(
    redis_client: Redis,
) -> None:
    replies = Replies(redis_client)
    await replies.delivered(result(), DELIVERY, ["9001", "9002"])

    for message_id in ("9001", "9002"):
        record = await replies.of_message(message_id)
        assert record is not None and record.job_id == "llm-1"
    assert record.requester_id == "1001" and record.owner_id == "77"
    assert record.trigger_message_id == "1" and record.channel_id == "2002"
    assert record.thinking == "be kind" and record.prompt_tokens == 12
    assert record.settings_sources == {"model": "built-in default"}
    assert [r.job_id for r in await replies.of_trigger("1")] == ["llm-1"]
    assert await replies.of_message("404") is None

    ttl = await redis_client.ttl(REPLY.key(job_id="llm-1"))
    assert 0 < ttl <= KEEP_SECONDS
    for key in await redis_client.keys("tzurot:reply*"):
        assert family_of(key.decode()) is not None
        assert 0 < await redis_client.ttl(key) <= KEEP_SECONDS


async def test_a_reply_that_replaced_another_retires_it(redis_client: Redis) -> None:
    transcripts = TranscriptStore(redis_client)
    replies = Replies(redis_client, transcripts=transcripts)
    await replies.delivered(result(), DELIVERY, ["9001", "9002"])
    assert await replies.begin("llm-1", "regenerate")
    assert not await replies.begin("llm-1", "delete")  # one change at a time

    # The new reply took over the first message only (it is shorter).
    await replies.delivered(result("llm-2", regenerates="llm-1"), DELIVERY, ["9001"])
    assert await replies.get("llm-1") is None
    again = await replies.of_message("9001")
    assert again is not None and again.job_id == "llm-2"
    assert await replies.of_message("9002") is None
    assert [r.job_id for r in await replies.of_trigger("1")] == ["llm-2"]
    assert await replies.begin("llm-1", "delete")  # the old one's mark is gone


async def test_a_failed_replacement_drops_the_old_turn_and_delete_forgets_the_reply(
    redis_client: Redis,
) -> None:
    transcripts = TranscriptStore(redis_client)
    replies = Replies(redis_client, transcripts=transcripts)
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    for job in ("llm-1", "llm-3"):
        await transcripts.append("2002", ChatTurn(role="assistant", speaker="Lilith", content=job,
                                                  at=at, message_id=f"reply:{job}"))  # fmt: skip
    await replies.delivered(result(), DELIVERY, ["9001"])
    failure = GenerationFailure(category="timeout", message="slow")
    await replies.delivered(
        result("llm-2", regenerates="llm-1", status="failed", content=None, failure=failure),
        DELIVERY, ["9001"],
    )  # fmt: skip
    assert [t.content for t in await transcripts.recent("2002", 10)] == ["llm-3"]
    failed = await replies.of_message("9001")
    assert failed is not None and failed.status == "failed"
    assert failed.failure_category == "timeout" and failed.reference_id == failure.reference_id

    await replies.delivered(result("llm-3"), DELIVERY, ["9005"])
    record = await replies.get("llm-3")
    assert record is not None
    await replies.forget(record)
    assert await transcripts.recent("2002", 10) == []
    assert await replies.of_message("9005") is None
    assert await redis_client.get(REPLY_MESSAGE.key(message_id="9005")) is None
