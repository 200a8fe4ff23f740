"""Whose credentials a generation uses, key checks, and the worker's settings wiring."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from tests.fixtures.fake_llm import FakeLLM, Step
from tzurot.ai.contracts import GenerationFailure, GenerationRequest
from tzurot.ai.credentials import CredentialResolver, provider_of
from tzurot.ai.errors import ErrorCategory, ProviderError
from tzurot.ai.generation import Generator, ModelDefaults
from tzurot.ai.key_check import KeyChecker, KeyStatus, UnknownProvider
from tzurot.ai.models import ChatMessage, Completion, ModelTarget
from tzurot.ai.provider import LiteLLMProvider
from tzurot.conversations.models import ChatTurn
from tzurot.infra.secretbox import SecretBox
from tzurot.personalities.models import Personality
from tzurot.redaction import redactor
from tzurot.settings.apikeys import BOX_PURPOSE, ApiKeyVault

USER_KEY = "sk-user-0123456789abcdefghijklmn"
OPERATOR_KEY = "sk-operator-0123456789abcdefghij"
BASE = "http://127.0.0.1:9/v1"


@pytest.fixture
def vault(redis_client: Redis) -> ApiKeyVault:
    return ApiKeyVault(redis_client, SecretBox("k" * 40, BOX_PURPOSE))


def resolver(vault: ApiKeyVault | None, **kwargs: Any) -> CredentialResolver:
    options: dict[str, Any] = {
        "default_model": "openai/fake-model",
        "api_base": BASE,
        "api_key": SecretStr(OPERATOR_KEY),
        "environ": {},
    }
    options.update(kwargs)
    return CredentialResolver(vault, **options)


def test_provider_of() -> None:
    assert provider_of("openrouter/anthropic/claude-haiku-4.5") == "openrouter"
    assert provider_of("openai/fake-model") == "openai"
    assert provider_of("anthropic/claude-3-5-haiku") == "anthropic"
    assert provider_of("gpt-4o") == "openai"
    assert provider_of("claude-3-opus") == "anthropic"


async def test_user_key_first_then_operator(vault: ApiKeyVault) -> None:
    credentials = resolver(vault)
    operator = await credentials.resolve("u1", "openai/fake-model")
    assert operator.source == "operator"
    assert operator.target.api_key is not None
    assert operator.target.api_key.get_secret_value() == OPERATOR_KEY
    assert operator.target.api_base == BASE

    await vault.set("u1", "openai", USER_KEY)
    mine = await credentials.resolve("u1", "openai/fake-model")
    assert mine.source == "user" and mine.uses_user_key and mine.provider == "openai"
    assert mine.target.api_key is not None
    assert mine.target.api_key.get_secret_value() == USER_KEY
    assert mine.target.api_base == BASE  # LLM_API_BASE is provider openai
    assert USER_KEY not in repr(mine)
    assert redactor.redact(f"x {USER_KEY} y") == "x [redacted] y"  # registered for the call
    # Someone else still gets the operator's.
    assert (await credentials.resolve("u2", "openai/fake-model")).source == "operator"


async def test_a_user_key_for_another_provider_goes_direct(vault: ApiKeyVault) -> None:
    await vault.set("u1", "openrouter", USER_KEY)
    found = await resolver(vault).resolve("u1", "openrouter/meta/llama")
    assert found.source == "user" and found.target.api_base is None


async def test_operator_keys_from_the_environment() -> None:
    env = {"ANTHROPIC_API_KEY": "x" * 20, "TOGETHERAI_API_KEY": "y" * 20}
    credentials = resolver(None, environ=env)
    found = await credentials.resolve("u1", "anthropic/claude-3-5-haiku")
    assert found.source == "operator"
    assert found.target == ModelTarget(model="anthropic/claude-3-5-haiku")  # litellm reads env
    assert (await credentials.resolve("u1", "together_ai/x/y")).source == "operator"
    assert (await credentials.resolve("u1", "ollama/llama3")).source == "operator"  # keyless


async def test_llm_api_key_without_base_goes_with_the_default_model() -> None:
    credentials = resolver(None, api_base=None, default_model="openrouter/a/b")
    found = await credentials.resolve("u1", None)
    assert found.source == "operator" and found.target.model == "openrouter/a/b"
    assert found.target.api_key is not None
    with pytest.raises(ProviderError) as caught:
        await credentials.resolve("u1", "anthropic/claude-3-5-haiku")
    assert caught.value.category is ErrorCategory.NO_API_KEY


async def test_guest_mode_then_no_key(vault: ApiKeyVault) -> None:
    guests = ("openai/free-one", "openai/free-two")
    credentials = resolver(vault, guest_models=guests)
    found = await credentials.resolve("u1", "anthropic/claude-3-5-haiku")
    assert found.source == "guest" and found.target.model == "openai/free-one"
    assert found.wanted_model == "anthropic/claude-3-5-haiku"
    assert found.target.api_base == BASE  # the guest model runs on the operator's endpoint
    # A wanted model that is a guest model stays.
    assert (await credentials.resolve("u1", "openai/free-two")).target.model == "openai/free-two"
    # A user key for the wanted provider beats guest mode.
    await vault.set("u1", "anthropic", USER_KEY)
    assert (await credentials.resolve("u1", "anthropic/claude-3-5-haiku")).source == "user"

    with pytest.raises(ProviderError) as caught:
        await resolver(vault).resolve("u2", "anthropic/claude-3-5-haiku")
    assert caught.value.category is ErrorCategory.NO_API_KEY
    assert not caught.value.retryable
    assert "/settings apikey set" in caught.value.message


async def test_without_encryption_key_user_keys_are_not_read(redis_client: Redis) -> None:
    sealed = ApiKeyVault(redis_client, SecretBox("k" * 40, BOX_PURPOSE))
    await sealed.set("u1", "openai", USER_KEY)
    found = await resolver(ApiKeyVault(redis_client, None)).resolve("u1", "openai/fake-model")
    assert found.source == "operator"


# -- key checks ------------------------------------------------------------------------------


async def test_key_check_against_a_model_list(fake_llm: FakeLLM) -> None:
    fake_llm.accepted_keys = {USER_KEY}
    checker = KeyChecker(api_base=fake_llm.base_url)
    good = await checker.check("openai", USER_KEY)
    assert good.status is KeyStatus.VALID and good.valid
    bad = await checker.check("openai", "sk-wrong-0123456789abcdefgh")
    assert bad.status is KeyStatus.REJECTED
    assert "wrong" not in bad.message and "Incorrect" not in bad.message
    assert fake_llm.keys_used("/models") == [USER_KEY, "sk-wrong-0123456789abcdefgh"]
    assert all(r.path == "/v1/models" for r in fake_llm.model_list_calls)


async def test_key_check_anthropic_and_openrouter_headers(fake_llm: FakeLLM) -> None:
    checker = KeyChecker(
        overrides={
            "anthropic": fake_llm.base_url + "/models",
            "openrouter": fake_llm.base_url + "/models",
        }
    )
    assert (await checker.check("anthropic", USER_KEY)).valid
    call = fake_llm.requests[-1]
    assert call.headers.get("x-api-key") == USER_KEY
    assert call.headers.get("anthropic-version")
    assert "Authorization" not in call.headers
    assert (await checker.check("openrouter", USER_KEY)).valid
    assert fake_llm.requests[-1].key == USER_KEY


async def test_key_check_cannot_tell_on_5xx_or_network_errors(fake_llm: FakeLLM) -> None:
    async def broken(_request: Any) -> Any:
        from aiohttp import web

        return web.Response(status=503)

    unreachable = KeyChecker(api_base="http://127.0.0.1:9/v1", timeout=2)
    result = await unreachable.check("openai", USER_KEY)
    assert result.status is KeyStatus.UNCHECKED and "try again" in result.message
    assert USER_KEY not in result.message

    from aiohttp import web

    app = web.Application()
    app.router.add_get("/v1/models", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        result = await KeyChecker(api_base=f"http://127.0.0.1:{port}/v1").check("openai", USER_KEY)
        assert result.status is KeyStatus.UNCHECKED and "503" in result.message
    finally:
        await runner.cleanup()


async def test_unknown_provider_is_refused() -> None:
    with pytest.raises(UnknownProvider, match="openrouter"):
        await KeyChecker().check("not-a-provider", USER_KEY)
    assert not KeyChecker().supports("bedrock")


# -- the worker: settings cascade, credentials, a refused user key ---------------------------


@dataclass
class Resolved:
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    max_tokens: int | None = None
    context_window: int | None = None
    history_limit: int | None = None
    memory: bool = True
    streaming: bool = True
    voice_transcription: bool = True


class FixedSettings:
    def __init__(self, resolved: Resolved) -> None:
        self.resolved = resolved
        self.calls: list[dict[str, Any]] = []

    async def resolve(self, personality: Personality, **where: Any) -> Resolved:
        self.calls.append({"personality": personality.slug, **where})
        return self.resolved


class RecordingHistory:
    def __init__(self) -> None:
        self.limits: list[int] = []

    async def exchange(self, channel_id: str, turn: ChatTurn, limit: int) -> list[ChatTurn]:
        self.limits.append(limit)
        return []

    async def append(self, channel_id: str, turn: ChatTurn) -> None:
        return None


class RecordingModel:
    def __init__(self, error: ProviderError | None = None) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

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
        self.calls.append(
            {"target": target, "temperature": temperature, "max_tokens": max_tokens, **sampling}
        )
        if self.error is not None:
            raise self.error
        return Completion(content="hi", model=target.model)


def request(user_id: str = "u1") -> GenerationRequest:
    personality = Personality(name="Lilith", system_prompt="You are Lilith.")
    return GenerationRequest(
        request_id="r-1",
        personality=personality,
        message="hello",
        user_id=user_id,
        channel_id="c-1",
        parent_channel_id="p-1",
    )


async def progress(_percent: int) -> None:
    return None


def generator(model: RecordingModel, **kwargs: Any) -> tuple[Generator, RecordingHistory]:
    history = RecordingHistory()
    defaults = ModelDefaults("openai/fake-model", BASE, SecretStr(OPERATOR_KEY))
    return Generator(model, history, defaults, history_limit=50, **kwargs), history


async def test_generation_uses_the_resolved_settings(vault: ApiKeyVault) -> None:
    settings = FixedSettings(
        Resolved(
            model="openai/chosen", temperature=1.3, top_p=0.9, presence_penalty=0.5,
            max_tokens=321, context_window=8192, history_limit=7,
        )
    )  # fmt: skip
    model = RecordingModel()
    gen, history = generator(model, settings=settings, credentials=resolver(vault), vault=vault)
    result = await gen.generate(request(), job_id="j-1", attempt=1, timeout=5, progress=progress)
    assert result.status == "completed"
    assert settings.calls == [
        {"personality": "lilith", "user_id": "u1", "channel_id": "c-1", "parent_channel_id": "p-1"}
    ]
    call = model.calls[0]
    assert call["target"].model == "openai/chosen"
    assert (call["temperature"], call["max_tokens"]) == (1.3, 321)
    assert call["top_p"] == 0.9 and call["presence_penalty"] == 0.5
    assert "frequency_penalty" not in call  # unset: not sent
    assert history.limits == [7]


async def test_without_a_resolver_the_personality_values_apply() -> None:
    model = RecordingModel()
    gen, history = generator(model)
    await gen.generate(request(), job_id="j-1", attempt=1, timeout=5, progress=progress)
    call = model.calls[0]
    assert call["target"].model == "openai/fake-model" and call["temperature"] == 0.7
    assert set(call) == {"target", "temperature", "max_tokens"}
    assert history.limits == [50]


async def test_a_refused_user_key_ends_the_job_and_is_told_once(vault: ApiKeyVault) -> None:
    await vault.set("u1", "openai", USER_KEY)
    model = RecordingModel(ProviderError(ErrorCategory.AUTHENTICATION, "Incorrect API key"))
    gen, _ = generator(
        model, settings=FixedSettings(Resolved()), credentials=resolver(vault), vault=vault
    )

    notices = []
    for job in ("j-1", "j-2"):
        with pytest.raises(ProviderError) as caught:
            await gen.generate(request(), job_id=job, attempt=1, timeout=5, progress=progress)
        error = caught.value
        assert error.category is ErrorCategory.USER_KEY_REJECTED and not error.retryable
        assert USER_KEY not in error.message and "Incorrect" not in error.message
        failure = GenerationFailure(category=error.category, message=error.message)
        result = await gen.failed(request(), job_id=job, attempts=1, failure=failure)
        assert result.error_message is not None and "/settings apikey set" in result.error_message
        assert USER_KEY not in result.model_dump_json()
        notices.append(result.private_notice)
    assert notices[0] is not None and "openai" in notices[0] and USER_KEY not in notices[0]
    assert notices[1] is None  # once
    assert [k.rejected for k in await vault.browse("u1")] == [True]
    # A new key clears the flag: the next refusal is told again.
    await vault.set("u1", "openai", USER_KEY + "x")
    with pytest.raises(ProviderError):
        await gen.generate(request(), job_id="j-3", attempt=1, timeout=5, progress=progress)
    failure = GenerationFailure(category=ErrorCategory.USER_KEY_REJECTED, message="x")
    again = await gen.failed(request(), job_id="j-3", attempts=1, failure=failure)
    assert again.private_notice is not None


async def test_the_operators_refused_key_is_an_ordinary_failure(vault: ApiKeyVault) -> None:
    model = RecordingModel(ProviderError(ErrorCategory.AUTHENTICATION))
    gen, _ = generator(
        model, settings=FixedSettings(Resolved()), credentials=resolver(vault), vault=vault
    )
    with pytest.raises(ProviderError) as caught:
        await gen.generate(request(), job_id="j-1", attempt=1, timeout=5, progress=progress)
    assert caught.value.category is ErrorCategory.AUTHENTICATION


async def test_provider_sends_only_the_sampling_values_that_are_set(fake_llm: FakeLLM) -> None:
    provider = LiteLLMProvider()
    target = ModelTarget(
        model="openai/fake-model", api_base=fake_llm.base_url, api_key=SecretStr(USER_KEY)
    )
    messages = [ChatMessage(role="user", content="hi")]
    await provider.complete(messages, target, temperature=0.5, max_tokens=10, timeout=10, top_p=0.8)
    body = fake_llm.chat_calls[-1].json
    assert body is not None and body["top_p"] == 0.8
    assert "frequency_penalty" not in body and "presence_penalty" not in body
    assert fake_llm.chat_calls[-1].key == USER_KEY


async def test_fake_llm_refuses_unknown_keys_like_openai(fake_llm: FakeLLM) -> None:
    fake_llm.accepted_keys = {OPERATOR_KEY}
    fake_llm.script(Step(content="scripted"))
    provider = LiteLLMProvider()
    target = ModelTarget(
        model="openai/fake-model", api_base=fake_llm.base_url, api_key=SecretStr(USER_KEY)
    )
    with pytest.raises(ProviderError) as caught:
        await provider.complete(
            [ChatMessage(role="user", content="hi")],
            target,
            temperature=0.5,
            max_tokens=10,
            timeout=10,
        )
    assert caught.value.category is ErrorCategory.AUTHENTICATION
    ok = target.model_copy(update={"api_key": SecretStr(OPERATOR_KEY)})
    reply = await provider.complete(
        [ChatMessage(role="user", content="hi")], ok, temperature=0.5, max_tokens=10, timeout=10
    )
    assert reply.content == "scripted"  # the refused call consumed no step
    assert fake_llm.keys_used() == [USER_KEY, OPERATOR_KEY]
