"""The preparer against the emulator's CDN (files fetched for real, over loopback) with a fake
MediaRunner; the background jobs' describe/transcribe functions with the fake LLM; and the
emulator's voice messages as hikari reads them."""

from __future__ import annotations

import base64

import hikari
import pytest

from tests.attachments import samples
from tests.emulator.hikari_helpers import Events, make_gateway_bot, running_bot
from tests.emulator.models import Attachment
from tests.emulator.server import DiscordEmulator
from tests.fixtures.fake_llm import FakeLLM, Step
from tzurot.ai.errors import ErrorCategory, ProviderError
from tzurot.attachments.media import data_url
from tzurot.attachments.models import AttachmentRef, MediaError, TurnPart
from tzurot.attachments.prepare import (
    MAX_TEXT_FILE_BYTES,
    AttachmentPreparer,
    declared_kind,
    describe_attachment,
    transcribe_attachment,
)

MAX_BYTES = 64 * 1024


class FakeRunner:
    """A MediaRunner: answers from `descriptions` / `transcripts`, or raises what it is given."""

    def __init__(self, *, describe: str | Exception = "a cat", transcribe: str | Exception = "hi"):
        self.describe_with = describe
        self.transcribe_with = transcribe
        self.described: list[AttachmentRef] = []
        self.transcribed: list[AttachmentRef] = []

    async def describe(self, ref: AttachmentRef) -> str:
        self.described.append(ref)
        if isinstance(self.describe_with, Exception):
            raise self.describe_with
        return self.describe_with

    async def transcribe(self, ref: AttachmentRef) -> str:
        self.transcribed.append(ref)
        if isinstance(self.transcribe_with, Exception):
            raise self.transcribe_with
        return self.transcribe_with


def ref_of(file: Attachment, *, voice: bool = False) -> AttachmentRef:
    """What the message path builds from Discord's attachment payload."""
    return AttachmentRef(
        id=str(file.id), url=file.url, filename=file.filename, content_type=file.content_type,
        size=file.size, voice=voice, duration_s=file.duration_secs,
    )  # fmt: skip


def preparer(
    emu: DiscordEmulator, *, max_text_bytes: int = MAX_TEXT_FILE_BYTES, max_text_chars: int = 20_000
) -> AttachmentPreparer:
    return AttachmentPreparer(
        allowed_hosts=[emu.cdn_host], max_bytes=MAX_BYTES, timeout=5,
        max_text_bytes=max_text_bytes, max_text_chars=max_text_chars,
    )  # fmt: skip


async def prepare_one(
    emu: DiscordEmulator,
    file: Attachment | AttachmentRef,
    *,
    can_see: bool = True,
    transcribe: bool = True,
    media: FakeRunner | None = None,
    voice: bool = False,
    **kw: int,
) -> TurnPart:
    ref = file if isinstance(file, AttachmentRef) else ref_of(file, voice=voice)
    parts = await preparer(emu, **kw).prepare(
        [ref], can_see=can_see, transcribe=transcribe, media=media or FakeRunner()
    )
    assert len(parts) == 1
    return parts[0]


# --- the routes --------------------------------------------------------------------------------


