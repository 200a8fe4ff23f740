from __future__ import annotations

from tzurot.infra.secretbox import SecretBox


def test_sealed_values_open_only_with_the_same_key_and_purpose() -> None:
    box = SecretBox("a passphrase of at least thirty-two characters", "webhooks")
    sealed = box.seal("webhook-token-123")

    assert b"webhook-token-123" not in sealed
    assert box.open(sealed) == "webhook-token-123"
    assert box.seal("webhook-token-123") != sealed  # a fresh nonce every time
    assert SecretBox("another passphrase of thirty-two chars!!", "webhooks").open(sealed) is None
    assert SecretBox("a passphrase of at least thirty-two characters", "keys").open(sealed) is None
    assert box.open(b"not even base64 !!") is None
