"""Settings from the environment (and `.env`), under the fixed names of DESIGN.md."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_KEY_CHARS = 32


class Component(StrEnum):
    DISCORD = "discord"
    API = "api"
    WORKER = "worker"


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
        env_ignore_empty=True,
    )

    # Which parts this process runs.
    components: Annotated[frozenset[Component], NoDecode] = frozenset(Component)

    # Discord
    discord_token: SecretStr | None = None
    discord_rest_url: str | None = None
    discord_application_id: int | None = None
    discord_dev_guild_id: int | None = None
    bot_owner_id: int | None = None
    max_mentions_per_message: int = Field(default=5, ge=1, le=10)
    history_limit: int = Field(default=50, ge=0, le=500)
    history_retention_days: int = Field(default=30, ge=1)
    taking_longer_seconds: float = Field(default=300.0, gt=0)
    # Gateway shards: DISCORD_SHARD_COUNT in all, DISCORD_SHARD_IDS run by this process.
    discord_shard_count: int | None = Field(default=None, ge=1, le=4096)
    discord_shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = None
    # /health answers 503 when replies have waited this long with nothing delivered.
    delivery_stall_seconds: float = Field(default=120.0, gt=0)
    # PluralKit: its API (members speaking through its webhooks; `off` ignores them, as every
    # other webhook), and how long a triggering message of a user with a PluralKit system
    # waits to see whether PluralKit replaces it with a member's message.
    pluralkit_api_url: str = "https://api.pluralkit.me/v2"
    pluralkit_grace_seconds: float = Field(default=1.5, ge=0, le=10)

    # This process's name among the processes sharing Redis (delivery consumer and SAQ worker
    # id). Default: the host name. A name held by another live process gets a suffix.
    process_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,48}$")

    # Redis
    redis_url: SecretStr | None = None
    # Redis under Sentinel: host:port list and the monitored master's name (replace REDIS_URL).
    redis_sentinels: Annotated[tuple[tuple[str, int], ...] | None, NoDecode] = None
    redis_sentinel_master: str | None = None
    redis_password: SecretStr | None = None
    data_dir: Path = Path("./data")

    # Internal HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    api_token: SecretStr | None = None
    max_message_chars: int = Field(default=16_000, ge=1)

    # Jobs
    job_signing_key: SecretStr | None = None
    worker_concurrency: int = Field(default=50, ge=1, le=10_000)
    job_attempts: int = Field(default=3, ge=1, le=10)
    llm_attempt_timeout: float = Field(default=180.0, gt=0)
    job_timeout: float = Field(default=1200.0, gt=0)
    shutdown_grace_period: float = Field(default=30.0, ge=0)

    # Secrets at rest
    encryption_key: SecretStr | None = None

    # LLM
    default_model: str = "openrouter/anthropic/claude-haiku-4.5"
    llm_api_base: str | None = None
    llm_api_key: SecretStr | None = None

    # Personalities
    personalities_dir: Path = Path("./personalities")
    # Where the HTTP API is reachable from Discord, for avatars uploaded with /character avatar
    # (served at {PUBLIC_BASE_URL}/avatars/{slug}). Unset: uploads are refused, URLs still work.
    public_base_url: str | None = None

    # Community: guest models (usable by people without a key when the operator has none for
    # the model's provider), and sliding-window rate limits (0 turns one off).
    guest_models: Annotated[tuple[str, ...], NoDecode] = ()
    rate_limit_user_per_minute: int = Field(default=10, ge=0, le=10_000)
    rate_limit_channel_per_minute: int = Field(default=30, ge=0, le=100_000)

    # Attachments: the largest file fetched, and the hosts files are fetched from (Discord's
    # attachment hosts; tests add their own loopback host:port).
    max_attachment_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    attachment_hosts: Annotated[tuple[str, ...], NoDecode] = (
        "cdn.discordapp.com",
        "media.discordapp.net",
    )

    # Long-term memory (DESIGN.md, "Memory and attachments"). EMBEDDING_MODEL `local` runs
    # all-MiniLM-L6-v2 in-process (built once into DATA_DIR/models); or a litellm model.
    memory_enabled: bool = True
    embedding_model: str = "local"
    models_dir: Path | None = None  # where the local model is built (default DATA_DIR/models)
    memory_limit: int = Field(default=20, ge=0, le=100)
    memory_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    memory_cap_per_scope: int = Field(default=5_000, ge=10, le=200_000)
    # Vectors of recently recalled scopes kept in each process (checked against Redis on every
    # recall): a 5,000-memory scope of 384-d vectors takes 7.5 MB.
    memory_cache_mb: int = Field(default=64, ge=0, le=16_384)
    # Facts about users: distilled every FACT_EVERY_EXCHANGES exchanges by FACT_MODEL (unset:
    # the character's own model, with the same key as its replies).
    fact_model: str | None = None
    fact_every_exchanges: int = Field(default=4, ge=0, le=1_000)
    # Seconds between two tries of a failed memory write (three in all, then every 10 min).
    memory_retry_seconds: float = Field(default=2.0, ge=0.0, le=600.0)
    # Images for characters whose model cannot see: described by the first of VISION_MODEL
    # (a comma-separated fallback chain) that answers; unset: DEFAULT_MODEL. Voice messages
    # and audio: TRANSCRIPTION_MODEL (unset: they are named, not transcribed).
    vision_model: Annotated[tuple[str, ...], NoDecode] = ()
    transcription_model: str | None = None
    max_text_file_bytes: int = Field(default=256 * 1024, ge=1024, le=10 * 1024 * 1024)
    # Slots per process for background jobs (image-, audio-, memory-), apart from replies'.
    background_concurrency: int = Field(default=8, ge=1, le=1_000)

    # Logs
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    @property
    def models_path(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    @field_validator("components", mode="before")
    @classmethod
    def _parse_components(cls, value: Any) -> Any:
        if isinstance(value, str):
            names = [part.strip().lower() for part in value.split(",") if part.strip()]
            if not names:
                raise ValueError("name at least one of discord, api, worker")
            return frozenset(Component(name) for name in names)
        return value

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _parse_shard_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                ids = tuple(int(part) for part in value.split(",") if part.strip())
            except ValueError:
                raise ValueError("comma-separated shard numbers, e.g. 0,1") from None
            if not ids or any(i < 0 for i in ids):
                raise ValueError("comma-separated shard numbers (0 or more), e.g. 0,1")
            return tuple(sorted(set(ids)))
        return value

    @field_validator("guest_models", "attachment_hosts", "vision_model", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _parse_sentinels(cls, value: Any) -> Any:
        if isinstance(value, str):
            found = []
            for part in (p.strip() for p in value.split(",")):
                if not part:
                    continue
                host, sep, port = part.rpartition(":")
                if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                    raise ValueError(f"{part!r}: expected host:port")
                found.append((host.strip("[]"), int(port)))
            if not found:
                raise ValueError("name at least one sentinel as host:port")
            return tuple(found)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("job_signing_key", "encryption_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_KEY_CHARS:
            raise ValueError(f"must be at least {MIN_KEY_CHARS} characters")
        return value

    @field_validator("pluralkit_api_url")
    @classmethod
    def _pluralkit_url(cls, value: str) -> str:
        if value.strip().lower() in {"off", "none", "false"}:
            return ""
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL, or off")
        return value.rstrip("/")

    @field_validator("llm_api_base", "discord_rest_url", "public_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if Component.DISCORD in self.components and self.discord_token is None:
            raise ValueError(
                "DISCORD_TOKEN: required when the discord component runs "
                "(set it, or set COMPONENTS=api,worker)"
            )
        if self.discord_shard_ids is not None and self.discord_shard_count is None:
            raise ValueError("DISCORD_SHARD_IDS: needs DISCORD_SHARD_COUNT as well")
        if self.discord_shard_ids is not None and self.discord_shard_count is not None:
            too_big = [i for i in self.discord_shard_ids if i >= self.discord_shard_count]
            if too_big:
                raise ValueError(
                    f"DISCORD_SHARD_IDS: {too_big[0]} is not below DISCORD_SHARD_COUNT "
                    f"({self.discord_shard_count})"
                )
        if (self.redis_sentinels is None) != (self.redis_sentinel_master is None):
            raise ValueError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER: set both or neither")
        if self.redis_sentinels is not None and self.redis_url is not None:
            raise ValueError("REDIS_URL: unset it when REDIS_SENTINELS is set")
        if (
            Component.API in self.components
            and self.api_token is None
            and not is_loopback(self.api_host)
        ):
            raise ValueError(
                f"API_TOKEN: required when API_HOST ({self.api_host}) is beyond loopback"
            )
        return self

    def runs(self, component: Component) -> bool:
        return component in self.components

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        values = [
            self.discord_token,
            self.api_token,
            self.job_signing_key,
            self.encryption_key,
            self.llm_api_key,
            self.redis_password,
        ]
        found = [v.get_secret_value() for v in values if v is not None]
        if self.redis_url is not None:
            password = _url_password(self.redis_url.get_secret_value())
            if password:
                found.append(password)
        return [s for s in found if len(s) >= 4]

    def masked(self) -> dict[str, str]:
        """The effective configuration as printable strings, secrets masked."""
        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = "********" if value.get_secret_value() else "(empty)"
            elif value is None:
                text = "(unset)"
            elif isinstance(value, frozenset):
                text = ",".join(sorted(str(v) for v in value))
            elif name == "redis_sentinels":
                text = ",".join(f"{host}:{port}" for host, port in value)
            elif isinstance(value, tuple):
                text = ",".join(str(v) for v in value)
            else:
                text = str(value)
            shown[name.upper()] = text
        return shown


def is_loopback(host: str) -> bool:
    if host in {"localhost", ""}:
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_password(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning validation errors into one line per variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        location = "_".join(str(part) for part in error["loc"]).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        if location:
            lines.append(f"{location}: {message}")
        else:
            lines.append(message)
    return "; ".join(lines)
