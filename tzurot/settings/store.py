"""Where the user and channel levels of the settings cascade live: one Redis hash per scope.

- `tzurot:settings:user:{user_id}`: field `key` is the user's default, field `slug/key` the
  user's value for one character (slugs never contain `/`).
- `tzurot:settings:channel:{channel_id}`: field `key`, value `0|text` or `1|text`, the leading
  flag saying whether a moderator set it with `enforce` (it then beats the user levels).

Values are kept as the canonical text of `SettingSpec.format` and parsed again on the way out,
so a value edited by hand in Redis that is out of range is ignored, never used.
`read_levels` reads every level the resolver needs, and the presets they name, in one round
trip (a Lua script).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import structlog
from redis.asyncio import Redis

from tzurot.infra.keys import PRESETS, SETTINGS_CHANNEL, SETTINGS_USER
from tzurot.personalities.models import slugify
from tzurot.settings.catalog import SETTING_KEYS, SPECS, SettingError, SettingValue
from tzurot.settings.presets import Preset, parse_preset

log = structlog.get_logger(__name__)


def user_key(user_id: str) -> str:
    return SETTINGS_USER.key(user_id=user_id)


def channel_key(channel_id: str) -> str:
    return SETTINGS_CHANNEL.key(channel_id=channel_id)


@dataclass(frozen=True)
class ChannelValue:
    value: SettingValue
    enforce: bool


@dataclass(frozen=True)
class Levels:
    """The raw levels for one generation, as read from Redis (already parsed and checked)."""

    user: dict[str, SettingValue] = field(default_factory=dict)
    user_character: dict[str, SettingValue] = field(default_factory=dict)
    channel: dict[str, ChannelValue] = field(default_factory=dict)
    parent_channel: dict[str, ChannelValue] = field(default_factory=dict)
    presets: dict[str, Preset] = field(default_factory=dict)


# KEYS: user hash, channel hash (or ""), parent hash (or ""), presets hash.
# ARGV: the character's slug (or ""), then preset refs (slugs) to fetch whatever the levels say.
# Returns {user fields flat, channel flat, parent flat, presets flat}: one round trip for all.
_READ_LEVELS = """
local function flat(key)
  if key == '' then return {} end
  return redis.call('HGETALL', key)
