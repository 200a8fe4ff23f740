from __future__ import annotations

import pytest

from tzurot.jobs.signing import InvalidSignature, PayloadSigner


def test_a_signature_verifies_only_the_exact_payload() -> None:
    signer = PayloadSigner("a passphrase of at least thirty-two characters")
    payload = '{"message": "hello"}'
    signature = signer.sign(payload)

    signer.verify(payload, signature)
    with pytest.raises(InvalidSignature):
        signer.verify('{"message": "hellO"}', signature)
    with pytest.raises(InvalidSignature):
        PayloadSigner("another passphrase of thirty-two chars!!").verify(payload, signature)


def test_hex_base64_and_passphrases_all_work_as_keys() -> None:
    for secret in ["ab" * 32, "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==", "x y z " * 6]:
        signer = PayloadSigner(secret)
        signer.verify("p", signer.sign("p"))
