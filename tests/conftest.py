"""Shared fixtures: real Redis servers, the fake LLM server and the Discord emulator."""

pytest_plugins = [
    "tests.fixtures.redis_server",
    "tests.fixtures.redis_sentinel",
    "tests.emulator.fixtures",
    "tests.fixtures.fake_llm",
    "tests.fixtures.app",
    "tests.fixtures.bot",
]
