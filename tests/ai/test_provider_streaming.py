"""Streamed model calls: LiteLLMProvider with `on_text`, against the fake server, real litellm."""

import pytest
from pydantic import SecretStr

from tests.fixtures.fake_llm import FakeLLM, Step
from tzurot.ai import (
    ChatMessage,
    Completion,
    ErrorCategory,
    LiteLLMProvider,
    ModelTarget,
    ProviderError,
)

API_KEY = "sk-test-0123456789abcdefSECRET"
MESSAGES = [
    ChatMessage(role="system", content="You are Lilith."),
    ChatMessage(role="user", content="Alice: hello"),
]


class Seen:
    """What `on_text` was given, in order."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, raw: str) -> None:
        self.texts.append(raw)


async def complete(
    fake: FakeLLM, on_text: Seen | None = None, *, timeout: float = 10.0
) -> Completion:
    target = ModelTarget(
        model="openai/fake-model", api_base=fake.base_url, api_key=SecretStr(API_KEY)
    )
    return await LiteLLMProvider().complete(
        MESSAGES, target, temperature=0.7, max_tokens=256, timeout=timeout, on_text=on_text
    )


async def fail(fake: FakeLLM, **kwargs: float) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await complete(fake, Seen(), **kwargs)
    return info.value


SCRIPTS = [
    Step(),  # the default reply
    Step(content="<think>She asked about tea.</think>\n\nI love tea!", chunk_size=3),
    Step(content="<thinking>second</thinking>Answer.", reasoning="first", chunk_size=5),
    Step(content="Let me consider.\n</think>\n\nThe answer is 4.", chunk_size=1),
    Step(content="Use `<think>` tags like this.", chunk_size=7, finish_reason="length"),
    # Varied text: litellm fails a stream whose last 100 deltas are all the same.
    Step(content=" ".join(f"word{i}" for i in range(1200)), chunk_size=40),
]


@pytest.mark.parametrize("step", SCRIPTS)
async def test_a_streamed_reply_is_the_same_completion(fake_llm: FakeLLM, step: Step) -> None:
    fake_llm.script(step, step)
    plain = await complete(fake_llm)
    seen = Seen()
    streamed = await complete(fake_llm, seen)

    assert streamed == plain
    [call] = fake_llm.streams
    assert call.call.json is not None and call.call.json["stream"] is True
    assert call.call.json["stream_options"] == {"include_usage": True}
    # on_text had all the raw content so far after each delta, ending with all of it.
    assert seen.texts == ["".join(call.deltas[: i + 1]) for i in range(len(call.deltas))]


async def test_usage_is_read_from_the_stream(fake_llm: FakeLLM) -> None:
    completion = await complete(fake_llm, Seen())
    assert completion.prompt_tokens is not None and completion.prompt_tokens > 0
    assert completion.completion_tokens is not None and completion.completion_tokens > 0
    assert completion.finish_reason == "stop"


async def test_reasoning_never_reaches_on_text(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(content="Hello there.", reasoning="private plan " * 20, chunk_size=4))
    seen = Seen()
    completion = await complete(fake_llm, seen)

    assert completion.content == "Hello there."
    assert completion.thinking == ("private plan " * 20).strip()
    assert seen.texts and not any("private" in text for text in seen.texts)
    assert fake_llm.streams[0].first_token_at is not None


@pytest.mark.parametrize(
    ("step", "category"),
    [
        (Step(content="Hello world, a reply.", chunk_size=4, fail_after=2), "server_error"),
        (
            Step(content="Hello world, a reply.", chunk_size=4, fail_after=2, fail_status=429),
            "rate_limit",
        ),
        (
            Step(content="Hello world, a reply.", chunk_size=4, fail_after=2, fail_with="cut"),
            "network",
        ),
        (Step(content="All of it.", fail_after=99, fail_with="cut"), "network"),
    ],
)
async def test_a_failure_mid_stream_is_classified(
    fake_llm: FakeLLM, step: Step, category: str
) -> None:
    fake_llm.script(step)
    seen = Seen()
    with pytest.raises(ProviderError) as info:
        await complete(fake_llm, seen)

    error = info.value
    assert error.category == ErrorCategory(category)
    assert seen.texts  # some text had arrived before it failed
    for text in (str(error), repr(error), error.message):
        assert API_KEY not in text and "SECRET" not in text
    assert error.__context__ is None and error.__cause__ is None
    assert len(fake_llm.chat_calls) == 1  # litellm did not retry


async def test_the_whole_stream_sits_inside_the_timeout(fake_llm: FakeLLM) -> None:
    # Each delta comes quickly enough; all of them do not.
    fake_llm.script(Step(content="slow words " * 40, chunk_size=4, chunk_delay=0.05))
    seen = Seen()
    with pytest.raises(ProviderError) as info:
        await complete(fake_llm, seen, timeout=0.5)
    assert info.value.category == ErrorCategory.TIMEOUT
    assert seen.texts  # it was streaming when the time ran out


async def test_a_slow_first_token_is_a_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(content="late", first_token_delay=5))
    error = await fail(fake_llm, timeout=0.5)
    assert error.category == ErrorCategory.TIMEOUT


async def test_a_streamed_reply_of_only_thinking_is_empty(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(content="<think>nothing to say</think>  \n", chunk_size=3))
    error = await fail(fake_llm)
    assert error.category == ErrorCategory.EMPTY_RESPONSE


async def test_a_failing_on_text_is_the_callers_error_not_the_models(fake_llm: FakeLLM) -> None:
    class Broken(Exception):
        pass

    async def on_text(_raw: str) -> None:
        raise Broken("the stream's redis is gone")

    target = ModelTarget(
        model="openai/fake-model", api_base=fake_llm.base_url, api_key=SecretStr(API_KEY)
    )
    with pytest.raises(Broken):
        await LiteLLMProvider().complete(
            MESSAGES, target, temperature=0.7, max_tokens=64, timeout=10, on_text=on_text
        )
    # The connection was given back: the next call is served normally.
    assert (await complete(fake_llm, Seen())).content == "reply to: Alice: hello"
