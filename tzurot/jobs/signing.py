"""HMAC-SHA256 signatures over job payloads, so a worker runs only what we enqueued."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.asyncio import Redis

from tzurot.infra.keys import SIGNING_SECRET
from tzurot.infra.redis_client import as_text

_SIGNING_INFO = b"tzurot job payload signing v1"
_GENERATED_KEY = SIGNING_SECRET.key()


class InvalidSignature(Exception):
    """The payload was changed after it was signed, or signed with another key."""


def derive_key(secret: str, info: bytes = _SIGNING_INFO) -> bytes:
    """Key material from any string of >= 32 characters: hex, base64 or a passphrase."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"tzurot", info=info)
    return hkdf.derive(secret.encode())


class PayloadSigner:
    def __init__(self, secret: str) -> None:
        self._key = derive_key(secret)

    def sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def verify(self, payload: str, signature: str) -> None:
        if not hmac.compare_digest(self.sign(payload), signature):
            raise InvalidSignature("job payload signature does not match")


async def shared_signing_secret(redis: Redis) -> str:
    """The secret every process sharing this Redis uses when JOB_SIGNING_KEY is unset."""
    candidate = secrets.token_urlsafe(48)
    await redis.set(_GENERATED_KEY, candidate, nx=True)
    stored = await redis.get(_GENERATED_KEY)
    return as_text(stored) if stored is not None else candidate
