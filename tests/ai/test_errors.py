"""Provider failures land in the right category, with the right retry advice, and leak nothing."""

import pickle
import time
from email.utils import formatdate

import pytest
from pydantic import SecretStr

from tests.fixtures.fake_llm import FakeLLM, Step
from tzurot.ai import (
    RETRYABLE,
    ChatMessage,
    ErrorCategory,
    LiteLLMProvider,
    ModelTarget,
    ProviderError,
    redact,
)
from tzurot.ai.litellm_errors import classify

API_KEY = "sk-or-v1-4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a"


async def failure(fake: FakeLLM, *steps: Step, key: str = API_KEY) -> ProviderError:
    fake.script(*steps)
    target = ModelTarget(model="openai/fake-model", api_base=fake.base_url, api_key=SecretStr(key))
    with pytest.raises(ProviderError) as info:
        await LiteLLMProvider().complete(
            [ChatMessage(role="user", content="hi")],
            target,
            temperature=0.7,
            max_tokens=64,
            timeout=10,
        )
    return info.value


@pytest.mark.parametrize(
    ("status", "category", "retryable"),
    [
        (400, ErrorCategory.BAD_REQUEST, False),
        (401, ErrorCategory.AUTHENTICATION, False),
        (402, ErrorCategory.QUOTA_EXCEEDED, False),
        (403, ErrorCategory.CONTENT_POLICY, False),
        (404, ErrorCategory.MODEL_NOT_FOUND, False),
        (422, ErrorCategory.BAD_REQUEST, False),
        (429, ErrorCategory.RATE_LIMIT, True),
        (500, ErrorCategory.SERVER_ERROR, True),
        (502, ErrorCategory.SERVER_ERROR, True),
        (503, ErrorCategory.SERVER_ERROR, True),
    ],
)
async def test_status_codes_map_to_categories(
    fake_llm: FakeLLM, status: int, category: ErrorCategory, retryable: bool
) -> None:
    error = await failure(fake_llm, Step(status=status))

    assert error.category is category
    assert error.retryable is retryable
    assert error.status_code == status
    assert len(fake_llm.chat_calls) == 1


async def test_provider_message_is_shown_briefly(fake_llm: FakeLLM) -> None:
    error = await failure(fake_llm, Step(status=404, content="No endpoints found for fake-model."))

    assert "No endpoints found for fake-model." in error.message
    assert "litellm" not in error.message
    assert "OpenAIException" not in error.message


async def test_long_provider_bodies_are_cut(fake_llm: FakeLLM) -> None:
    error = await failure(fake_llm, Step(status=400, content="bad " * 2000))

    assert len(error.message) < 400


async def test_context_window_exceeded(fake_llm: FakeLLM) -> None:
    step = Step(
        status=400,
        content="This model's maximum context length is 8192 tokens. "
        "However, your messages resulted in 9001 tokens.",
    )
    error = await failure(fake_llm, step)

    assert error.category is ErrorCategory.CONTEXT_WINDOW
    assert not error.retryable


async def test_content_policy_400(fake_llm: FakeLLM) -> None:
    step = Step(status=400, content="Your request was rejected as a result of the safety system.")
    error = await failure(fake_llm, step)

    assert error.category is ErrorCategory.CONTENT_POLICY
    assert not error.retryable


async def test_exhausted_quota_on_429_is_not_retried(fake_llm: FakeLLM) -> None:
    step = Step(status=429, content="You exceeded your current quota, please check your plan.")
    error = await failure(fake_llm, step)

    assert error.category is ErrorCategory.QUOTA_EXCEEDED
    assert not error.retryable


async def test_retry_after_seconds(fake_llm: FakeLLM) -> None:
    error = await failure(fake_llm, Step(status=429, headers={"Retry-After": "7"}))

    assert error.category is ErrorCategory.RATE_LIMIT
    assert error.retry_after == 7


async def test_retry_after_http_date(fake_llm: FakeLLM) -> None:
    when = formatdate(time.time() + 120, usegmt=True)
    error = await failure(fake_llm, Step(status=429, headers={"Retry-After": when}))

    assert error.retry_after is not None
    assert 60 < error.retry_after <= 121


