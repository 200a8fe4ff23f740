"""The generator streams a reply to be delivered, and fills what Inspect shows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from tests.fixtures.fake_llm import FakeLLM, Step
from tzurot.ai.contracts import Delivery, GenerationRequest
from tzurot.ai.errors import ErrorCategory, ProviderError
from tzurot.ai.generation import Generator, ModelDefaults
from tzurot.ai.models import ChatMessage, Completion, ModelTarget
from tzurot.ai.provider import LiteLLMProvider
from tzurot.ai.thinking import strip_thinking
from tzurot.conversations.models import ChatTurn
from tzurot.jobs.results import ResultLog
from tzurot.jobs.streams import ReplyStreams, fold
from tzurot.personalities.models import Personality
from tzurot.settings.catalog import RESOLVED_KEYS, SettingDefaults
from tzurot.settings.resolver import Level, ResolvedSettings, Source

DELIVERY = Delivery(kind="channel", channel_id="c-1", guild_id="g-1")


class FakeWriter:
    def __init__(self, log: list[tuple[str, str]], fail_on: str | None = None) -> None:
        self.log = log
        self.fail_on = fail_on

    async def _note(self, what: str, text: str = "") -> None:
        if what == self.fail_on:
            raise ConnectionError("redis is gone")
        self.log.append((what, text))

    async def restart(self) -> None:
        await self._note("restart")

    async def show(self, visible: str) -> None:
        await self._note("show", visible)

    async def end(self) -> None:
        await self._note("end")

    async def close(self) -> None:
        await self._note("close")


class FakeStreams:
    def __init__(self, fail_on: str | None = None) -> None:
        self.log: list[tuple[str, str]] = []
        self.writers: list[tuple[str, str]] = []
        self.fail_on = fail_on
        self.prefilling: set[str] = set()

    def writer(self, job_id: str, lane: str) -> FakeWriter:
        self.writers.append((job_id, lane))
        return FakeWriter(self.log, self.fail_on)

    async def prefills_thinking(self, model: str) -> bool:
        return model in self.prefilling

    async def note_prefilled_thinking(self, model: str) -> None:
        self.prefilling.add(model)

    @property
    def shown(self) -> list[str]:
        return [text for what, text in self.log if what == "show"]


class ScriptedModel:
    """Streams `raw` in `step`-character deltas when given `on_text`; fails after if told."""

    def __init__(self, raw: str, step: int = 3, error: ProviderError | None = None) -> None:
        self.raw = raw
        self.step = step
        self.error = error
        self.streamed: list[bool] = []

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        target: ModelTarget,
        *,
        temperature: float,
        max_tokens: int,
        timeout: float,
        on_text: Callable[[str], Awaitable[None]] | None = None,
        **sampling: float,
    ) -> Completion:
        self.streamed.append(on_text is not None)
        if on_text is not None:
            for end in range(self.step, len(self.raw) + self.step, self.step):
                await on_text(self.raw[:end])
        if self.error is not None:
            raise self.error
        visible, thinking = strip_thinking(self.raw)
        return Completion(content=visible.strip(), thinking=thinking, model=target.model)


class History:
    async def exchange(self, channel_id: str, turn: ChatTurn, limit: int) -> list[ChatTurn]:
        return []

    async def append(self, channel_id: str, turn: ChatTurn) -> None:
        return None


class FixedSettings:
    def __init__(self, resolved: ResolvedSettings) -> None:
        self.resolved = resolved

    async def resolve(self, personality: Personality, **where: Any) -> ResolvedSettings:
        return self.resolved


def resolved(**changes: Any) -> ResolvedSettings:
    values = SettingDefaults(model="openai/fake-model").values()
    sources = dict.fromkeys(RESOLVED_KEYS, Source(Level.BUILTIN))
    for key, (value, source) in changes.items():
        values[key], sources[key] = value, source
    return ResolvedSettings(values, sources)


def request(delivery: Delivery | None = DELIVERY) -> GenerationRequest:
    return GenerationRequest(
        request_id="r-1",
        personality=Personality(name="Lilith", system_prompt="You are Lilith."),
        message="hello",
        user_id="u1",
        channel_id="c-1",
        delivery=delivery,
    )


async def progress(_percent: int) -> None:
    return None


def generator(model: Any, **kwargs: Any) -> Generator:
    defaults = ModelDefaults("openai/fake-model", None, None)
    return Generator(model, History(), defaults, **kwargs)


RAW = "<think>She wants tea. SECRET</think>\n\nI would love some tea, thank you. Milk?"


async def test_a_delivered_reply_streams_its_visible_text_only() -> None:
    streams = FakeStreams()
    model = ScriptedModel(RAW)
    result = await generator(model, streams=streams).generate(
        request(), job_id="j-1", attempt=1, timeout=5, progress=progress
    )

    assert model.streamed == [True]
    assert streams.writers == [("j-1", DELIVERY.lane)]
    assert streams.log[0] == ("restart", "")
    assert streams.log[-1] == ("end", "")
    assert streams.shown and not any("SECRET" in text or "<" in text for text in streams.shown)
    assert streams.shown[-1] == result.content == "I would love some tea, thank you. Milk?"
    assert result.streamed is True


@pytest.mark.parametrize(
    ("kwargs", "delivery"),
    [
        ({"settings": FixedSettings(resolved(streaming=(False, Source(Level.USER))))}, DELIVERY),
        ({}, None),  # an API caller: nobody shows it while it is written
    ],
)
async def test_no_stream_when_off_or_not_delivered(
    kwargs: dict[str, Any], delivery: Delivery | None
) -> None:
    streams = FakeStreams()
    model = ScriptedModel(RAW)
    result = await generator(model, streams=streams, **kwargs).generate(
        request(delivery), job_id="j-1", attempt=1, timeout=5, progress=progress
    )
    assert model.streamed == [False]
    assert streams.log == [] and result.streamed is False
    assert result.content == "I would love some tea, thank you. Milk?"


async def test_without_streams_nothing_streams() -> None:
    model = ScriptedModel(RAW)
    result = await generator(model).generate(
        request(), job_id="j-1", attempt=1, timeout=5, progress=progress
    )
    assert model.streamed == [False] and result.streamed is False


async def test_a_failed_attempt_closes_its_stream_without_an_end() -> None:
    streams = FakeStreams()
    error = ProviderError(ErrorCategory.SERVER_ERROR, "boom")
    model = ScriptedModel("Half a rep", error=error)
    with pytest.raises(ProviderError) as info:
        await generator(model, streams=streams).generate(
            request(), job_id="j-1", attempt=1, timeout=5, progress=progress
        )
    assert info.value is error
    assert streams.log[0] == ("restart", "") and streams.log[-1] == ("close", "")
    assert ("end", "") not in streams.log

    # The next attempt starts the text over.
    model.error = None
    await generator(model, streams=streams).generate(
        request(), job_id="j-1", attempt=2, timeout=5, progress=progress
    )
    second = streams.log[streams.log.index(("close", "")) + 1 :]
    assert second[0] == ("restart", "") and second[-1] == ("end", "")


async def test_a_broken_stream_never_fails_the_reply() -> None:
    streams = FakeStreams(fail_on="show")
    result = await generator(ScriptedModel(RAW), streams=streams).generate(
        request(), job_id="j-1", attempt=1, timeout=5, progress=progress
    )
    assert result.status == "completed" and result.streamed is True
    assert result.content == "I would love some tea, thank you. Milk?"


async def test_a_model_seen_prefilling_thinking_streams_none_of_it_next_time() -> None:
    streams = FakeStreams()
    model = ScriptedModel("Hmm, tea. SECRET\n</think>\n\nYes, tea please.")
    gen = generator(model, streams=streams)
    await gen.generate(request(), job_id="j-1", attempt=1, timeout=5, progress=progress)
    # The first time it cannot be told in advance; it is withdrawn when the tag arrives.
    assert streams.shown[-1] == "Yes, tea please."

    streams.log.clear()
    await gen.generate(request(), job_id="j-2", attempt=1, timeout=5, progress=progress)
    assert streams.shown and not any("SECRET" in text for text in streams.shown)
    assert streams.shown[-1] == "Yes, tea please."


async def test_inspect_fields_are_filled() -> None:
    settings = resolved(
        temperature=(0.9, Source(Level.CHARACTER_PRESET, preset="fast")),
        memory=(True, Source(Level.CHANNEL, inherited=True)),
    )
    memory = FakeMemory(["Alice likes tea. " * 30, "Alice has a cat."])
    result = await generator(
        ScriptedModel(RAW), settings=FixedSettings(settings), memory=memory
    ).generate(request(), job_id="j-1", attempt=1, timeout=5, progress=progress)

    assert result.provider == "openai"
    assert result.latency_ms is not None and result.latency_ms >= 0
    assert result.settings_used["temperature"] == "0.9"
    assert result.settings_sources["temperature"] == "character's preset fast"
    assert result.settings_used["streaming"] == "on"
    assert result.settings_sources["streaming"] == "built-in default"
    assert result.settings_sources["memory"] == "channel, from the parent channel"
    assert result.settings_used["top_p"] == "not set"
    assert set(result.settings_used) <= {
        "model", "preset", "temperature", "top_p", "max_tokens", "history_limit", "memory",
        "streaming", "voice_transcription", "regenerate_on_edit", "group_replies",
    }  # fmt: skip
    first, second = result.memories_used
    assert len(first) <= 200 and first.startswith("Alice likes tea.")
    assert second == "Alice has a cat."


class FakeMemory:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    async def recall(self, **_: Any) -> Any:
        records = [
            SimpleNamespace(record=SimpleNamespace(at=datetime.now(UTC), text=text))
            for text in self.texts
        ]
        return SimpleNamespace(memories=records, facts=[], prefs=SimpleNamespace(incognito=False))


# -- the real thing: litellm streaming from the fake server into a Redis reply stream ---------


async def test_a_reply_streams_through_redis_and_ends_as_the_result(
    fake_llm: FakeLLM, redis_client: Redis
) -> None:
    content = "<think>SECRET plan</think>\n\n" + " ".join(f"word{i}" for i in range(300))
    fake_llm.script(Step(content=content, chunk_size=7, reasoning="more SECRET"))
    streams = ReplyStreams(redis_client, announce=ResultLog(redis_client).announce_streaming)
    defaults = ModelDefaults("openai/fake-model", fake_llm.base_url, SecretStr("sk-test"))
    gen = Generator(LiteLLMProvider(), History(), defaults, streams=streams)

    result = await gen.generate(request(), job_id="j-9", attempt=1, timeout=10, progress=progress)

    pieces = await streams.read("j-9")
    text, ended = fold("", pieces)
    assert ended and text == result.content
    assert not any("SECRET" in piece.text for piece in pieces)
    assert result.streamed and result.thinking == "more SECRET\n\nSECRET plan"
