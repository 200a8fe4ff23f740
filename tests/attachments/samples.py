"""Tiny files for attachment tests: just enough header for each format, built in code."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib

from tests.fixtures.fake_llm import TRANSCRIPT_MARKER


def png(width: int = 4, height: int = 3) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def gif(width: int = 2, height: int = 2) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b";" * 8


def jpeg(width: int = 5, height: int = 7, *, exif: int = 40) -> bytes:
    app1 = b"\xff\xe1" + struct.pack(">H", exif + 2) + b"E" * exif  # a segment to skip
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app1 + b"\xff\xff" + sof + b"\xff\xda\x00\x02" + b"\x00" * 8 + b"\xff\xd9"


def webp_lossy(width: int = 6, height: int = 9) -> bytes:
    frame = b"\x00\x00\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 8
    return _riff(b"WEBP", b"VP8 " + struct.pack("<I", len(frame)) + frame)


def webp_lossless(width: int = 6, height: int = 9) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"\x2f" + bits.to_bytes(4, "little") + b"\x00" * 8
    return _riff(b"WEBP", b"VP8L" + struct.pack("<I", len(body)) + body)


def webp_extended(width: int = 6, height: int = 9) -> bytes:
    body = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    body += (height - 1).to_bytes(3, "little")
    return _riff(b"WEBP", b"VP8X" + struct.pack("<I", len(body)) + body + b"\x00" * 8)


def _riff(form: bytes, body: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", len(body) + 4) + form + body


def ogg_opus(transcript: str | None = None) -> bytes:
    page = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13" + b"OpusHead\x01\x01\x38\x01"
    page += b"\x80\xbb\x00\x00\x00\x00\x00" + b"\x00" * 16
    return page + (TRANSCRIPT_MARKER + transcript.encode() if transcript else b"")


def ogg_vorbis() -> bytes:
    return b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x1e" + b"\x01vorbis" + b"\x00" * 30


def mp3(transcript: str | None = None) -> bytes:
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 60
    return frame + (TRANSCRIPT_MARKER + transcript.encode() if transcript else b"")


def mp3_id3() -> bytes:
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\x00" * 40


def wav() -> bytes:
    return _riff(b"WAVE", b"fmt " + struct.pack("<I", 16) + b"\x01\x00" * 8 + b"\x00" * 16)


def flac() -> bytes:
    return b"fLaC\x00\x00\x00\x22" + b"\x00" * 40


def m4a() -> bytes:
    return b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42" + b"\x00" * 30


def heic() -> bytes:
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 30


def webm() -> bytes:
    return b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm" + b"\x00" * 30


def zip_archive(name: str = "a.txt", body: bytes = b"hello") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, body)
    return out.getvalue()


def zip_bomb() -> bytes:
    """1 MiB of zeros per entry, compressed to ~1 KiB each: tiny on the wire, big if opened."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(8):
            archive.writestr(f"zeros{i}.bin", b"\x00" * (1024 * 1024))
    return out.getvalue()


def gzip_file(body: bytes = b"hello world") -> bytes:
    return gzip.compress(body)


HTML = b"<!DOCTYPE html><html><head><title>x</title></head><body>hi</body></html>"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10"></svg>'
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
