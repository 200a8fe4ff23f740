"""The settings cascade: one answer to "which value applies to this generation, and why".

Levels, lowest first (DESIGN.md): built-in < the character's preset < the character < the
channel (a thread's own value, else its parent channel's) < the user's default < the user's
value for this character; a channel value set with `enforce` beats both user levels (the
original let users silently outrank their moderators; here enforcement is a level of its own,
above them). A `preset` chosen at any level brings that preset's values at that level, under
the values set explicitly at the same level.

The worker calls `resolve` for every generation, so it costs one Redis round trip
(`SettingsStore.read_levels`) and a few microseconds of folding (bench/settings_resolve.py).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from tzurot.personalities.models import Personality, slugify
from tzurot.settings.catalog import RESOLVED_KEYS, SettingDefaults, SettingValue
from tzurot.settings.presets import PRESET_VALUES, Preset, PresetStore
from tzurot.settings.store import ChannelValue, SettingsStore

# Character fields that sit in the cascade; None means the character does not say.
_CHARACTER_FIELDS: tuple[str, ...] = (*PRESET_VALUES, "preset")


class Level(IntEnum):
    """Where an effective value came from, lowest precedence first."""

    BUILTIN = 0
    CHARACTER_PRESET = 1
    CHARACTER = 2
    CHANNEL = 3
    USER = 4
    USER_CHARACTER = 5
    CHANNEL_ENFORCED = 6

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Level.BUILTIN: "built-in default",
    Level.CHARACTER_PRESET: "character's preset",
    Level.CHARACTER: "character",
    Level.CHANNEL: "channel",
    Level.USER: "your default",
    Level.USER_CHARACTER: "your setting for this character",
    Level.CHANNEL_ENFORCED: "channel (enforced by a moderator)",
}


@dataclass(frozen=True)
class Source:
    level: Level
    preset: str | None = None  # the preset (name) that brought the value, if one did
    inherited: bool = False  # a thread's value that came from its parent channel

    def describe(self) -> str:
        text = self.level.label
        if self.inherited:
            text += ", from the parent channel"
        if self.preset and self.level is not Level.CHARACTER_PRESET:
            text += f", via preset {self.preset}"
        elif self.preset:
            text += f" {self.preset}"
        return text


@dataclass(frozen=True)
class ResolvedSettings:
    """Every effective value, with the level it came from."""

    values: Mapping[str, SettingValue | None]
    sources: Mapping[str, Source]

    def value(self, key: str) -> SettingValue | None:
        return self.values[key]

    def source(self, key: str) -> Level:
        return self.sources[key].level

    def describe_source(self, key: str) -> str:
        return self.sources[key].describe()

    @property
    def model(self) -> str:
        return str(self.values["model"])

    @property
    def preset(self) -> str | None:
        value = self.values["preset"]
        return None if value is None else str(value)

    @property
    def temperature(self) -> float:
        return float(self._number("temperature"))

    @property
    def top_p(self) -> float | None:
        return self._optional_float("top_p")

    @property
    def frequency_penalty(self) -> float | None:
        return self._optional_float("frequency_penalty")

    @property
    def presence_penalty(self) -> float | None:
        return self._optional_float("presence_penalty")

    @property
    def max_tokens(self) -> int:
        return int(self._number("max_tokens"))

    @property
    def context_window(self) -> int:
        return int(self._number("context_window"))

    @property
    def history_limit(self) -> int:
        return int(self._number("history_limit"))

    @property
    def memory(self) -> bool:
        return bool(self.values["memory"])

    @property
    def streaming(self) -> bool:
        return bool(self.values["streaming"])

    @property
    def voice_transcription(self) -> bool:
        return bool(self.values["voice_transcription"])

    @property
    def regenerate_on_edit(self) -> bool:
        return bool(self.values["regenerate_on_edit"])

    @property
    def group_replies(self) -> bool:
        return bool(self.values["group_replies"])

    def _number(self, key: str) -> float:
        value = self.values[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), key
        return value

    def _optional_float(self, key: str) -> float | None:
        value = self.values[key]
        return None if value is None else float(value)


class _Fold:
    """Applies levels lowest first; a later `put` wins."""

    def __init__(self, defaults: SettingDefaults) -> None:
        self.values: dict[str, SettingValue | None] = defaults.values()
        self.sources: dict[str, Source] = dict.fromkeys(RESOLVED_KEYS, Source(Level.BUILTIN))

    def put(self, key: str, value: SettingValue | None, source: Source) -> None:
        if key in self.values and value is not None:
            self.values[key] = value
            self.sources[key] = source

    def put_preset(self, preset: Preset, level: Level, *, inherited: bool = False) -> None:
        source = Source(level, preset=preset.name, inherited=inherited)
        for key, value in preset.values().items():
            self.put(key, value, source)
        self.put("preset", preset.name, Source(level, inherited=inherited))


class SettingsResolver:
    def __init__(
        self, store: SettingsStore, presets: PresetStore, defaults: SettingDefaults
    ) -> None:
        self._store = store
        self._presets = presets  # kept for callers that need the store next to the resolver
        self._defaults = defaults

    @property
    def defaults(self) -> SettingDefaults:
        return self._defaults

    async def resolve(
        self,
        personality: Personality | None,
        *,
        user_id: str,
        channel_id: str | None,
        parent_channel_id: str | None = None,
    ) -> ResolvedSettings:
        """The effective settings of one user talking to one character in one channel.

        `personality=None` resolves without the character levels (what /settings view shows
        when no character is named); `channel_id=None` (a DM, the terminal) skips the channel.
        """
        own = _character_values(personality) if personality is not None else {}
        character_preset = own.pop("preset", None)
        levels = await self._store.read_levels(
            user_id=user_id,
            personality_slug=personality.slug if personality is not None else None,
            channel_id=channel_id,
            parent_channel_id=parent_channel_id if parent_channel_id != channel_id else None,
            preset_refs=[str(character_preset)] if character_preset else [],
        )
        channel, inherited = _channel_level(levels.channel, levels.parent_channel)
        fold = _Fold(self._defaults)

        def preset_named(value: SettingValue | None) -> Preset | None:
            return levels.presets.get(_slug(str(value))) if value else None

        if (found := preset_named(character_preset)) is not None:
            fold.put_preset(found, Level.CHARACTER_PRESET)
        for key, value in own.items():
            fold.put(key, value, Source(Level.CHARACTER))
        self._apply_channel(fold, channel, inherited, preset_named, enforced=False)
        for level, values in (
            (Level.USER, levels.user),
            (Level.USER_CHARACTER, levels.user_character),
        ):
            if (found := preset_named(values.get("preset"))) is not None:
                fold.put_preset(found, level)
            for key, value in values.items():
                if key != "preset":
                    fold.put(key, value, Source(level))
        self._apply_channel(fold, channel, inherited, preset_named, enforced=True)
        return ResolvedSettings(fold.values, fold.sources)

    @staticmethod
    def _apply_channel(
        fold: _Fold,
        channel: Mapping[str, ChannelValue],
        inherited: Mapping[str, bool],
        preset_named: Any,
        *,
        enforced: bool,
    ) -> None:
        """The channel level; with `enforced`, again with just the enforced values, on top."""
        level = Level.CHANNEL_ENFORCED if enforced else Level.CHANNEL
        chosen = {k: item for k, item in channel.items() if item.enforce or not enforced}
        if "preset" in chosen and (found := preset_named(chosen["preset"].value)) is not None:
            fold.put_preset(found, level, inherited=inherited["preset"])
        for key, item in chosen.items():
            if key != "preset":
                fold.put(key, item.value, Source(level, inherited=inherited[key]))


@functools.lru_cache(maxsize=1024)
def _slug(ref: str) -> str:
    return slugify(ref)


def _character_values(personality: Personality) -> dict[str, SettingValue]:
    found: dict[str, SettingValue] = {}
    for name in _CHARACTER_FIELDS:
        value = getattr(personality, name)
        if value is not None:
            found[name] = value
    return found


def _channel_level(
    own: Mapping[str, ChannelValue], parent: Mapping[str, ChannelValue]
) -> tuple[dict[str, ChannelValue], dict[str, bool]]:
    """A thread's own value per key, else its parent channel's (and which were inherited)."""
    merged = {**parent, **own}
    return merged, {key: key not in own for key in merged}