async def test_a_seeing_model_gets_the_image(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    data = samples.png(32, 16)
    runner = FakeRunner()
    part = await prepare_one(emu, emu.upload("cat.png", data, "image/png"), media=runner)
    assert part == TurnPart(
        filename="cat.png", kind="image", text="[image: cat.png]",
        image_url=data_url(data, "image/png"),
    )  # fmt: skip
    assert not runner.described
    assert len(emu.cdn_fetches) == 1


async def test_otherwise_the_image_is_described(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    runner = FakeRunner(describe="A grey cat asleep.")
    file = emu.upload("cat.webp", samples.webp_lossy(), "image/webp")
    part = await prepare_one(emu, file, can_see=False, media=runner)
    assert part.text == "[image cat.webp, described: A grey cat asleep.]"
    assert (part.kind, part.ok, part.image_url) == ("image", True, None)
    assert runner.described == [ref_of(file)]
    assert emu.cdn_fetches == []  # the runner's job fetches it


async def test_a_voice_message_is_transcribed(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    runner = FakeRunner(transcribe="see you at eight")
    file = emu.upload(
        "voice-message.ogg", samples.ogg_opus(), "audio/ogg", duration_secs=2.5, waveform="AAAA"
    )
    part = await prepare_one(emu, file, voice=True, media=runner)
    assert part.text == "[voice message, transcribed: see you at eight]"
    assert (part.kind, part.ok) == ("audio", True)
    assert runner.transcribed[0].voice and runner.transcribed[0].duration_s == 2.5

    off = await prepare_one(emu, file, voice=True, transcribe=False, media=runner)
    assert off.text == "[voice message: not transcribed (voice transcription is off)]"
    assert not off.ok and len(runner.transcribed) == 1


async def test_an_audio_file_is_transcribed(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    part = await prepare_one(emu, emu.upload("memo.mp3", samples.mp3(), "audio/mpeg"))
    assert part.text == "[audio memo.mp3, transcribed: hi]"


async def test_audio_behind_a_misleading_name_is_found_by_its_bytes(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    runner = FakeRunner(transcribe="hidden words")
    part = await prepare_one(emu, emu.upload("clip.bin", samples.wav(), None), media=runner)
    assert part.text == "[audio clip.bin, transcribed: hidden words]"
    image = await prepare_one(emu, emu.upload("notes.txt", samples.gif(), "text/plain"))
    assert image.kind == "image" and image.image_url is not None


async def test_text_files_are_read_fence_safe(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    body = "# Notes\r\nsome ```code``` and ```` four\n\x1b[31mred\x1b[0m 👩‍💻\n"
    part = await prepare_one(emu, emu.upload("notes.md", body.encode(), "text/markdown"))
    fence = "`````"
    content = "# Notes\nsome ```code``` and ```` four\n[31mred[0m 👩‍💻"
    assert part.text == f"[file notes.md]\n{fence}\n{content}\n{fence}"
    assert (part.kind, part.ok) == ("text", True)


async def test_long_text_files_are_cut(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    body = ("line of text\n" * 3000).encode()
    part = await prepare_one(emu, emu.upload("log.txt", body, "text/plain"), max_text_chars=100)
    assert part.text.startswith("[file log.txt (only its first 100 characters)]\n```\n")
    assert len(part.text) < 200


@pytest.mark.parametrize(
    ("filename", "data", "content_type", "label"),
    [
        ("x.zip", samples.zip_archive(), "application/zip", "a zip archive"),
        ("bomb.zip", samples.zip_bomb(), "application/zip", "a zip archive"),
        ("notes.txt", samples.zip_archive(), "text/plain", "a zip archive"),
        ("a.txt.gz", samples.gzip_file(), "application/gzip", "a gzip archive"),
        ("cat.png", samples.HTML, "image/png", "an HTML page"),
        ("doc.pdf", samples.PDF, "application/pdf", "a PDF document"),
        ("logo.svg", samples.SVG, "image/svg+xml", "an SVG image"),
        ("run.exe", b"MZ\x90\x00\x03", None, "a Windows program"),
    ],
)
async def test_other_files_are_named_not_read(
    discord_emulator: DiscordEmulator, filename: str, data: bytes, content_type: str, label: str
) -> None:
    part = await prepare_one(
        discord_emulator, discord_emulator.upload(filename, data, content_type)
    )
    text = f"[file {filename}: not read ({label})]"
    assert (part.text, part.ok, part.image_url) == (text, False, None)


async def test_html_named_png_is_never_described(discord_emulator: DiscordEmulator) -> None:
    # Delegated (the model cannot see): the job refuses it by its bytes (see below).
    emu = discord_emulator
    runner = FakeRunner(describe=MediaError("it is not an image (an HTML page)"))
    part = await prepare_one(
        emu, emu.upload("cat.png", samples.HTML, "image/png"), can_see=False, media=runner
    )
    assert part.text == "[cat.png was not read: it is not an image (an HTML page)]"
    assert not part.ok


# --- hostile input -----------------------------------------------------------------------------


async def test_empty_files(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    part = await prepare_one(emu, emu.upload("empty.txt", b"", "text/plain"))
    assert (part.text, part.ok) == ("[empty.txt was not read: the file is empty]", False)
    assert emu.cdn_fetches == []
    lying = await prepare_one(emu, emu.upload("e.png", b"", "image/png", size=100))
    assert lying.text == "[e.png was not read: the file is empty]"


async def test_oversized_files(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    big = samples.png() + b"\x00" * MAX_BYTES
    said = await prepare_one(emu, emu.upload("big.png", big, "image/png"))
    assert said.text == "[big.png was not read: the file is larger than 64 KiB]"
    assert emu.cdn_fetches == []  # Discord said so: not even fetched
    lying = await prepare_one(emu, emu.upload("small.png", big, "image/png", size=10))
    assert lying.text == "[small.png was not read: the file is larger than 64 KiB]"
    text = await prepare_one(emu, emu.upload("huge.txt", b"a" * 5000, "text/plain"),
                             max_text_bytes=4096)  # fmt: skip
    assert text.text == "[huge.txt was not read: the file is larger than 4 KiB]"


async def test_a_redirect_off_the_cdn_is_not_followed(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    file = emu.upload("cat.png", samples.png(), "image/png", redirect_to="http://evil.example/x")
    part = await prepare_one(emu, file)
    assert part.text == (
        "[cat.png was not read: the file server redirected somewhere else; not followed]"
    )
    outside = AttachmentRef(url="https://evil.example/cat.png", filename="cat.png", size=10)
    part = await prepare_one(emu, outside)
    assert part.text == "[cat.png was not read: that file is not on Discord's attachment servers]"


async def test_huge_dimensions_are_refused(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    part = await prepare_one(
        emu, emu.upload("wide.png", samples.png(100_000, 100_000), "image/png")
    )
    assert not part.ok and part.image_url is None
    assert "100000 x 100000 pixels" in part.text
    damaged = await prepare_one(emu, emu.upload("d.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30))
    assert damaged.text == "[d.png was not read: the image's header is damaged]"


async def test_runner_failures_become_notices(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    image = emu.upload("cat.png", samples.png(), "image/png")
    voice = emu.upload("voice-message.ogg", samples.ogg_opus(), "audio/ogg")
    runner = FakeRunner(
        describe=ProviderError(ErrorCategory.RATE_LIMIT), transcribe=RuntimeError("sk-secret")
    )
    parts = await preparer(emu).prepare(
        [ref_of(image), ref_of(voice, voice=True)], can_see=False, transcribe=True, media=runner
    )
    assert [p.text for p in parts] == [
        "[cat.png was not read: The model provider is rate limiting requests.]",
        "[voice message was not read: something went wrong while reading it]",
    ]
    assert all(not p.ok for p in parts)
    runner = FakeRunner(describe="   ", transcribe="")
    parts = await preparer(emu).prepare(
        [ref_of(image), ref_of(voice, voice=True)], can_see=False, transcribe=True, media=runner
    )
    assert [p.text for p in parts] == [
        "[cat.png was not read: its description came back empty]",
        "[voice message was not read: no speech was recognised]",
    ]


async def test_many_attachments_keep_their_order(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    files = [
        emu.upload("a.txt", b"alpha", "text/plain"),
        emu.upload("b.zip", samples.zip_archive(), "application/zip"),
        emu.upload("c.png", samples.png(), "image/png"),
        emu.upload("d.ogg", samples.ogg_opus(), "audio/ogg"),
    ]
    parts = await preparer(emu).prepare(
        [ref_of(f) for f in files], can_see=True, transcribe=True, media=FakeRunner()
    )
    assert [p.filename for p in parts] == ["a.txt", "b.zip", "c.png", "d.ogg"]
    assert [p.kind for p in parts] == ["text", "other", "image", "audio"]
    assert await preparer(emu).prepare([], can_see=True, transcribe=True, media=FakeRunner()) == []


def test_declared_kinds() -> None:
    def kind(name: str, content_type: str | None = None, *, voice: bool = False) -> str:
        ref = AttachmentRef(url="http://x/a", filename=name, content_type=content_type, size=1,
                            voice=voice)  # fmt: skip
        return declared_kind(ref)

    assert kind("a.png") == kind("x", "image/jpeg") == "image"
    assert kind("a.ogg") == kind("x", "audio/ogg; codecs=opus") == kind("x", voice=True) == "audio"
    assert kind("a.md") == kind("x", "text/plain") == "text"
    assert kind("x.svg", "image/svg+xml") == kind("a.zip") == kind("x", "text/html") == "other"


# --- what the background jobs call, with the fake LLM ------------------------------------------


async def test_describe_attachment(discord_emulator: DiscordEmulator, fake_llm: FakeLLM) -> None:
    emu = discord_emulator
    data = samples.jpeg(40, 30)
    ref = ref_of(emu.upload("photo.jpg", data, "image/jpeg"))
    fake_llm.script(Step(status=500), Step(content="A beach at sunset."))

    class Cache:
        def __init__(self) -> None:
            self.saved: dict[str, str] = {}

        async def get(self, key: str) -> str | None:
            return self.saved.get(key)

        async def put(self, key: str, text: str) -> None:
            self.saved[key] = text

    cache = Cache()
    options = {
        "allowed_hosts": [emu.cdn_host], "max_bytes": MAX_BYTES,
        "models": ["openai/vision-a", "openai/vision-b"], "api_base": fake_llm.base_url,
        "api_key": "sk-test-key-000", "timeout": 5.0, "cache": cache,
    }  # fmt: skip
    assert await describe_attachment(ref, **options) == "A beach at sunset."  # type: ignore[arg-type]
    assert fake_llm.chat_calls[-1].images == [data_url(data, "image/jpeg")]
    (key,) = cache.saved
    assert key.startswith("image:") and len(key) == len("image:") + 64
    # The same bytes again: the cached description, no model call.
    assert await describe_attachment(ref, **options) == "A beach at sunset."  # type: ignore[arg-type]
    assert len(fake_llm.chat_calls) == 2

    html = ref_of(emu.upload("cat.png", samples.HTML, "image/png"))
    with pytest.raises(MediaError, match=r"not an image \(an HTML page\)"):
        await describe_attachment(html, **options)  # type: ignore[arg-type]
    wide = ref_of(emu.upload("wide.gif", samples.gif(60000, 2), "image/gif"))
    with pytest.raises(MediaError, match="pixels"):
        await describe_attachment(wide, **options)  # type: ignore[arg-type]
    away = ref_of(
        emu.upload("x.png", samples.png(), "image/png", redirect_to="http://evil.example")
    )
    with pytest.raises(MediaError, match="redirected somewhere else"):
        await describe_attachment(away, **options)  # type: ignore[arg-type]
    assert len(fake_llm.chat_calls) == 2


async def test_transcribe_attachment(discord_emulator: DiscordEmulator, fake_llm: FakeLLM) -> None:
    emu = discord_emulator
    data = samples.ogg_opus("remember to buy milk")
    ref = ref_of(emu.upload("my song.mp3", data, "audio/mpeg"), voice=True)
    options = {
        "allowed_hosts": [emu.cdn_host], "max_bytes": MAX_BYTES, "model": "openai/whisper-1",
        "api_base": fake_llm.base_url, "api_key": "sk-test-key-000", "timeout": 5.0,
    }  # fmt: skip
    assert await transcribe_attachment(ref, **options) == "remember to buy milk"  # type: ignore[arg-type]
    call = fake_llm.transcription_calls[0]
    assert (call.filename, call.size, call.model) == ("audio.ogg", len(data), "whisper-1")

    text = ref_of(emu.upload("voice.ogg", b"not audio at all", "audio/ogg"))
    with pytest.raises(MediaError, match="not audio"):
        await transcribe_attachment(text, **options)  # type: ignore[arg-type]
    empty = ref_of(emu.upload("voice.ogg", b"", "audio/ogg"))
    with pytest.raises(MediaError, match="empty"):
        await transcribe_attachment(empty, **options)  # type: ignore[arg-type]
    fake_llm.fail_transcriptions(1, status=500)
    with pytest.raises(ProviderError) as caught:
        await transcribe_attachment(ref, **options)  # type: ignore[arg-type]
    assert caught.value.retryable
    assert len(fake_llm.transcription_calls) == 2


# --- the emulator's voice messages -------------------------------------------------------------


async def test_emulator_voice_messages_reach_hikari(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    user = emu.add_user("alice")
    waveform = base64.b64encode(bytes(range(0, 256, 4))).decode()
    clip = emu.upload(
        "voice-message.ogg", samples.ogg_opus(), "audio/ogg", duration_secs=3.25,
        waveform=waveform,
    )  # fmt: skip
    bot = make_gateway_bot(emu)
    events = Events(bot, hikari.GuildMessageCreateEvent)
    async with running_bot(bot, emu):
        message = await emu.post_message(emu.channel, user, "", attachments=[clip], voice=True)
        plain = await emu.post_message(emu.channel, user, "hello", attachments=[clip])
        first, second = await events.next(), await events.next()
    assert message.flags & hikari.MessageFlag.IS_VOICE_MESSAGE and not plain.flags
    assert first.message.flags & hikari.MessageFlag.IS_VOICE_MESSAGE
    assert not second.message.flags & hikari.MessageFlag.IS_VOICE_MESSAGE
    (attachment,) = first.message.attachments
    assert (attachment.duration, attachment.waveform) == (3.25, waveform)
    assert attachment.url == clip.url
    plain_upload = emu.upload("a.txt", b"x", "text/plain")
    assert "duration_secs" not in plain_upload.payload()
