"""The settings a user or a moderator may change: their keys, types, ranges and parsers.

The keys are DESIGN.md's (fixed); everything that turns what a person typed into a value goes
through `SettingSpec.parse`, so `/settings set`, `/channel settings` and the store all agree on
what a valid value is, and the store can re-check what it reads back from Redis.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tzurot.personalities.models import (
    DEFAULT_CONTEXT_WINDOW,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    slugify,
)

SettingValue = bool | int | float | str

MAX_MODEL_CHARS = 200
MAX_PRESET_REF_CHARS = 80
MAX_TYPED_CHARS = 300

# provider/model[/more], litellm's way of naming a model: `openrouter/anthropic/claude-haiku-4.5`.
_MODEL_SHAPE = re.compile(r"^[a-z0-9][a-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9._:@+/-]*$")
_TRUE = frozenset({"on", "true", "yes", "1", "enable", "enabled"})
_FALSE = frozenset({"off", "false", "no", "0", "disable", "disabled"})


class SettingError(ValueError):
    """A setting name or value a person typed is not acceptable; the message says why."""


class Kind(StrEnum):
    BOOL = "on/off"
    FLOAT = "number"
    INT = "whole number"
    MODEL = "model"
    PRESET = "preset"


@dataclass(frozen=True)
class SettingSpec:
    key: str
    kind: Kind
    description: str
    minimum: float | None = None
    maximum: float | None = None

    def parse(self, text: str, *, known_model: Callable[[str], bool] | None = None) -> SettingValue:
        """The value `text` means, or `SettingError` naming the accepted range.

        A preset comes back as the slug it would be found by; whether it exists is for the
        caller to check (it takes a Redis read), see `PresetStore.get`.
        """
        cleaned = _clean(text)
        if self.kind is Kind.BOOL:
            return self._parse_bool(cleaned)
        if self.kind is Kind.FLOAT:
            return self._in_range(_number(self.key, cleaned, float))
        if self.kind is Kind.INT:
            return self._in_range(_number(self.key, cleaned, int))
        if self.kind is Kind.MODEL:
            return _parse_model(cleaned, known_model)
        return _parse_preset(cleaned)

    def format(self, value: SettingValue) -> str:
        """The canonical text of a value: what the store keeps and what people are shown."""
        if self.kind is Kind.BOOL:
            return "on" if value else "off"
        if self.kind is Kind.FLOAT:
            return f"{float(value):g}"
        return str(value)

    @property
    def accepted(self) -> str:
        """What the setting accepts, for help and error texts."""
        if self.kind is Kind.BOOL:
            return "on or off"
        if self.kind in (Kind.FLOAT, Kind.INT):
            return f"a {self.kind.value} from {self.minimum:g} to {self.maximum:g}"
        if self.kind is Kind.MODEL:
            return "a model name like `openrouter/anthropic/claude-haiku-4.5` (see /models browse)"
        return "the name of a preset (see /preset browse)"

    def _parse_bool(self, text: str) -> bool:
        folded = text.casefold()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
        raise SettingError(f"`{self.key}` must be on or off, not {_shown(text)}.")

    def _in_range(self, value: float) -> SettingValue:
        assert self.minimum is not None and self.maximum is not None
        if not self.minimum <= value <= self.maximum:
            raise SettingError(
                f"`{self.key}` must be from {self.minimum:g} to {self.maximum:g}, not {value:g}."
            )
        return value


def _spec(key: str, kind: Kind, description: str, low: float = 0, high: float = 0) -> SettingSpec:
    numeric = kind in (Kind.FLOAT, Kind.INT)
    return SettingSpec(key, kind, description, low if numeric else None, high if numeric else None)


SPECS: Mapping[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        _spec("model", Kind.MODEL, "The model that speaks for the character"),
        _spec("preset", Kind.PRESET, "A preset of model and sampling values"),
        _spec("temperature", Kind.FLOAT, "Randomness of replies", 0.0, 2.0),
        _spec("top_p", Kind.FLOAT, "Nucleus sampling", 0.0, 1.0),
        _spec("max_tokens", Kind.INT, "Longest reply, in tokens", 1, 200_000),
        _spec("history_limit", Kind.INT, "Earlier messages the character sees", 0, 500),
        _spec("memory", Kind.BOOL, "Long-term memory"),
        _spec("streaming", Kind.BOOL, "Replies appear while they are written"),
        _spec("voice_transcription", Kind.BOOL, "Voice messages are transcribed"),
        _spec("regenerate_on_edit", Kind.BOOL, "Editing a message regenerates the reply"),
        _spec(
            "group_replies",
            Kind.BOOL,
            "Characters mentioned together answer in turn, each seeing the replies before it",
        ),
    )
}
SETTING_KEYS: tuple[str, ...] = tuple(SPECS)
BOOL_KEYS: frozenset[str] = frozenset(k for k, s in SPECS.items() if s.kind is Kind.BOOL)

# Values only a preset or a character carries (no /settings key of their own), with ranges.
SAMPLING_RANGES: Mapping[str, tuple[float, float]] = {
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
    "context_window": (1024, 10_000_000),
}
# Every value the resolver produces.
RESOLVED_KEYS: tuple[str, ...] = (*SETTING_KEYS, *SAMPLING_RANGES)


def spec_for(key: str) -> SettingSpec:
    """The spec of a setting name as typed (case and spaces forgiven), else `SettingError`."""
    name = _clean(key).casefold().replace(" ", "_").replace("-", "_")
    found = SPECS.get(name)
    if found is None:
        raise SettingError(
            f"There is no setting {_shown(key)}; the settings are: {', '.join(SETTING_KEYS)}."
        )
    return found


def parse_setting(
    key: str, text: str, *, known_model: Callable[[str], bool] | None = None
) -> tuple[SettingSpec, SettingValue]:
    """Setting name and typed value -> (spec, value), or `SettingError`."""
    spec = spec_for(key)
    return spec, spec.parse(text, known_model=known_model)


@dataclass(frozen=True)
class SettingDefaults:
    """The built-in level: what applies when nobody (character, channel, user) said anything.

    `history_limit` is HISTORY_LIMIT and `model` DEFAULT_MODEL; the rest are fixed defaults.
    None means "the model's own default" (the parameter is not sent).
    """

    model: str
    history_limit: int = 50
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    context_window: int = DEFAULT_CONTEXT_WINDOW
    memory: bool = True
    streaming: bool = True
    voice_transcription: bool = True
    regenerate_on_edit: bool = False
    group_replies: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> SettingDefaults:
        """From `tzurot.config.Settings` (DEFAULT_MODEL, HISTORY_LIMIT, MEMORY_ENABLED)."""
        return cls(
            model=settings.default_model,
            history_limit=settings.history_limit,
            memory=bool(getattr(settings, "memory_enabled", True)),
        )

    def values(self) -> dict[str, SettingValue | None]:
        found: dict[str, SettingValue | None] = {
            key: getattr(self, key, None) for key in RESOLVED_KEYS
        }
        found["preset"] = None
        return found


def _clean(text: str) -> str:
    if not isinstance(text, str):
        raise SettingError("The value must be text.")
    if len(text) > MAX_TYPED_CHARS:
        raise SettingError(f"That value is too long (at most {MAX_TYPED_CHARS} characters).")
    text = unicodedata.normalize("NFKC", text).strip()
    if not text:
        raise SettingError("The value is empty.")
    if any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in text):
        raise SettingError("The value must not contain control or invisible characters.")
    return text


def _shown(text: str) -> str:
    """A typed value, safe to echo: short, no backticks, no pings."""
    cut = text[:40].replace("`", "'").replace("@", "@\u200b")
    return f"`{cut}`" + ("…" if len(text) > 40 else "")


def _number(key: str, text: str, kind: type[int] | type[float]) -> float:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise SettingError(f"`{key}` must be a number, not {_shown(text)}.") from None
    if not math.isfinite(value):
        raise SettingError(f"`{key}` must be a finite number.")
    if kind is int:
        if value != int(value):
            raise SettingError(f"`{key}` must be a whole number, not {_shown(text)}.")
        return int(value)
    return value


def _parse_model(text: str, known_model: Callable[[str], bool] | None) -> str:
    if known_model is not None and known_model(text):
        return text
    if len(text) > MAX_MODEL_CHARS or not _MODEL_SHAPE.match(text) or "//" in text:
        raise SettingError(
            f"{_shown(text)} is not a model name: use litellm's `provider/model` form, "
            "e.g. `openrouter/anthropic/claude-haiku-4.5` (see /models browse)."
        )
    return text


def _parse_preset(text: str) -> str:
    if len(text) > MAX_PRESET_REF_CHARS:
        raise SettingError(f"A preset name has at most {MAX_PRESET_REF_CHARS} characters.")
    slug = slugify(text)
    if not slug:
        raise SettingError(f"{_shown(text)} is not a preset name.")
    return slug
