"""media.py against the fake LLM for real (litellm over loopback): the vision chain and
transcription, provider garbage, secrets kept out of errors; and the fake's own embeddings."""

from __future__ import annotations

import base64
import math
import struct

import aiohttp
import pytest

from tests.attachments import samples
from tests.fixtures.fake_llm import EMBEDDING_DIM, INAUDIBLE, FakeLLM, Step, fake_embedding
from tzurot.ai._litellm import load_litellm
from tzurot.ai.errors import ErrorCategory, ProviderError
from tzurot.ai.models import ModelTarget
from tzurot.attachments.media import (
    MAX_DESCRIPTION_CHARS,
    data_url,
    describe_image,
    transcribe_audio,
)
from tzurot.attachments.models import MediaError

KEY = "sk-media-test-0123456789abcdef0123456789"
CHAIN = ["openai/vision-a", "openai/vision-b"]


async def describe(
    llm: FakeLLM, models: list[str | ModelTarget] | None = None, **kw: object
) -> str:
    options: dict[str, object] = {"api_base": llm.base_url, "api_key": KEY, "timeout": 5.0}
    options.update(kw)
    return await describe_image(
        samples.png(),
        "image/png",
        models=models or CHAIN,
        **options,  # type: ignore[arg-type]
    )


async def test_vision_chain_falls_through_to_the_next_model(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(status=500), Step(content="A grey cat on a red mat."))
    assert await describe(fake_llm) == "A grey cat on a red mat."
    calls = fake_llm.chat_calls
    assert [c.model for c in calls] == ["vision-a", "vision-b"]  # one attempt each
    assert calls[1].images == [data_url(samples.png(), "image/png")]
    assert calls[1].images[0].startswith("data:image/png;base64,")
    assert all(c.key == KEY for c in calls)


async def test_a_hanging_model_times_out_and_the_next_answers(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(hang=True), Step(content="A dog."))
    assert await describe(fake_llm, timeout=0.5) == "A dog."


async def test_model_targets_bring_their_own_endpoint(fake_llm: FakeLLM) -> None:
    async with FakeLLM() as other:
        other.script(Step(content="From the other endpoint."))
        target = ModelTarget(model="openai/own", api_base=other.base_url)
        fake_llm.script(Step(status=503))
        assert await describe(fake_llm, ["openai/first", target]) == "From the other endpoint."
        assert [c.model for c in other.chat_calls] == ["own"]
        assert other.chat_calls[0].key == KEY  # the shared key when the target has none


async def test_every_model_failing_raises_a_retryable_error_first(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(status=500), Step(status=400))
    with pytest.raises(ProviderError) as caught:
        await describe(fake_llm)
    assert caught.value.category is ErrorCategory.SERVER_ERROR
    assert caught.value.retryable
    assert caught.value.__context__ is None and caught.value.__cause__ is None

    fake_llm.script(Step(status=404), Step(status=400))
    with pytest.raises(ProviderError) as caught:
        await describe(fake_llm)
    assert caught.value.category is ErrorCategory.BAD_REQUEST  # the last one
    assert not caught.value.retryable


async def test_the_key_never_reaches_the_error() -> None:
    async with FakeLLM(accepted_keys={"sk-the-right-one-000000000000"}) as llm:
        with pytest.raises(ProviderError) as caught:
            await describe(llm, ["openai/vision-a"])
    assert caught.value.category is ErrorCategory.AUTHENTICATION
    for text in (str(caught.value), repr(caught.value), caught.value.message):
        assert KEY not in text and KEY[-12:] not in text


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic, about the non-string content
@pytest.mark.parametrize(
    ("step", "message"),
    [
        (Step(content=""), "empty description"),
        (Step(content="<think>just thinking</think>   "), "empty description"),
        (Step(body='{"choices": [{"message": {"content": 42}}]}'), None),
        (Step(body="<html>gateway error</html>"), None),
    ],
)
async def test_provider_garbage_is_a_clear_error(
    fake_llm: FakeLLM, step: Step, message: str | None
) -> None:
    fake_llm.script(step)
    with pytest.raises(ProviderError, match=message):
        await describe(fake_llm, ["openai/vision-a"])


async def test_long_descriptions_are_capped_and_thinking_dropped(fake_llm: FakeLLM) -> None:
    fake_llm.script(Step(content="<think>hmm</think>" + "word " * 5000))
    text = await describe(fake_llm, ["openai/vision-a"])
    assert len(text) <= MAX_DESCRIPTION_CHARS and text.endswith("…")
    assert "hmm" not in text