async def test_openai_style_reset_duration(fake_llm: FakeLLM) -> None:
    headers = {"x-ratelimit-reset-requests": "1m30s", "x-ratelimit-reset-tokens": "20ms"}
    error = await failure(fake_llm, Step(status=429, headers=headers))

    assert error.retry_after == 90


async def test_openrouter_style_reset_epoch_ms(fake_llm: FakeLLM) -> None:
    reset_ms = str(int((time.time() + 30) * 1000))
    error = await failure(fake_llm, Step(status=429, headers={"X-RateLimit-Reset": reset_ms}))

    assert error.retry_after is not None
    assert 0 < error.retry_after <= 31


async def test_retry_after_on_503(fake_llm: FakeLLM) -> None:
    error = await failure(fake_llm, Step(status=503, headers={"Retry-After": "3"}))

    assert error.category is ErrorCategory.SERVER_ERROR
    assert error.retry_after == 3


async def test_no_retry_after_without_headers(fake_llm: FakeLLM) -> None:
    error = await failure(fake_llm, Step(status=429))

    assert error.retry_after is None


@pytest.mark.parametrize("status", [400, 401, 403, 500])
async def test_api_key_never_appears_in_the_error(fake_llm: FakeLLM, status: int) -> None:
    echoed = f"Incorrect API key provided: {API_KEY}. Authorization: Bearer {API_KEY}"
    error = await failure(fake_llm, Step(status=status, content=echoed))

    for shown in (error.message, str(error), repr(error), str(error.args)):
        assert API_KEY not in shown
        assert API_KEY[:20] not in shown
    assert error.__cause__ is None
    assert error.__context__ is None


async def test_unusual_key_echoed_back_is_redacted(fake_llm: FakeLLM) -> None:
    key = "my-local-llm-password"
    error = await failure(fake_llm, Step(status=401, content=f"bad key {key}"), key=key)

    assert key not in error.message


def test_timeouts_from_asyncio() -> None:
    # asyncio.timeout() raises the builtin TimeoutError (asyncio.TimeoutError is an alias).
    assert classify(TimeoutError()).category is ErrorCategory.TIMEOUT


def test_connection_errors_are_network() -> None:
    error = classify(ConnectionRefusedError(111, "Connection refused"))
    assert error.category is ErrorCategory.NETWORK
    assert error.retryable


def test_unknown_local_failure_is_a_bad_request_and_not_retried() -> None:
    error = classify(ValueError("messages must not be empty"))
    assert error.category is ErrorCategory.BAD_REQUEST
    assert not error.retryable


def test_a_provider_error_passes_through_unchanged() -> None:
    original = ProviderError(ErrorCategory.RATE_LIMIT, "slow down", retry_after=2.0)
    assert classify(original) is original


def test_retryable_set_matches_the_rules() -> None:
    assert {c.value for c in RETRYABLE} == {
        "rate_limit",
        "server_error",
        "timeout",
        "network",
        "empty_response",
    }


def test_provider_error_survives_pickling() -> None:
    error = ProviderError(ErrorCategory.RATE_LIMIT, "slow down", status_code=429, retry_after=7.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.category, copy.message, copy.status_code, copy.retry_after) == (
        ErrorCategory.RATE_LIMIT,
        "slow down",
        429,
        7.0,
    )


def test_str_names_the_category() -> None:
    assert str(ProviderError(ErrorCategory.TIMEOUT)).startswith("timeout: ")


@pytest.mark.parametrize(
    "text",
    [
        "key sk-proj-abcdefghijklmnop1234 rejected",
        "Incorrect API key provided: sk-secr*****6789",
        "header Authorization: Bearer abc.def-ghi",
        "api_key=hunter2hunter2 was refused",
        "token AIzaSyA1234567890abcdefghijklmnop is invalid",
        "key 0123456789abcdef0123456789abcdef0123 unknown",
    ],
)
def test_redact_removes_secret_shapes(text: str) -> None:
    cleaned = redact(text)
    assert "[redacted]" in cleaned
    for secret in (
        "abcdefghijklmnop1234",
        "6789",
        "abc.def",
        "hunter2",
        "AIzaSy",
        "0123456789abcdef",
    ):
        assert secret not in cleaned


def test_redact_keeps_ordinary_text() -> None:
    text = "This model's maximum context length is 8192 tokens; max_tokens=4096."
    assert redact(text) == text
