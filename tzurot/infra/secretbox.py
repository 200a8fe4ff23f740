"""Secrets at rest in Redis: AES-256-GCM with a key derived (HKDF-SHA256) from a setting."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBox:
    def __init__(self, secret: str, purpose: str) -> None:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"tzurot", info=purpose.encode())
        self._aead = AESGCM(hkdf.derive(secret.encode()))
        self._purpose = purpose.encode()

    def seal(self, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        return base64.b64encode(
            nonce + self._aead.encrypt(nonce, plaintext.encode(), self._purpose)
        )

    def open(self, sealed: bytes) -> str | None:
        """The plaintext, or None if `sealed` was not made by this box (or was altered)."""
        try:
            raw = base64.b64decode(sealed, validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], self._purpose).decode()
        except (InvalidTag, ValueError):
            return None
