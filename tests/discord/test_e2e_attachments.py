"""End to end: images, voice messages and files posted to a character, through the emulator
(its CDN serves the bytes), the worker, the `image-`/`audio-` jobs and the fake LLM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.attachments.samples import ogg_opus, png
from tests.emulator import DiscordEmulator
from tests.fixtures.bot import character_reply
from tests.fixtures.fake_llm import FakeLLM, Step

pytestmark = pytest.mark.timeout(120)

IRIS_TOML = """
name = "Iris"
display_name = "Iris"
model = "openai/gpt-4o"
system_prompt = "You are Iris, who sees everything."
"""


def env(emu: DiscordEmulator, **extra: str) -> dict[str, str]:
    return {"ATTACHMENT_HOSTS": emu.cdn_host, **extra}


def user_turn(fake_llm: FakeLLM, call: int = -1) -> str:
    """The new user message of a reply's model call (its text part)."""
    content = fake_llm.chat_calls[call].json["messages"][-1]["content"]  # type: ignore[index]
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if p.get("type") == "text")
    return str(content)


async def test_a_character_that_can_see_gets_the_image_itself(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM, personalities_dir: Path
) -> None:
    (personalities_dir / "iris.toml").write_text(IRIS_TOML)
    emu = discord_emulator
    await start_bot(**env(emu))
    alice = emu.add_user("alice")
    photo = emu.upload("cat.png", png(64, 48), "image/png")

    await emu.post_message(emu.channel, alice, "@Iris what is this?", attachments=[photo])
    await character_reply(emu, emu.channel, 1)

    (call,) = fake_llm.chat_calls
    assert call.model == "gpt-4o"
    (image,) = call.images
    assert image.startswith("data:image/png;base64,")
    assert "[image: cat.png]" in user_turn(fake_llm)


