"""litellm takes seconds to import: the job queue and the pure ai modules never import it, and the
provider imports it in a worker thread, off the event loop.

Each check runs in a fresh interpreter, since this test process has imported litellm already.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str) -> object:
    """Run `code` in a fresh interpreter from the project root; its last stdout line is JSON."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


LITELLM_MODULES = "sorted(m for m in sys.modules if m.split('.')[0] == 'litellm')"


def test_the_job_queue_and_the_pure_ai_modules_do_not_import_litellm() -> None:
    loaded = run_python(f"""
        import json, sys
        import tzurot.jobs
        import tzurot.ai.errors, tzurot.ai.contracts, tzurot.ai.models, tzurot.ai.thinking
        print(json.dumps({LITELLM_MODULES}))
    """)

    assert loaded == []


def test_the_ai_package_the_provider_and_its_constructor_do_not_import_litellm() -> None:
    loaded = run_python(f"""
        import json, sys
        import tzurot.ai
        from tzurot.ai import ErrorCategory, ProviderError, RETRYABLE
        from tzurot.ai.provider import LiteLLMProvider
        LiteLLMProvider()
        print(json.dumps({LITELLM_MODULES}))
    """)

    assert loaded == []


def test_warm_up_imports_and_configures_litellm_without_blocking_the_loop() -> None:
    result = run_python("""
        import asyncio, json, sys, time
        from tzurot.ai.provider import LiteLLMProvider

        async def main():
            gaps, stop = [], False

            async def ticker():
                last = time.perf_counter()
                while not stop:
                    await asyncio.sleep(0.005)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            ticking = asyncio.create_task(ticker())
            await asyncio.sleep(0.05)
            provider = LiteLLMProvider()
            started = time.perf_counter()
            await asyncio.gather(provider.warm_up(), provider.warm_up())
            seconds = time.perf_counter() - started
            stop = True
            await ticking
            import litellm
            return {
                "seconds": seconds,
                "ticks": len(gaps),
                "max_gap": max(gaps),
                "turn_off_message_logging": litellm.turn_off_message_logging,
                "modify_params": litellm.modify_params,
                "drop_params": litellm.drop_params,
                "disable_streaming_logging": litellm.disable_streaming_logging,
            }

        print(json.dumps(asyncio.run(main())))
    """)

    assert isinstance(result, dict)
    # The import takes seconds of CPU; the loop kept running between its slices.
    assert result["ticks"] >= 10
    assert result["max_gap"] < max(0.5 * result["seconds"], 0.2)
    assert result["turn_off_message_logging"] is False
    assert result["modify_params"] is False
    assert result["drop_params"] is False
    assert result["disable_streaming_logging"] is True


def test_calls_made_before_the_import_finished_wait_for_it() -> None:
    result = run_python("""
        import asyncio, json, sys
        from pydantic import SecretStr
        from tests.fixtures.fake_llm import FakeLLM
        from tzurot.ai.models import ChatMessage, ModelTarget
        from tzurot.ai.provider import LiteLLMProvider

        async def main():
            async with FakeLLM() as fake:
                provider = LiteLLMProvider()
                target = ModelTarget(
                    model="openai/fake-model", api_base=fake.base_url, api_key=SecretStr("sk-x")
                )
                replies = await asyncio.gather(*(
                    provider.complete(
                        [ChatMessage(role="user", content=f"hi {i}")],
                        target,
                        temperature=0.7,
                        max_tokens=16,
                        timeout=30,
                    )
                    for i in range(5)
                ))
                threads = [t for t in asyncio.all_tasks() if t.get_name() == "import-litellm"]
                return {
                    "replies": [r.content for r in replies],
                    "calls": len(fake.chat_calls),
                    "import_tasks_left": len(threads),
                }

        print(json.dumps(asyncio.run(main())))
    """)

    assert result == {
        "replies": [f"reply to: hi {i}" for i in range(5)],
        "calls": 5,
        "import_tasks_left": 0,
    }
