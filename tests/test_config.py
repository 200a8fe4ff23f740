"""Configuration: fixed variable names, one clear line for a bad value, secrets masked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tzurot.config import Component, ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[1]


def run_tzurot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "API_", "REDIS"))}
    return subprocess.run(
        [sys.executable, "-m", "tzurot", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults_follow_the_design() -> None:
    settings = load_settings(_env_file=None, discord_token="x" * 10)
    assert settings.components == frozenset(Component)
    assert settings.api_host == "127.0.0.1"
    assert settings.api_port == 8080
    assert settings.default_model == "openrouter/anthropic/claude-haiku-4.5"
    assert settings.data_dir == Path("./data")
    assert settings.personalities_dir == Path("./personalities")
    assert settings.worker_concurrency >= 20
    assert settings.log_format == "json"


def test_env_names_are_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPONENTS", "api, worker")
    monkeypatch.setenv("API_PORT", "9999")
    monkeypatch.setenv("WORKER_CONCURRENCY", "80")
    monkeypatch.setenv("LLM_API_BASE", "http://127.0.0.1:8000/v1/")
    monkeypatch.setenv("LOG_FORMAT", "Console")
    settings = load_settings(_env_file=None)
    assert settings.components == {Component.API, Component.WORKER}
    assert settings.api_port == 9999
    assert settings.worker_concurrency == 80
    assert settings.llm_api_base == "http://127.0.0.1:8000/v1"
    assert settings.log_format == "console"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"COMPONENTS": "discord"}, "DISCORD_TOKEN"),
        ({"COMPONENTS": "api", "API_PORT": "eighty"}, "API_PORT"),
        ({"COMPONENTS": "api", "JOB_SIGNING_KEY": "short"}, "JOB_SIGNING_KEY"),
        ({"COMPONENTS": "api", "API_HOST": "0.0.0.0"}, "API_TOKEN"),
        ({"COMPONENTS": "teleport"}, "COMPONENTS"),
    ],
)
def test_a_wrong_value_stops_start_up_with_one_line_naming_it(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    result = run_tzurot(env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_check_config_masks_secrets(tmp_path: Path) -> None:
    secret = "discord-secret-token-value-123456"
    result = run_tzurot(
        "check-config",
        env={"DISCORD_TOKEN": secret, "LLM_API_KEY": "sk-abcdefabcdefabcdef", "API_PORT": "8181"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout
    assert "sk-abcdef" not in result.stdout
    assert "DISCORD_TOKEN=********" in result.stdout
    assert "API_PORT=8181" in result.stdout
    assert "REDIS_URL=(unset)" in result.stdout


def test_keys_accept_any_string_of_32_characters() -> None:
    passphrase = "correct horse battery staple, more words"
    settings = load_settings(_env_file=None, components="api", job_signing_key=passphrase)
    assert settings.job_signing_key is not None
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        load_settings(_env_file=None, components="api", encryption_key="too short")


def test_pluralkit_can_be_turned_off_and_a_bad_url_is_named() -> None:
    def load(**overrides: str) -> str:
        return load_settings(_env_file=None, components="api,worker", **overrides).pluralkit_api_url

    assert load() == "https://api.pluralkit.me/v2"
    assert load(pluralkit_api_url="off") == ""
    with pytest.raises(ConfigError, match="PLURALKIT_API_URL"):
        load(pluralkit_api_url="ftp://example.org")