async def test_a_character_that_cannot_see_gets_a_description_from_the_vision_chain(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(**env(emu, VISION_MODEL="openai/vision-one,openai/vision-two"))
    alice = emu.add_user("alice")
    # The first vision model is down; the second describes; then Lilith answers.
    fake_llm.script(Step(status=500), Step(content="A grey cat asleep on a keyboard."))

    photo = emu.upload("cat.png", png(), "image/png")
    await emu.post_message(emu.channel, alice, "@Lilith look at her", attachments=[photo])
    await character_reply(emu, emu.channel, 1)

    vision_one, vision_two, reply = fake_llm.chat_calls
    assert (vision_one.model, vision_two.model, reply.model) == (
        "vision-one", "vision-two", "fake-model",
    )  # fmt: skip
    assert vision_two.images and not reply.images
    described = "[image cat.png, described: A grey cat asleep on a keyboard.]"
    assert described in user_turn(fake_llm)

    # The same picture again (a new upload, the same bytes): described from the cache.
    again = emu.upload("same-cat.png", png(), "image/png")
    await emu.post_message(emu.channel, alice, "@Lilith and now?", attachments=[again])
    await character_reply(emu, emu.channel, 2)
    assert len(fake_llm.chat_calls) == 4
    assert "[image same-cat.png, described: A grey cat asleep" in user_turn(fake_llm)
    # The description stays in the history, as text.
    history = [m["content"] for m in fake_llm.chat_calls[-1].json["messages"][1:-1]]  # type: ignore[index]
    assert any(described in str(turn) for turn in history)


async def test_an_image_no_model_can_describe_is_said_so(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(**env(emu, VISION_MODEL="openai/vision-one"))
    alice = emu.add_user("alice")
    fake_llm.script(Step(status=503), Step(status=503))  # both runs of the image- job

    photo = emu.upload("cat.png", png(), "image/png")
    await emu.post_message(emu.channel, alice, "@Lilith look", attachments=[photo])
    reply = await character_reply(emu, emu.channel, 1)

    assert "[cat.png was not read:" in user_turn(fake_llm)  # the character is told, and says so
    assert reply.content.startswith("reply to: ")


async def test_a_voice_message_is_transcribed_into_the_turn(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(**env(emu, TRANSCRIPTION_MODEL="openai/whisper-1"))
    alice = emu.add_user("alice")
    await emu.post_message(emu.channel, alice, "@Lilith hello")
    first = await character_reply(emu, emu.channel, 1)

    voice = emu.upload("voice-message.ogg", ogg_opus("I adopted a kitten today"), "audio/ogg",
                       duration_secs=2.5, waveform="AAAA")  # fmt: skip
    await emu.post_message(emu.channel, alice, "", reply_to=first, attachments=[voice], voice=True)
    await character_reply(emu, emu.channel, 2)

    (transcription,) = fake_llm.transcription_calls
    assert transcription.model == "whisper-1"
    assert "[voice message, transcribed: I adopted a kitten today]" in user_turn(fake_llm)


async def test_voice_transcription_off_names_the_voice_message_only(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(**env(emu, TRANSCRIPTION_MODEL="openai/whisper-1"))
    alice = emu.add_user("alice")
    interaction = await emu.slash_command(
        emu.channel, alice, "settings set", {"setting": "voice_transcription", "value": "off"}
    )
    await interaction.wait_for_content(timeout=10)

    voice = emu.upload("voice-message.ogg", ogg_opus("secret words"), "audio/ogg")
    await emu.post_message(emu.channel, alice, "@Lilith listen", attachments=[voice], voice=True)
    await character_reply(emu, emu.channel, 1)

    assert fake_llm.transcription_calls == []
    assert "[voice message: not transcribed (voice transcription is off)]" in user_turn(fake_llm)
    assert "secret words" not in user_turn(fake_llm)


async def test_a_text_file_is_read_into_the_turn_with_its_name(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    await start_bot(**env(emu))
    alice = emu.add_user("alice")
    notes = emu.upload("notes.md", b"# Plans\n- visit Lisbon\n- ```code``` too\n",
                       "text/markdown")  # fmt: skip

    await emu.post_message(emu.channel, alice, "@Lilith read my notes", attachments=[notes])
    await character_reply(emu, emu.channel, 1)

    turn = user_turn(fake_llm)
    assert "[file notes.md]" in turn
    assert "- visit Lisbon" in turn
    assert "````" in turn  # a fence longer than the file's own backticks


async def test_hostile_attachments_get_a_clear_note_and_nothing_else_is_fetched(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM, personalities_dir: Path
) -> None:
    (personalities_dir / "iris.toml").write_text(IRIS_TOML)
    emu = discord_emulator
    await start_bot(**env(emu, MAX_ATTACHMENT_BYTES="65536"))
    alice = emu.add_user("alice")
    html = emu.upload("cat.png", b"<!doctype html><script>alert(1)</script>", "image/png")
    bomb = emu.upload("notes.txt", b"PK\x03\x04" + b"\x00" * 60, "text/plain")
    empty = emu.upload("empty.txt", b"", "text/plain")
    huge = emu.upload("huge.png", png(), "image/png", size=50 * 1024 * 1024)
    elsewhere = emu.upload("away.png", png(), "image/png",
                           redirect_to="http://127.0.0.1:9/stolen.png")  # fmt: skip

    await emu.post_message(
        emu.channel,
        alice,
        "@Iris what are these?",
        attachments=[html, bomb, empty, huge, elsewhere],
    )
    reply = await character_reply(emu, emu.channel, 1)

    turn = user_turn(fake_llm)
    assert "[file cat.png: not read (an HTML page)]" in turn
    assert "[file notes.txt: not read (a zip archive)]" in turn
    assert "[empty.txt was not read:" in turn
    assert "[huge.png was not read:" in turn
    assert "[away.png was not read:" in turn
    assert fake_llm.chat_calls[-1].images == []
    assert "alert(1)" not in turn
    assert reply.content.startswith("reply to: ")
    assert not any("stolen" in path for path in emu.cdn_fetches)
