"""Avatar checks go by the bytes, never by the name or the claimed type."""

from __future__ import annotations

import pytest

from tzurot.personalities.avatars import (
    AVATAR_MAX_BYTES,
    AvatarError,
    avatar_url,
    check_avatar,
    sniff_image,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
GIF = b"GIF89a" + b"\x00" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32


@pytest.mark.parametrize(
    ("data", "kind"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_images_are_recognised(data: bytes, kind: str) -> None:
    assert sniff_image(data) == kind
    assert check_avatar(data).content_type == kind


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE html><html><script>alert(1)</script>",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"%PDF-1.7",
        b"\x89PNG",  # truncated
        b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32,
        b"GIF89",
    ],
)
def test_non_images_are_refused(data: bytes) -> None:
    with pytest.raises(AvatarError, match="not a PNG"):
        check_avatar(data)


def test_size_caps() -> None:
    with pytest.raises(AvatarError, match="empty"):
        check_avatar(b"")
    with pytest.raises(AvatarError, match="at most 2 MiB"):
        check_avatar(PNG + b"\x00" * AVATAR_MAX_BYTES)
    with pytest.raises(AvatarError, match="at most 16 KiB"):
        check_avatar(PNG + b"\x00" * 20_000, max_bytes=16 * 1024)


def test_url_carries_a_version() -> None:
    avatar = check_avatar(PNG)
    assert avatar_url("https://bot.example/", "李白", avatar.hash) == (
        f"https://bot.example/avatars/%E6%9D%8E%E7%99%BD?v={avatar.hash}"
    )
