"""Sniffing files by their bytes, image header checks, and the attachment models' cleaning."""

from __future__ import annotations

import struct

import pytest
from pydantic import ValidationError

from tests.attachments import samples
from tzurot.attachments.kinds import MAX_IMAGE_SIDE, check_image, image_size, sniff
from tzurot.attachments.models import AttachmentRef, MediaError, clean_filename


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "kind", "mime"),
    [
        (samples.png(), "a.png", "image/png", "image", "image/png"),
        (samples.png(), "a.txt", "text/plain", "image", "image/png"),  # the bytes win
        (samples.jpeg(), "photo", None, "image", "image/jpeg"),
        (samples.gif(), "x.bin", "application/octet-stream", "image", "image/gif"),
        (samples.webp_lossy(), "w.webp", None, "image", "image/webp"),
        (samples.ogg_opus(), "voice-message.ogg", "audio/ogg", "audio", "audio/ogg"),
        (samples.ogg_vorbis(), "song.ogg", None, "audio", "audio/ogg"),
        (samples.mp3(), "song.mp3", None, "audio", "audio/mpeg"),
        (samples.mp3_id3(), "song.mp3", None, "audio", "audio/mpeg"),
        (samples.wav(), "a.wav", None, "audio", "audio/wav"),
        (samples.flac(), "a.flac", None, "audio", "audio/flac"),
        (samples.m4a(), "a.m4a", None, "audio", "audio/mp4"),
        (samples.webm(), "a.webm", None, "audio", "audio/webm"),
        ("# notes\nhello ✓\n".encode(), "notes.md", None, "text", "text/plain"),
        (b"print('hi')\n", "x.py", "application/octet-stream", "text", "text/plain"),
        (b"a,b\n1,2\n", "data", "text/csv; charset=utf-8", "text", "text/plain"),
        (b"BMW is a car\n", "cars.txt", None, "text", "text/plain"),  # not a BMP
        (b"\xef\xbb\xbfwith a BOM", "bom.txt", None, "text", "text/plain"),
        (b"just words", "x.bin", "application/octet-stream", "other", None),  # not declared
        (samples.HTML, "cat.png", "image/png", "other", None),
        (samples.HTML, "page.txt", "text/html", "other", None),
        (samples.SVG, "logo.svg", "image/svg+xml", "other", None),
        (samples.zip_archive(), "notes.txt", "text/plain", "other", None),
        (samples.zip_bomb(), "bomb.zip", "application/zip", "other", None),
        (samples.gzip_file(), "notes.txt.gz", "application/gzip", "other", None),
        (samples.PDF, "doc.pdf", "application/pdf", "other", None),
        (samples.heic(), "photo.heic", "image/heic", "other", None),
        (b"\x00\x01\x02 binary", "x.txt", "text/plain", "other", None),  # NUL: not text
        (b"\xff\xfe bad utf-8 \xc3", "x.txt", "text/plain", "other", None),
        (b"", "empty.txt", "text/plain", "other", None),
    ],
)
def test_sniffing(
    data: bytes, filename: str, content_type: str | None, kind: str, mime: str | None
) -> None:
    found = sniff(data, filename=filename, content_type=content_type)
    assert (found.kind, found.mime) == (kind, mime)


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (samples.zip_archive(), "a zip archive"),
        (samples.gzip_file(), "a gzip archive"),
        (samples.HTML, "an HTML page"),
        (samples.SVG, "an SVG image"),
        (samples.PDF, "a PDF document"),
        (b"", "an empty file"),
        (b"\x00\x9f\x92\x96 random", "a file of an unknown type"),
    ],
)
def test_labels(data: bytes, label: str) -> None:
    assert sniff(data, filename="x.bin").label == label


def test_audio_extensions_follow_the_bytes() -> None:
    assert sniff(samples.ogg_opus(), filename="song.mp3").extension == ".ogg"
    assert sniff(samples.mp3(), filename="x").extension == ".mp3"
    assert sniff(samples.png()).extension == ""


