"""The model catalog: litellm's chat models cut to reachable providers, and its search."""

import json
import subprocess
import sys
from pathlib import Path

from tzurot.ai.catalog import ModelCatalog, operator_providers, provider_of

ROOT = Path(__file__).resolve().parents[2]
TABLE = {
    "gpt-4o": {"mode": "chat", "litellm_provider": "openai", "max_input_tokens": 128000},
    "gpt-4o-mini": {"mode": "chat", "litellm_provider": "openai"},
    "ft:gpt-4o": {"mode": "chat", "litellm_provider": "openai"},
    "text-embedding-3-small": {"mode": "embedding", "litellm_provider": "openai"},
    "claude-haiku-4-5": {"mode": "chat", "litellm_provider": "anthropic"},
    "groq/llama-3-70b": {"mode": "chat", "litellm_provider": "groq"},
    "sample_spec": {"mode": "chat", "litellm_provider": "one of https://docs.litellm.ai"},
    "bad": "not an entry",
}


def catalog(environ: dict[str, str], **options: object) -> ModelCatalog:
    built = ModelCatalog(configured=("openrouter/anthropic/claude-haiku-4.5",), environ=environ,
                         **options)  # type: ignore[arg-type]  # fmt: skip
    built.load(TABLE)  # type: ignore[arg-type]
    return built


def test_providers_are_those_with_a_key_or_the_endpoint() -> None:
    assert operator_providers({"OPENROUTER_API_KEY": "x", "GROQ_API_KEY": ""}) == {"openrouter"}
    assert operator_providers({}, llm_api_base="http://127.0.0.1:8000/v1") == {"openai"}
    assert operator_providers({"TOGETHERAI_API_KEY": "k"}, known={"together_ai"}) == {"together_ai"}
    assert provider_of("gpt-4o") == "openai" and provider_of("Groq/x") == "groq"


def test_only_reachable_chat_models_with_their_provider_in_front() -> None:
    found = catalog({"ANTHROPIC_API_KEY": "k"})
    assert [m.name for m in found.models()] == ["anthropic/claude-haiku-4-5"]
    assert found.providers() == ["anthropic"]

    with_keys = catalog({"OPENAI_API_KEY": "k"})
    names = [m.name for m in with_keys.models(user_providers={"groq"})]
    assert names == ["groq/llama-3-70b", "openai/gpt-4o", "openai/gpt-4o-mini"]
    assert [m.name for m in with_keys.models("GROQ", {"groq"})] == ["groq/llama-3-70b"]
    assert with_keys.get("openai/gpt-4o").max_input_tokens == 128000  # type: ignore[union-attr]
    assert with_keys.knows("openrouter/anthropic/claude-haiku-4.5")  # configured: known


def test_search_prefers_names_starting_with_the_text_and_stays_small() -> None:
    found = catalog({"OPENAI_API_KEY": "k", "OPENROUTER_API_KEY": "k"})
    assert found.search("GPT-4O") == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    assert found.search("mini")[0] == "openai/gpt-4o-mini"
    assert found.search("haiku") == ["openrouter/anthropic/claude-haiku-4.5"]
    assert found.search("x" * 5000) == []
    assert len(found.search("", limit=2)) == 2


def test_litellm_s_own_table_without_importing_litellm() -> None:
    code = (
        "import json, sys; from tzurot.ai.catalog import ModelCatalog; "
        "c = ModelCatalog(configured=('openai/fake',), llm_api_base='http://x/v1', environ={}); "
        "c.load(); r = c.search('gpt', limit=25); "
        "print(json.dumps([len(c.models()), len(r), 'litellm' in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    count, shown, imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert count > 50 and 0 < shown <= 25 and imported is False
