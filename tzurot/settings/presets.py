"""Presets: a named bundle of model and sampling values, shared in a community.

A preset sits in the settings cascade at the level that names it (a character's preset just
below the character, a user's `preset` setting at the user level, and so on). All presets live
in one Redis hash (slug -> JSON), so the resolver reads the ones it needs in the same round trip
as the settings.

Keys (families in tzurot.infra.keys): tzurot:presets.
"""

from __future__ import annotations

import builtins
import functools
import unicodedata
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from redis.asyncio import Redis
from redis.exceptions import WatchError

from tzurot.infra.keys import PRESETS
from tzurot.personalities.models import slugify, validation_messages
from tzurot.settings.catalog import MAX_MODEL_CHARS, MAX_PRESET_REF_CHARS, SettingError
from tzurot.settings.catalog import SPECS as SETTING_SPECS

log = structlog.get_logger(__name__)

PRESETS_KEY = PRESETS.key()
MAX_PRESETS_PER_OWNER = 25
# The values a preset may carry (besides its name); `None` means "this preset does not say".
PRESET_VALUES: tuple[str, ...] = (
    "model",
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "max_tokens",
    "context_window",
)


class PresetError(Exception):
    """Why a preset operation was refused; the message is fit to show the person who asked."""


class PresetNotFound(PresetError):
    pass


class PresetForbidden(PresetError):
    pass


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    slug: str = ""
    owner_id: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")
    public: bool = True
    model: str | None = Field(default=None, max_length=MAX_MODEL_CHARS)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0, allow_inf_nan=False)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0, allow_inf_nan=False)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0, allow_inf_nan=False)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    context_window: int | None = Field(default=None, ge=1024, le=10_000_000)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        value = " ".join(unicodedata.normalize("NFKC", value).split())
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_PRESET_REF_CHARS:
            raise ValueError(f"must be at most {MAX_PRESET_REF_CHARS} characters")
        if any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in value):
            raise ValueError("must not contain control or invisible characters")
        if "@" in value or "`" in value:
            raise ValueError("must not contain '@' or '`'")
        if not slugify(value):
            raise ValueError("must contain at least one letter or digit")
        return value

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return str(SETTING_SPECS["model"].parse(value))
        except SettingError as exc:
            raise ValueError(str(exc)) from None

    def model_post_init(self, context: Any, /) -> None:
        object.__setattr__(self, "slug", slugify(self.name))

    def values(self) -> dict[str, Any]:
        """The values this preset sets (the ones it leaves to others are left out)."""
        return {k: v for k in PRESET_VALUES if (v := getattr(self, k)) is not None}

    def visible_to(self, user_id: str) -> bool:
        return self.public or self.owner_id == user_id


def preset_problem(error: ValidationError) -> PresetError:
    return PresetError("; ".join(validation_messages(error)))


class PresetStore:
    """Presets by name or slug (case-insensitive), with their owners' rights.

    Only the preset's owner, or the bot owner (`bot_owner_id`, BOT_OWNER_ID), may change or
    delete it; everyone sees public presets and their own.
    """

    def __init__(self, redis: Redis, *, bot_owner_id: str | None = None) -> None:
        self._redis = redis
        self._bot_owner_id = bot_owner_id

    def may_change(self, preset: Preset, user_id: str) -> bool:
        return user_id == preset.owner_id or (
            self._bot_owner_id is not None and user_id == self._bot_owner_id
        )

    async def get(self, ref: str) -> Preset | None:
        """By name or slug, case-insensitively."""
        slug = slugify(ref.strip()[: MAX_PRESET_REF_CHARS * 2])
        if not slug:
            return None
        return parse_preset(slug, await self._redis.hget(PRESETS_KEY, slug))

    async def get_visible(self, ref: str, user_id: str) -> Preset | None:
        found = await self.get(ref)
        return found if found is not None and found.visible_to(user_id) else None

    async def list(self) -> builtins.list[Preset]:
        raw = await self._redis.hgetall(PRESETS_KEY)
        found = [parse_preset(_text(slug), value) for slug, value in raw.items()]
        return sorted((p for p in found if p is not None), key=lambda p: p.slug)

    async def list_visible(self, user_id: str) -> builtins.list[Preset]:
        """Public presets and the user's own, by name."""
        return [p for p in await self.list() if p.visible_to(user_id)]

    async def create(self, preset: Preset) -> Preset:
        """Store a new preset; refuses a taken name or an owner over the limit."""
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(PRESETS_KEY)
                    if await pipe.hexists(PRESETS_KEY, preset.slug):
                        raise PresetError(f"There is already a preset called **{preset.name}**.")
                    if preset.owner_id is not None:
                        owned = await self._count_owned(pipe, preset.owner_id)
                        if owned >= MAX_PRESETS_PER_OWNER:
                            raise PresetError(
                                f"You have {owned} presets already, the most one person may "
                                "have; delete one first."
                            )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(PRESETS_KEY, preset.slug, preset.model_dump_json())
                    await pipe.execute()
                    return preset
                except WatchError:
                    continue

    async def update(self, ref: str, user_id: str, changes: dict[str, Any]) -> Preset:
        """Change some values of a preset the user may change; the rest stays."""
        current = await self._changeable(ref, user_id)
        unknown = set(changes) - set(PRESET_VALUES) - {"public"}
        if unknown:
            raise PresetError(f"A preset has no {', '.join(sorted(unknown))}.")
        try:
            updated = Preset.model_validate({**current.model_dump(), **changes})
        except ValidationError as exc:
            raise preset_problem(exc) from None
        await self._redis.hset(PRESETS_KEY, updated.slug, updated.model_dump_json())
        return updated

    async def delete(self, ref: str, user_id: str) -> Preset:
        found = await self._changeable(ref, user_id)
        await self._redis.hdel(PRESETS_KEY, found.slug)
        return found

    async def _changeable(self, ref: str, user_id: str) -> Preset:
        found = await self.get(ref)
        if found is None or not found.visible_to(user_id):
            raise PresetNotFound(f"There is no preset called `{_shown(ref)}`.")
        if not self.may_change(found, user_id):
            raise PresetForbidden(
                f"**{found.name}** belongs to someone else: only its owner may change it."
            )
        return found

    async def _count_owned(self, pipe: Any, owner_id: str) -> int:
        found = (parse_preset("?", value) for value in await pipe.hvals(PRESETS_KEY))
        return sum(1 for preset in found if preset is not None and preset.owner_id == owner_id)


def parse_preset(slug: str, raw: bytes | str | None) -> Preset | None:
    """A stored preset, or None (a corrupt one is logged and skipped, never fatal)."""
    if raw is None:
        return None
    try:
        return _parse_json(raw)
    except ValidationError as exc:
        reason = "; ".join(validation_messages(exc))[:300]
        log.warning("corrupt preset in redis", slug=slug, reason=reason)
        return None


@functools.lru_cache(maxsize=512)
def _parse_json(raw: bytes | str) -> Preset:
    # The resolver reads the same few presets for every generation; a Preset is frozen, so
    # one parsed copy per stored JSON text can be shared.
    return Preset.model_validate_json(raw)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _shown(text: str) -> str:
    return text[:40].replace("`", "'").replace("@", "@\u200b")
