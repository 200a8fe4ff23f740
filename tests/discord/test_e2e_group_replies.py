"""End to end: `group_replies`. On, characters mentioned together answer one after another,
each with the replies before it in view; off (the default), they answer side by side, as
before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.emulator import DiscordEmulator
from tests.fixtures.fake_llm import FakeLLM, Step
from tzurot.app import Application
from tzurot.settings.store import SettingsStore

pytestmark = pytest.mark.timeout(120)

BOB_TOML = """
name = "Bob"
display_name = "Bob the Builder"
system_prompt = "You are Bob, a cheerful builder."
"""


def contents(fake_llm: FakeLLM, index: int) -> list[str]:
    messages = fake_llm.chat_calls[index].json["messages"]  # type: ignore[index]
    return [str(m["content"]) for m in messages]


async def test_with_group_replies_the_second_character_sees_the_first_reply(
    discord_emulator: DiscordEmulator,
    start_bot: Any,
    fake_llm: FakeLLM,
    personalities_dir: Path,
) -> None:
    (personalities_dir / "bob.toml").write_text(BOB_TOML)
    emu = discord_emulator
    app: Application = await start_bot()
    assert app.redis is not None
    alice = emu.add_user("alice")
    await SettingsStore(app.redis).set_user(str(alice.id), "group_replies", True)
    # Lilith is slow; Bob still waits for her reply before he starts.
    fake_llm.script(Step(content="Lilith says hello.", delay=1.0), Step(content="Bob agrees!"))

    await emu.post_message(emu.channel, alice, "@Lilith and @Bob, hello both")
    first, second = await emu.wait_for_messages(emu.channel, 2, timeout=30)

    assert (first.username, first.content) == ("Lilith the Wise", "Lilith says hello.")
    assert (second.username, second.content) == ("Bob the Builder", "Bob agrees!")
    assert len(fake_llm.chat_calls) == 2
    lilith, bob = contents(fake_llm, 0), contents(fake_llm, 1)
    assert lilith[-1] == "alice: @Lilith and @Bob, hello both"
    # Bob's prompt: the message, then Lilith's reply to it.
    assert bob[-2:] == [
        "alice: @Lilith and @Bob, hello both",
        "Lilith the Wise: Lilith says hello.",
    ]


async def test_without_group_replies_characters_answer_side_by_side(
    discord_emulator: DiscordEmulator,
    start_bot: Any,
    fake_llm: FakeLLM,
    personalities_dir: Path,
) -> None:
    (personalities_dir / "bob.toml").write_text(BOB_TOML)
    emu = discord_emulator
    await start_bot()
    alice = emu.add_user("alice")
    fake_llm.script(Step(content="Lilith says hello.", delay=1.0), Step(content="Bob agrees!"))

    await emu.post_message(emu.channel, alice, "@Lilith and @Bob, hello both")
    first, second = await emu.wait_for_messages(emu.channel, 2, timeout=30)

    assert (first.username, second.username) == ("Lilith the Wise", "Bob the Builder")
    for index in (0, 1):
        prompt = contents(fake_llm, index)
        assert prompt[-1] == "alice: @Lilith and @Bob, hello both"
        assert not any("Lilith says hello." in text for text in prompt)
