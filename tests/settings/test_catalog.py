"""Every setting's parser: accepted forms, ranges, and hostile text."""

import pytest

from tzurot.settings import SETTING_KEYS, SettingDefaults, SettingError, parse_setting, spec_for

DESIGN_KEYS = (
    "model", "preset", "temperature", "top_p", "max_tokens", "history_limit", "memory",
    "streaming", "voice_transcription", "regenerate_on_edit", "group_replies",
)  # fmt: skip


def test_the_keys_are_design_md_s() -> None:
    assert set(SETTING_KEYS) == set(DESIGN_KEYS)


@pytest.mark.parametrize("key", ["memory", "streaming", "voice_transcription",
                                 "regenerate_on_edit", "group_replies"])  # fmt: skip
def test_booleans_take_on_off_true_false(key: str) -> None:
    for text, value in [("on", True), ("OFF", False), ("true", True), ("False", False),
                        (" yes ", True), ("0", False)]:  # fmt: skip
        assert parse_setting(key, text)[1] is value
    with pytest.raises(SettingError, match="on or off"):
        parse_setting(key, "maybe")


@pytest.mark.parametrize(
    ("key", "low", "high", "below", "above"),
    [
        ("temperature", "0", "2", "-0.01", "2.01"),
        ("top_p", "0", "1", "-1", "1.5"),
        ("max_tokens", "1", "200000", "0", "200001"),
        ("history_limit", "0", "500", "-1", "501"),
    ],
)
def test_numbers_are_checked_against_their_range(
    key: str, low: str, high: str, below: str, above: str
) -> None:
    assert parse_setting(key, low)[1] == float(low)
    assert parse_setting(key, high)[1] == float(high)
    for bad in (below, above):
        with pytest.raises(SettingError, match=f"`{key}` must be from"):
            parse_setting(key, bad)


def test_numbers_refuse_what_is_not_a_finite_number_and_integers_refuse_fractions() -> None:
    assert parse_setting("temperature", "0,9")[1] == 0.9  # a decimal comma is forgiven
    for bad in ("nan", "inf", "-inf", "1e999", "abc", "0x10", "1.2.3"):
        with pytest.raises(SettingError):
            parse_setting("temperature", bad)
    with pytest.raises(SettingError, match="whole number"):
        parse_setting("max_tokens", "10.5")
    value = parse_setting("max_tokens", "100.0")[1]
    assert value == 100 and isinstance(value, int)


def test_models_need_litellm_s_shape_or_to_be_known() -> None:
    assert parse_setting("model", "openrouter/anthropic/claude-haiku-4.5")[1] == (
        "openrouter/anthropic/claude-haiku-4.5"
    )
    assert parse_setting("model", "gpt-4o", known_model={"gpt-4o"}.__contains__)[1] == "gpt-4o"
    for bad in ("gpt 4o", "no-provider", "/model", "openai//x", "a" * 250 + "/x",
                "openai/x;rm -rf", "<@123>/x", "openai/x\u200b"):  # fmt: skip
        with pytest.raises(SettingError):
            parse_setting("model", bad)


def test_presets_come_back_as_slugs() -> None:
    assert parse_setting("preset", "Creative Writing")[1] == "creative-writing"
    with pytest.raises(SettingError):
        parse_setting("preset", "!!!")


@pytest.mark.parametrize(
    "hostile",
    ["", "   ", "x" * 301, "on\x00", "\u202eon", "@everyone", "`on`", "on\nline"],
)
def test_hostile_values_are_refused_with_a_message(hostile: str) -> None:
    with pytest.raises(SettingError) as caught:
        parse_setting("memory", hostile)
    message = str(caught.value)
    assert message and len(message) < 300 and "@everyone" not in message


def test_unknown_setting_names_list_the_real_ones() -> None:
    with pytest.raises(SettingError, match="temperature"):
        spec_for("temprature")
    assert spec_for(" Max-Tokens ").key == "max_tokens"


def test_built_in_defaults() -> None:
    values = SettingDefaults(model="openai/x", history_limit=12).values()
    assert values["model"] == "openai/x" and values["history_limit"] == 12
    assert values["temperature"] == 0.7 and values["max_tokens"] == 4096
    assert values["memory"] is True and values["streaming"] is True
    assert values["voice_transcription"] is True
    assert values["regenerate_on_edit"] is False and values["group_replies"] is False
    assert values["top_p"] is None and values["preset"] is None