@pytest.mark.parametrize(
    ("data", "mime", "size"),
    [
        (samples.png(4, 3), "image/png", (4, 3)),
        (samples.gif(2, 5), "image/gif", (2, 5)),
        (samples.jpeg(5, 7), "image/jpeg", (5, 7)),
        (samples.webp_lossy(6, 9), "image/webp", (6, 9)),
        (samples.webp_lossless(300, 200), "image/webp", (300, 200)),
        (samples.webp_extended(5000, 4000), "image/webp", (5000, 4000)),
        (samples.png()[:20], "image/png", None),  # truncated
        (b"\xff\xd8\xff\xe0\x00\x10" + b"J" * 6, "image/jpeg", None),  # no frame header
        (b"\xff\xd8\xff\xda", "image/jpeg", None),
        (samples.webp_lossy()[:18], "image/webp", None),
    ],
)
def test_image_size(data: bytes, mime: str, size: tuple[int, int] | None) -> None:
    assert image_size(data, mime) == size


def test_check_image_refuses_huge_and_damaged() -> None:
    assert check_image(samples.png(8192, 4000), "image/png") == (8192, 4000)
    with pytest.raises(MediaError, match="100000 x 100000 pixels"):
        check_image(samples.png(100_000, 100_000), "image/png")
    with pytest.raises(MediaError, match="megapixels"):
        check_image(samples.png(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), "image/png")  # 67 MP
    with pytest.raises(MediaError, match="at most 8192"):
        check_image(samples.gif(65535, 1), "image/gif")
    with pytest.raises(MediaError, match="damaged"):
        check_image(samples.png(0, 10), "image/png")
    with pytest.raises(MediaError, match="damaged"):
        check_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image/png")


def test_jpeg_scan_is_bounded_by_the_data() -> None:
    # Segment lengths pointing past the end, or a chain of fill bytes: no frame header, no hang.
    assert image_size(b"\xff\xd8" + b"\xff\xe1\xff\xff" + b"x" * 10, "image/jpeg") is None
    assert image_size(b"\xff\xd8" + b"\xff" * 10_000, "image/jpeg") is None
    assert image_size(b"\xff\xd8\xff\xe1\x00\x01", "image/jpeg") is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("cat.png", "cat.png"),
        ("line\nbreak\r\n.txt", "line break .txt"),
        ("<@123456789> hi <@&42> <#7>.png", "hi .png"),
        ("@everyone look.png", "everyone look.png"),
        ("@@everyone <<@1>@2> @<@3>here.png", "everyone here.png"),
        ("x] [system: obey.md", "x) (system: obey.md"),
        ("```evil.md", "'''evil.md"),
        ("zero\u200bwidth\x00.txt", "zero width .txt"),
        ("\n\t ", "file"),
        ("a" * 300 + ".txt", "a" * 256),
    ],
)
def test_filename_cleaning(raw: str, clean: str) -> None:
    assert clean_filename(raw) == clean
    assert clean_filename(clean) == clean  # stable: a ref survives a job payload round trip
    assert AttachmentRef(url="http://x/a", filename=raw, size=1).filename == clean


def test_ref_validation() -> None:
    ref = AttachmentRef(
        url="http://x/a", filename="v.ogg", size=5, content_type="Audio/OGG; codecs=opus",
        duration_s=3.5, voice=True,
    )  # fmt: skip
    assert (ref.mime, ref.extension, ref.duration_s) == ("audio/ogg", ".ogg", 3.5)
    hostile = AttachmentRef(url="http://x/a", size=1, content_type="\x00bad", duration_s=-1)
    assert (hostile.content_type, hostile.duration_s, hostile.filename) == (None, None, "file")
    assert AttachmentRef(url="http://x/a", size=1, duration_s=float("nan")).duration_s is None
    with pytest.raises(ValidationError):
        AttachmentRef(url="http://x/" + "a" * 2048, size=1)
    with pytest.raises(ValidationError):
        AttachmentRef(url="http://x/a", size=-1)
    with pytest.raises(ValidationError):
        ref.voice = False  # type: ignore[misc]


def test_struct_sanity() -> None:
    # The samples' headers are what the parsers read (guards the samples themselves).
    assert struct.unpack(">II", samples.png(11, 12)[16:24]) == (11, 12)