end
local user = {}
local fields = {}
for i, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if ARGV[1] == '' then
    if not string.find(name, '/', 1, true) then fields[#fields + 1] = name end
  elseif not string.find(name, '/', 1, true)
      or string.sub(name, 1, #ARGV[1] + 1) == ARGV[1] .. '/' then
    fields[#fields + 1] = name
  end
end
if #fields > 0 then
  local values = redis.call('HMGET', KEYS[1], unpack(fields))
  for i, name in ipairs(fields) do
    user[#user + 1] = name
    user[#user + 1] = values[i]
  end
end
local channel = flat(KEYS[2])
local parent = flat(KEYS[3])
local wanted = {}
for i = 2, #ARGV do wanted[ARGV[i]] = true end
for i, name in ipairs(user) do
  if i % 2 == 1 and (name == 'preset' or name == ARGV[1] .. '/preset') then
    wanted[user[i + 1]] = true
  end
end
for _, levels in ipairs({channel, parent}) do
  for i, name in ipairs(levels) do
    if i % 2 == 1 and name == 'preset' then wanted[string.sub(levels[i + 1], 3)] = true end
  end
end
local presets = {}
for slug, _ in pairs(wanted) do
  if slug ~= '' then
    local raw = redis.call('HGET', KEYS[4], slug)
    if raw then
      presets[#presets + 1] = slug
      presets[#presets + 1] = raw
    end
  end
end
return {user, channel, parent, presets}
"""


class SettingsStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._read_levels = redis.register_script(_READ_LEVELS)

    # -- user levels ---------------------------------------------------------------------------
    async def set_user(
        self, user_id: str, key: str, value: SettingValue, *, personality: str | None = None
    ) -> None:
        """Set a user's default (`personality=None`) or their value for one character (slug)."""
        spec = SPECS[key]
        await self._redis.hset(user_key(user_id), _user_field(key, personality), spec.format(value))

    async def reset_user(self, user_id: str, key: str, *, personality: str | None = None) -> bool:
        """Forget a user's value; True when there was one."""
        SPECS[key]  # an unknown key is a programming error: KeyError
        return bool(await self._redis.hdel(user_key(user_id), _user_field(key, personality)))

    async def user_values(
        self, user_id: str, *, personality: str | None = None
    ) -> dict[str, SettingValue]:
        """A user's values at one level: their defaults, or those for one character."""
        fields = [_user_field(key, personality) for key in SETTING_KEYS]
        raw = await self._redis.hmget(user_key(user_id), fields)
        return _parse_values(user_key(user_id), zip(SETTING_KEYS, raw, strict=True))

    # -- channel level -------------------------------------------------------------------------
    async def set_channel(
        self, channel_id: str, key: str, value: SettingValue, *, enforce: bool = False
    ) -> None:
        text = SPECS[key].format(value)
        await self._redis.hset(channel_key(channel_id), key, f"{int(enforce)}|{text}")

    async def reset_channel(self, channel_id: str, key: str) -> bool:
        SPECS[key]  # an unknown key is a programming error: KeyError
        return bool(await self._redis.hdel(channel_key(channel_id), key))

    async def channel_values(self, channel_id: str) -> dict[str, ChannelValue]:
        raw = await self._redis.hgetall(channel_key(channel_id))
        return _parse_channel(channel_key(channel_id), _pairs(raw.items()))

    # -- everything for one generation ---------------------------------------------------------
    async def read_levels(
        self,
        *,
        user_id: str,
        personality_slug: str | None,
        channel_id: str | None,
        parent_channel_id: str | None = None,
        preset_refs: Iterable[str] = (),
    ) -> Levels:
        """Every level of one user, character and channel (and the presets they or
        `preset_refs` name), in one Redis round trip."""
        slug = personality_slug or ""
        wanted = [s for s in (_slug(ref) for ref in preset_refs) if s]
        user_flat, channel_flat, parent_flat, presets_flat = await self._read_levels(
            keys=[
                user_key(user_id),
                channel_key(channel_id) if channel_id else "",
                channel_key(parent_channel_id) if parent_channel_id else "",
                PRESETS.key(),
            ],
            args=[slug, *wanted],
        )
        user, per_character = {}, {}
        for name, raw in _pairs(_by_two(user_flat)):
            if "/" in name:
                per_character[name.partition("/")[2]] = raw
            else:
                user[name] = raw
        return Levels(
            user=_parse_values(user_key(user_id), user.items()),
            user_character=_parse_values(user_key(user_id), per_character.items()),
            channel=_parse_channel(channel_id or "", _pairs(_by_two(channel_flat))),
            parent_channel=_parse_channel(parent_channel_id or "", _pairs(_by_two(parent_flat))),
            presets={
                slug: preset
                for slug, raw in _pairs(_by_two(presets_flat))
                if (preset := parse_preset(slug, raw)) is not None
            },
        )


@functools.lru_cache(maxsize=1024)
def _slug(ref: str) -> str:
    return slugify(ref)


def _user_field(key: str, personality: str | None) -> str:
    return f"{personality}/{key}" if personality else key


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _by_two(flat: list[bytes | str]) -> Iterable[tuple[bytes | str, bytes | str]]:
    return zip(flat[::2], flat[1::2], strict=True)


def _pairs(
    items: Iterable[tuple[bytes | str, bytes | str | None]],
) -> list[tuple[str, str]]:
    return [(_text(name), _text(raw)) for name, raw in items if raw is not None]


def _parse_values(
    where: str, items: Iterable[tuple[str, bytes | str | None]]
) -> dict[str, SettingValue]:
    found: dict[str, SettingValue] = {}
    for key, raw in items:
        if raw is None:
            continue
        value = _parse_one(where, key, _text(raw))
        if value is not None:
            found[key] = value
    return found


def _parse_channel(where: str, items: Iterable[tuple[str, str]]) -> dict[str, ChannelValue]:
    found: dict[str, ChannelValue] = {}
    for key, raw in items:
        flag, sep, text = raw.partition("|")
        value = _parse_one(where, key, text) if sep and flag in {"0", "1"} else None
        if value is not None:
            found[key] = ChannelValue(value, enforce=flag == "1")
    return found


def _parse_one(where: str, key: str, text: str) -> SettingValue | None:
    value = _parse_text(key, text)
    if value is _INVALID:
        log.warning("invalid setting in redis ignored", key=where, setting=key)
        return None
    return value


_INVALID = "\x00invalid"


@functools.lru_cache(maxsize=4096)
def _parse_text(key: str, text: str) -> SettingValue | None:
    """Parsing is pure and the same few values come back on every generation: cached."""
    spec = SPECS.get(key)
    if spec is None:
        return None  # a setting removed since, or a field written by someone else
    try:
        return spec.parse(text)
    except SettingError:
        return _INVALID


def channel_view(values: Mapping[str, ChannelValue]) -> dict[str, SettingValue]:
    """Just the values of a channel level (for display)."""
    return {key: item.value for key, item in values.items()}