async def test_no_vision_model_configured() -> None:
    with pytest.raises(MediaError, match="no vision model"):
        await describe_image(samples.png(), "image/png", models=[])


# --- transcription -----------------------------------------------------------------------------


async def transcribe(llm: FakeLLM, data: bytes, filename: str = "audio.ogg") -> str:
    return await transcribe_audio(
        data, filename, model="openai/whisper-1", api_base=llm.base_url, api_key=KEY, timeout=5
    )


async def test_transcription(fake_llm: FakeLLM) -> None:
    data = samples.ogg_opus("hello from a voice message")
    assert await transcribe(fake_llm, data) == "hello from a voice message"
    fake_llm.transcripts.append("a scripted transcript")
    assert await transcribe(fake_llm, data) == "a scripted transcript"
    assert await transcribe(fake_llm, samples.mp3(), "audio.mp3") == INAUDIBLE
    first = fake_llm.transcription_calls[0]
    assert (first.model, first.filename, first.size, first.key) == (
        "whisper-1", "audio.ogg", len(data), KEY,
    )  # fmt: skip
    assert first.fields.get("response_format") == "json"


async def test_transcription_failures(fake_llm: FakeLLM) -> None:
    fake_llm.fail_transcriptions(1, status=429)
    with pytest.raises(ProviderError) as caught:
        await transcribe(fake_llm, samples.ogg_opus("x"))
    assert caught.value.category is ErrorCategory.RATE_LIMIT and caught.value.retryable
    assert len(fake_llm.transcription_calls) == 1  # no retries inside litellm or the SDK
    assert KEY not in str(caught.value)

    fake_llm.transcripts.append("   ")
    with pytest.raises(MediaError, match="no speech"):
        await transcribe(fake_llm, samples.ogg_opus())

    fake_llm.transcripts.append("long " * 10_000)
    assert len(await transcribe(fake_llm, samples.ogg_opus())) <= 20_000


# --- the fake's embeddings ---------------------------------------------------------------------


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_fake_embeddings_through_litellm(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    litellm = load_litellm()
    # litellm 1.110's OpenAI embedding path does `max_retries or DEFAULT_MAX_RETRIES`, so an
    # explicit 0 still retries twice; only the module default turns that off.
    monkeypatch.setattr(litellm, "DEFAULT_MAX_RETRIES", 0)
    texts = ["I have a cat named Miso", "my cat is called Miso", "the stock market fell today"]
    response = await litellm.aembedding(
        model="openai/text-embedding-3-small", input=texts, api_base=fake_llm.base_url,
        api_key=KEY, num_retries=0, max_retries=0, timeout=5,
    )  # fmt: skip
    vectors = [item["embedding"] for item in response.data]
    assert all(len(v) == EMBEDDING_DIM for v in vectors)
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0) for v in vectors)
    assert cosine(vectors[0], vectors[1]) > 0.3 > cosine(vectors[0], vectors[2])
    assert vectors[0] == pytest.approx(fake_embedding(texts[0]))
    assert len(fake_llm.embedding_calls) == 1
    assert fake_llm.embedding_calls[0].json == {
        "model": "text-embedding-3-small", "input": texts,
    }  # fmt: skip

    fake_llm.fail_embeddings(2, status=503)
    for _ in range(2):
        with pytest.raises(Exception) as failed:  # litellm's class varies by status
            await litellm.aembedding(
                model="openai/e", input="x", api_base=fake_llm.base_url, api_key=KEY,
                num_retries=0, max_retries=0,
            )  # fmt: skip
        assert getattr(failed.value, "status_code", None) == 503
    again = await litellm.aembedding(
        model="openai/e", input="x", api_base=fake_llm.base_url, api_key=KEY, num_retries=0,
        max_retries=0,
    )  # fmt: skip
    assert again.data[0]["embedding"] == pytest.approx(fake_embedding("x"))
    assert len(fake_llm.embedding_calls) == 4


async def test_fake_embeddings_in_base64_and_bad_input(fake_llm: FakeLLM) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{fake_llm.base_url}/embeddings"
        body = {"model": "e", "input": "Hello, world", "encoding_format": "base64"}
        async with http.post(url, json=body) as response:
            encoded = (await response.json())["data"][0]["embedding"]
        decoded = struct.unpack(f"<{EMBEDDING_DIM}f", base64.b64decode(encoded))
        assert list(decoded) == pytest.approx(fake_embedding("hello world"), abs=1e-6)
        assert fake_embedding("") == fake_embedding("  ")  # a fixed unit vector, never zero
        async with http.post(url, json={"model": "e", "input": [1, 2]}) as response:
            assert response.status == 400
