"""LiteLLMProvider against the fake OpenAI-compatible server, with the real litellm client."""

import aiohttp
import litellm
import pytest
from pydantic import SecretStr

from tests.fixtures.fake_llm import FakeLLM, Step
from tests.fixtures.ports import free_port
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


def target_for(fake: FakeLLM, key: str = API_KEY) -> ModelTarget:
    return ModelTarget(model="openai/fake-model", api_base=fake.base_url, api_key=SecretStr(key))


async def complete(fake: FakeLLM, *, timeout: float = 10.0, key: str = API_KEY) -> Completion:
    return await LiteLLMProvider().complete(
        MESSAGES, target_for(fake, key), temperature=0.7, max_tokens=256, timeout=timeout
    )


async def fail(fake: FakeLLM, **kwargs: float) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await complete(fake, **kwargs)
    return info.value


async def test_a_reply_comes_back_as_a_completion(fake_llm: FakeLLM) -> None:
    completion = await complete(fake_llm)

    assert completion.content == "reply to: Alice: hello"
    assert completion.thinking is None
    assert completion.model.endswith("fake-model")
    assert completion.finish_reason == "stop"
    assert completion.prompt_tokens is not None and completion.prompt_tokens > 0
    assert completion.completion_tokens is not None and completion.completion_tokens > 0


async def test_the_request_carries_messages_settings_and_key(fake_llm: FakeLLM) -> None:
    await complete(fake_llm)

    [call] = fake_llm.chat_calls
    assert call.json is not None
    assert call.json["model"] == "fake-model"
    assert call.json["messages"] == [m.wire() for m in MESSAGES]
    assert call.json["temperature"] == 0.7
    assert call.json["max_tokens"] == 256
    assert not call.json.get("stream")
    assert not any("log" in key for key in call.json)  # `no-log` is litellm's, never sent
    assert call.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_no_litellm_callback_could_see_a_prompt(fake_llm: FakeLLM) -> None:
    # configure_litellm skips litellm's redaction copies because nothing is there to read them.
    provider = LiteLLMProvider()
    await provider.warm_up()
    await complete(fake_llm)

    for name in ("callbacks", "input_callback", "success_callback", "failure_callback"):
        assert getattr(litellm, name) == [], name
    assert litellm.turn_off_message_logging is False
    assert litellm.modify_params is False


async def test_warm_up_is_idempotent_and_calls_work_after_it(fake_llm: FakeLLM) -> None:
    provider = LiteLLMProvider()
    await provider.warm_up()
    await provider.warm_up()

    completion = await provider.complete(
        MESSAGES, target_for(fake_llm), temperature=0.7, max_tokens=256, timeout=10
    )

    assert completion.content == "reply to: Alice: hello"


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_one_http_call_per_complete_even_when_retryable(
    fake_llm: FakeLLM, status: int
) -> None:
    fake_llm.script(Step(status=status), Step(status=status), Step(status=status))

    error = await fail(fake_llm)

    assert error.retryable
    assert len(fake_llm.chat_calls) == 1


async def test_422_is_not_resent(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(status=422), Step(status=422))

    error = await fail(fake_llm)

    assert error.category is ErrorCategory.BAD_REQUEST
    assert len(fake_llm.chat_calls) == 1


async def test_parameters_a_model_lacks_are_dropped(fake_llm: FakeLLM) -> None:
    # litellm refuses temperature=0.7 for o-series models before sending anything.
    target = ModelTarget(model="openai/o3", api_base=fake_llm.base_url, api_key=SecretStr(API_KEY))

    completion = await LiteLLMProvider().complete(
        MESSAGES, target, temperature=0.7, max_tokens=256, timeout=10
    )

    assert completion.content == "reply to: Alice: hello"
    [call] = fake_llm.chat_calls
    assert call.json is not None
    assert "temperature" not in call.json


