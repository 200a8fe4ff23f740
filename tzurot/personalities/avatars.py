"""Uploaded character avatars: checked by their bytes, kept in Redis, served by the HTTP API.

An upload is refused unless it is at most `AVATAR_MAX_BYTES` (and the deployment's
MAX_ATTACHMENT_BYTES, whichever is smaller) and its first bytes are those of a PNG, JPEG, GIF or
WebP image: the file name and the uploader's content type are not trusted (an HTML page named
`.png` is refused). The bytes live in Redis (`tzurot:avatar:{slug}`, one hash per character:
`data`, `type`, `hash`) so that every process of a deployment can serve them, and they go with
the character when it is deleted (the store removes the key in the same transaction).

Why 2 MiB: Discord shows webhook avatars at 128 px at most and fetches the image again whenever
its cache expires, so a larger file buys nothing; Redis keeps every avatar in memory, and 2 MiB
per character keeps a community of hundreds of characters well inside a small instance, while
any reasonable 1024x1024 PNG or JPEG still fits.

The character's `avatar_url` becomes `{PUBLIC_BASE_URL}/avatars/{slug}?v={hash}`: the hash
changes with the image, so Discord's cache (and any CDN in front of the API) picks up a new one
at once while the old URL may be cached for long.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis

from tzurot.infra.keys import AVATAR

AVATAR_MAX_BYTES = 2 * 1024 * 1024
HASH_CHARS = 16


class AvatarError(ValueError):
    """An upload that cannot be an avatar, and why (safe to show to the user)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Avatar:
    data: bytes
    content_type: str
    hash: str


def sniff_image(data: bytes) -> str | None:
    """The image content type the bytes start like, or None when they are not one we take."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 24:
        return "image/png"
    if data.startswith(b"\xff\xd8\xff") and len(data) > 4:
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) > 13:
        return "image/gif"
    if len(data) > 16 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_avatar(data: bytes, *, max_bytes: int = AVATAR_MAX_BYTES) -> Avatar:
    """The image as an `Avatar`, or `AvatarError` saying why it is refused."""
    limit = min(max_bytes, AVATAR_MAX_BYTES)
    if not data:
        raise AvatarError("the file is empty")
    if len(data) > limit:
        raise AvatarError(
            f"the image is {len(data) / 1024 / 1024:.1f} MiB; avatars may be at most {_size(limit)}"
        )
    content_type = sniff_image(data)
    if content_type is None:
        raise AvatarError("that file is not a PNG, JPEG, GIF or WebP image")
    digest = hashlib.sha256(data).hexdigest()[:HASH_CHARS]
    return Avatar(data=data, content_type=content_type, hash=digest)


def avatar_url(public_base_url: str, slug: str, digest: str) -> str:
    from urllib.parse import quote

    return f"{public_base_url.rstrip('/')}/avatars/{quote(slug, safe='')}?v={digest}"


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n // 1024} KiB"


class AvatarStore:
    """One hash per character with an uploaded avatar."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def put(self, slug: str, avatar: Avatar) -> None:
        key = AVATAR.key(slug=slug)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(
                key,
                mapping={"data": avatar.data, "type": avatar.content_type, "hash": avatar.hash},
            )
            await pipe.execute()

    async def get(self, slug: str) -> Avatar | None:
        raw = await self._redis.hgetall(AVATAR.key(slug=slug))
        if not raw:
            return None
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
        data, kind, digest = fields.get("data"), fields.get("type"), fields.get("hash")
        if data is None or kind is None or digest is None:
            return None
        as_bytes = data if isinstance(data, bytes) else str(data).encode("latin-1")
        return Avatar(data=as_bytes, content_type=_str(kind), hash=_str(digest))

    async def delete(self, slug: str) -> None:
        await self._redis.delete(AVATAR.key(slug=slug))


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
