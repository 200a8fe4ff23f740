"""Settings: the cascade of model and behaviour values from built-in defaults to the user.

`catalog` names the settings and validates what people type, `presets` keeps named bundles of
model values, `store` the user and channel levels, `resolver` folds them for one generation.
"""

from tzurot.settings.catalog import (
    SETTING_KEYS,
    SPECS,
    SettingDefaults,
    SettingError,
    SettingSpec,
    SettingValue,
    parse_setting,
    spec_for,
)
from tzurot.settings.presets import Preset, PresetError, PresetStore
from tzurot.settings.resolver import Level, ResolvedSettings, SettingsResolver, Source
from tzurot.settings.store import ChannelValue, SettingsStore

__all__ = [
    "SETTING_KEYS",
    "SPECS",
    "ChannelValue",
    "Level",
    "Preset",
    "PresetError",
    "PresetStore",
    "ResolvedSettings",
    "SettingDefaults",
    "SettingError",
    "SettingSpec",
    "SettingValue",
    "SettingsResolver",
    "SettingsStore",
    "Source",
    "parse_setting",
    "spec_for",
]