async def test_slow_server_is_a_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(delay=30))

    error = await fail(fake_llm, timeout=0.5)

    assert error.category is ErrorCategory.TIMEOUT
    assert error.retryable
    assert len(fake_llm.chat_calls) == 1


async def test_hanging_server_is_a_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(hang=True))

    error = await fail(fake_llm, timeout=0.5)

    assert error.category is ErrorCategory.TIMEOUT


async def test_closed_port_is_a_network_error() -> None:
    fake = FakeLLM()
    fake.port = free_port()  # nothing listens there

    error = await fail(fake)

    assert error.category is ErrorCategory.NETWORK
    assert error.retryable
    assert error.status_code is None


@pytest.mark.parametrize("content", ["", "   \n", "<think>only thoughts</think>"])
async def test_empty_reply_is_an_empty_response(fake_llm: FakeLLM, content: str) -> None:
    fake_llm.script(Step(content=content))

    error = await fail(fake_llm)

    assert error.category is ErrorCategory.EMPTY_RESPONSE
    assert error.retryable


@pytest.mark.parametrize(
    "step",
    [
        Step(body="<html><body>502 Bad Gateway</body></html>"),
        Step(body='{"id": "x", "choices": [', headers={"Content-Type": "application/json"}),
        Step(status=502, body="<html><body>nginx: upstream unavailable</body></html>"),
        Step(body="x" * 10_000),
    ],
    ids=["html-200", "truncated-json", "html-502", "huge-garbage"],
)
async def test_garbage_bodies_are_server_errors(fake_llm: FakeLLM, step: Step) -> None:
    fake_llm.script(step)

    error = await fail(fake_llm)

    assert error.category is ErrorCategory.SERVER_ERROR
    assert error.retryable
    assert len(error.message) < 400


async def test_thinking_tags_are_stripped_and_kept(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(content="<think>She asked about tea.</think>\n\nI love tea!"))

    completion = await complete(fake_llm)

    assert completion.content == "I love tea!"
    assert completion.thinking == "She asked about tea."


async def test_reasoning_content_joins_the_thinking(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(content="<thinking>second</thinking>Answer.", reasoning="first"))

    completion = await complete(fake_llm)

    assert completion.content == "Answer."
    assert completion.thinking == "first\n\nsecond"


async def test_long_reply_comes_back_whole(fake_llm: FakeLLM) -> None:
    long_reply = "word " * 5000
    fake_llm.script(Step(content=long_reply, finish_reason="length"))

    completion = await complete(fake_llm)

    assert completion.content == long_reply.strip()
    assert completion.finish_reason == "length"


async def test_the_fake_streams_to_litellm(fake_llm: FakeLLM) -> None:
    # Benchmarks and other modules stream through the same fake; prove the SSE shape is right.
    fake_llm.script(Step(content="a streamed reply that spans several chunks", reasoning="hm"))

    stream = await litellm.acompletion(
        model="openai/fake-model",
        api_base=fake_llm.base_url,
        api_key=API_KEY,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        num_retries=0,
        max_retries=0,
    )
    parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]

    assert "".join(parts) == "a streamed reply that spans several chunks"


async def test_latency_applies_to_every_request(fake_llm: FakeLLM) -> None:
    fake_llm.latency = 30

    error = await fail(fake_llm, timeout=0.5)

    assert error.category is ErrorCategory.TIMEOUT


async def test_the_fake_lists_models_and_answers_errors_openai_style(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(status=429, headers={"Retry-After": "7"}))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake_llm.base_url}/models") as response:
            models = await response.json()
        async with session.post(f"{fake_llm.base_url}/chat/completions", json={}) as response:
            status, retry_after, body = (
                response.status,
                response.headers["Retry-After"],
                await response.json(),
            )

    assert [m["id"] for m in models["data"]] == ["fake-model"]
    assert (status, retry_after) == (429, "7")
    assert set(body["error"]) == {"message", "type", "code"}
    assert [r.path for r in fake_llm.requests] == ["/v1/models", "/v1/chat/completions"]
