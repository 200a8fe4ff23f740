"""What a file is, by its bytes: the name and the uploader's content type are not trusted.

`sniff` looks only at magic bytes for images and audio; a file is text only when it is valid
UTF-8 without NUL bytes *and* its name or content type says text (an HTML page named `.png` is
"other", so is a zip named `.txt`). Archives are named, never opened (a zip bomb stays shut).
`image_size` / `check_image` read the dimensions from the header and refuse absurd ones before
any model or decoder sees the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tzurot.attachments.models import Kind, MediaError

MAX_IMAGE_SIDE = 8192
MAX_IMAGE_PIXELS = 40_000_000

_TEXT_EXTENSION_NAMES = (
    "txt text md markdown rst py pyi js mjs cjs ts tsx jsx json jsonl toml yaml yml csv tsv log"
    " ini cfg conf env sh bash zsh fish ps1 bat rs go java kt kts scala c h cpp cc cxx hpp hh cs"
    " rb php pl lua r sql swift dart ex exs erl hs ml clj el vim tex srt vtt diff patch gitignore"
    " dockerfile makefile gradle properties proto graphql css scss less xml"
)
TEXT_EXTENSIONS = frozenset(f".{name}" for name in _TEXT_EXTENSION_NAMES.split())
# text/* types that are markup for browsers, not files to read into a conversation.
_NOT_TEXT_TYPES = frozenset({"text/html", "text/xhtml", "image/svg+xml", "text/svg"})


@dataclass(frozen=True)
class Sniffed:
    """`mime` is the real type (None for unknown data); `label` names it for a notice."""

    kind: Kind
    mime: str | None
    label: str

    @property
    def extension(self) -> str:
        """The extension a transcription API expects for this audio (".ogg"), else ""."""
        return _AUDIO_EXTENSIONS.get(self.mime or "", "")


_AUDIO_EXTENSIONS = {
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
    "audio/flac": ".flac",
    "audio/mp4": ".m4a",
    "audio/webm": ".webm",
}

_IMAGE_LABELS = {
    "image/png": "a PNG image",
    "image/jpeg": "a JPEG image",
    "image/gif": "a GIF image",
    "image/webp": "a WebP image",
}

# Known formats we never read, by their first bytes: (offset, magic, label).
_OTHER_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"PK\x03\x04", "a zip archive"),
    (0, b"PK\x05\x06", "a zip archive"),
    (0, b"PK\x07\x08", "a zip archive"),
    (0, b"\x1f\x8b", "a gzip archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"BZh", "a bzip2 archive"),
    (0, b"\xfd7zXZ\x00", "an xz archive"),
    (0, b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (257, b"ustar", "a tar archive"),
    (0, b"%PDF-", "a PDF document"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document"),
    (0, b"{\\rtf", "an RTF document"),
    (0, b"\x7fELF", "a program"),
    (0, b"MZ", "a Windows program"),
    (0, b"\xca\xfe\xba\xbe", "a program"),
    (0, b"\xcf\xfa\xed\xfe", "a program"),
    (0, b"\x00asm", "a WebAssembly program"),
    (0, b"SQLite format 3\x00", "an SQLite database"),
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (0, b"BM", "a BMP image"),
    (0, b"\x00\x00\x01\x00", "an icon"),
    (0, b"8BPS", "a Photoshop image"),
    (0, b"wOFF", "a font"),
    (0, b"wOF2", "a font"),
)


def sniff(data: bytes, *, filename: str = "", content_type: str | None = None) -> Sniffed:
    """What `data` is. `filename` and `content_type` only decide whether UTF-8 counts as text."""
    if not data:
        return Sniffed("other", None, "an empty file")
    head = data[:64]
    image = _image_mime(head)
    if image is not None:
        return Sniffed("image", image, _IMAGE_LABELS[image])
    audio = _audio(head)
    if audio is not None:
        return audio
    brand = _iso_brand(head)
    if brand is not None:
        return Sniffed("other", None, brand)
    markup = _markup_label(data[:1024])
    # Text before the other signatures: a few of them ("BM", "MZ", "%PDF-") are plain letters
    # a text file may start with, and real archives or programs are never NUL-free UTF-8.
    text = _is_text(data)
    if text and markup is None and text_declared(filename, content_type):
        return Sniffed("text", "text/plain", "a text file")
    for offset, magic, label in _OTHER_MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return Sniffed("other", None, label)
    if markup is not None:
        return Sniffed("other", None, markup)
    if text:
        return Sniffed("other", None, "text that is not a known text file type")
    return Sniffed("other", None, "a file of an unknown type")


def _image_mime(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _audio(head: bytes) -> Sniffed | None:
    if head.startswith(b"OggS"):
        if b"OpusHead" in head:
            return Sniffed("audio", "audio/ogg", "Opus audio")
        if b"\x01vorbis" in head:
            return Sniffed("audio", "audio/ogg", "Vorbis audio")
        if b"FLAC" in head:
            return Sniffed("audio", "audio/ogg", "FLAC audio")
        return Sniffed("other", None, "an Ogg file that is not audio")
    if head.startswith(b"fLaC"):
        return Sniffed("audio", "audio/flac", "FLAC audio")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed("audio", "audio/wav", "WAV audio")
    if (head.startswith(b"ID3") and head[3:4] in (b"\x02", b"\x03", b"\x04")) or _mpeg_frame(head):
        return Sniffed("audio", "audio/mpeg", "MP3 audio")
    if head[4:8] == b"ftyp" and head[8:12] not in _ISO_IMAGE_BRANDS:
        return Sniffed("audio", "audio/mp4", "MP4 audio")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head:
            return Sniffed("audio", "audio/webm", "WebM audio")
        return Sniffed("other", None, "a Matroska video")
    return None


def _mpeg_frame(head: bytes) -> bool:
    """An MP3 frame header: 11 sync bits, a valid version, layer III, a valid bitrate and rate.
    (Layers I/II are left out: "\xff\xfe", a UTF-16 byte order mark, looks like layer I.)"""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0x03
    layer = (head[1] >> 1) & 0x03
    bitrate = head[2] >> 4
    sample_rate = (head[2] >> 2) & 0x03
    return version != 1 and layer == 1 and bitrate not in (0, 15) and sample_rate != 3


_ISO_IMAGE_BRANDS = {
    b"heic": "a HEIC image",
    b"heix": "a HEIC image",
    b"hevc": "a HEIC image",
    b"mif1": "a HEIF image",
    b"msf1": "a HEIF image",
    b"avif": "an AVIF image",
    b"avis": "an AVIF image",
}


def _iso_brand(head: bytes) -> str | None:
    if head[4:8] == b"ftyp":
        return _ISO_IMAGE_BRANDS.get(head[8:12])
    return None


def _markup_label(start: bytes) -> str | None:
    text = start.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return "an HTML page"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG image"
    return None


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def text_declared(filename: str, content_type: str | None) -> bool:
    name = filename.lower()
    _, dot, ext = name.rpartition(".")
    if dot and f".{ext}" in TEXT_EXTENSIONS:
        return True
    if name in ("readme", "license", "makefile", "dockerfile", "changelog", "notes"):
        return True
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime.startswith("text/") and mime not in _NOT_TEXT_TYPES


# --- image headers -----------------------------------------------------------------------------


def image_size(data: bytes, mime: str) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, WebP or JPEG header; None when it cannot be read."""
    try:
        if mime == "image/png":
            if data[12:16] != b"IHDR":
                return None
            width, height = struct.unpack(">II", data[16:24])
        elif mime == "image/gif":
            width, height = struct.unpack("<HH", data[6:10])
        elif mime == "image/webp":
            return _webp_size(data)
        elif mime == "image/jpeg":
            return _jpeg_size(data)
        else:
            return None
    except struct.error:
        return None
    return int(width), int(height)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20:21] == b"\x2f":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


# Start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    end = len(data)
    while i + 4 <= end:  # every step moves forward, so this ends
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return None
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if i + 9 > end:
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    return None


def check_image(data: bytes, mime: str) -> tuple[int, int]:
    """The image's (width, height), or `MediaError` when the header is damaged or the image is
    larger than MAX_IMAGE_SIDE on a side or MAX_IMAGE_PIXELS in all."""
    size = image_size(data, mime)
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise MediaError("the image's header is damaged")
    width, height = size
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise MediaError(
            f"the image is {width} x {height} pixels; at most {MAX_IMAGE_SIDE} x "
            f"{MAX_IMAGE_SIDE} and {MAX_IMAGE_PIXELS // 1_000_000} megapixels are read"
        )
    return size
