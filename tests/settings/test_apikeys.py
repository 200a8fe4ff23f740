"""The BYOK vault on a real redis-server: keys sealed at rest, never readable from Redis."""

from __future__ import annotations

import base64
import binascii
import codecs
import json
from typing import Any
from urllib.parse import quote

import pytest
from redis.asyncio import Redis

from tzurot.infra.keys import API_KEYS, family_of
from tzurot.infra.secretbox import SecretBox
from tzurot.settings.apikeys import BOX_PURPOSE, ApiKeyVault, VaultUnavailable

ENCRYPTION_KEY = "an encryption key of at least 32 characters, any kind"
OPENAI_KEY = "sk-proj-USERKEY0123456789abcdefWXYZ"
ROUTER_KEY = "sk-or-v1-0f1e2d3c4b5a69788796a5b4c3d2e1f0aabbccdd"


@pytest.fixture
def vault(redis_client: Redis) -> ApiKeyVault:
    return ApiKeyVault(redis_client, SecretBox(ENCRYPTION_KEY, BOX_PURPOSE))


def encodings(secret: str) -> set[bytes]:
    """The forms a key could take in a raw Redis value."""
    raw = secret.encode()
    forms = {
        raw,
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        base64.b32encode(raw),
        binascii.hexlify(raw),
        binascii.hexlify(raw).upper(),
        quote(secret, safe="").encode(),
        json.dumps(secret).encode(),
        codecs.encode(secret, "rot13").encode(),
        secret.encode("utf-16-le"),
        raw[::-1],
    }
    # Pieces too: half a key is a leak. The last four alone are not (browse shows them).
    for piece in (secret[:12], secret[-12:], secret[4:-4]):
        forms |= {piece.encode(), base64.b64encode(piece.encode()), piece.encode().hex().encode()}
    return forms


async def raw_values(redis_client: Redis) -> list[bytes]:
    """Every key name and raw value in Redis (SCAN, then by type)."""
    found: list[bytes] = []
    async for key in redis_client.scan_iter(count=500):
        found.append(key)
        kind = (await redis_client.type(key)).decode()
        value: Any
        if kind == "string":
            found.append(await redis_client.get(key))
        elif kind == "hash":
            for field, value in (await redis_client.hgetall(key)).items():
                found += [field, value]
        elif kind == "list":
            found += await redis_client.lrange(key, 0, -1)
        elif kind == "set":
            found += list(await redis_client.smembers(key))
        elif kind == "zset":
            found += [m for m, _ in await redis_client.zrange(key, 0, -1, withscores=True)]
        else:
            found.append(repr(await redis_client.dump(key)).encode())
        found.append(await redis_client.dump(key) or b"")
    return found


async def assert_nowhere_in_redis(redis_client: Redis, *secrets: str) -> None:
    values = await raw_values(redis_client)
    assert values, "nothing in Redis: the check would pass vacuously"
    for secret in secrets:
        for form in encodings(secret):
            for value in values:
                assert form not in value, f"a form of the key is in Redis: {value[:60]!r}"


async def test_set_get_browse_remove(vault: ApiKeyVault, redis_client: Redis) -> None:
    stored = await vault.set("u1", "openai", OPENAI_KEY)
    assert stored.last_four == "WXYZ" and not stored.rejected
    await vault.set("u1", "openrouter", ROUTER_KEY)
    assert await vault.get("u1", "openai") == OPENAI_KEY
    assert await vault.get("u1", "openrouter") == ROUTER_KEY
    assert await vault.get("u1", "anthropic") is None
    assert await vault.get("u2", "openai") is None
    assert await vault.providers("u1") == {"openai", "openrouter"}
    listed = await vault.browse("u1")
    assert [(k.provider, k.last_four, k.rejected) for k in listed] == [
        ("openai", "WXYZ", False),
        ("openrouter", "ccdd", False),
    ]
    assert all(k.added_at > 0 for k in listed)
    await assert_nowhere_in_redis(redis_client, OPENAI_KEY, ROUTER_KEY)
    # One hash per user, of a registered family.
    keys = [k.decode() async for k in redis_client.scan_iter()]
    assert keys == [API_KEYS.key(user_id="u1")]
    assert family_of(keys[0]) is API_KEYS

    assert await vault.remove("u1", "openai")
    assert not await vault.remove("u1", "openai")
    assert await vault.get("u1", "openai") is None
    assert await vault.providers("u1") == {"openrouter"}
    assert await vault.remove("u1", "openrouter")
    assert [k async for k in redis_client.scan_iter()] == []  # nothing left behind


async def test_the_last_four_are_not_stored_in_clear(
    vault: ApiKeyVault, redis_client: Redis
) -> None:
    await vault.set("u1", "openai", OPENAI_KEY)
    for value in await raw_values(redis_client):
        assert b"WXYZ" not in value


async def test_rejected_flag_is_once_and_cleared_by_a_new_key(
    vault: ApiKeyVault, redis_client: Redis
) -> None:
    await vault.set("u1", "openai", OPENAI_KEY)
    assert await vault.mark_rejected("u1", "openai")
    assert not await vault.mark_rejected("u1", "openai")
    assert [k.rejected for k in await vault.browse("u1")] == [True]
    assert await vault.providers("u1") == {"openai"}  # the flag is no provider
    await vault.set("u1", "openai", OPENAI_KEY + "2")
    assert [k.rejected for k in await vault.browse("u1")] == [False]
    assert await vault.mark_rejected("u1", "openai")
    await vault.clear_rejected("u1", "openai")
    assert await vault.mark_rejected("u1", "openai")
    # No key, no flag.
    assert not await vault.mark_rejected("u1", "anthropic")
    assert await vault.providers("u1") == {"openai"}
    await assert_nowhere_in_redis(redis_client, OPENAI_KEY, OPENAI_KEY + "2")


async def test_a_sealed_key_moved_to_another_user_or_provider_opens_to_nothing(
    vault: ApiKeyVault, redis_client: Redis
) -> None:
    await vault.set("u1", "openai", OPENAI_KEY)
    sealed = await redis_client.hget(API_KEYS.key(user_id="u1"), "openai")
    assert sealed is not None
    await redis_client.hset(API_KEYS.key(user_id="u2"), "openai", sealed)
    await redis_client.hset(API_KEYS.key(user_id="u1"), "anthropic", sealed)
    assert await vault.get("u2", "openai") is None
    assert await vault.get("u1", "anthropic") is None
    assert [k.provider for k in await vault.browse("u1")] == ["openai"]


async def test_another_encryption_key_cannot_open_them(redis_client: Redis) -> None:
    await ApiKeyVault(redis_client, SecretBox(ENCRYPTION_KEY, BOX_PURPOSE)).set(
        "u1", "openai", OPENAI_KEY
    )
    other = ApiKeyVault(
        redis_client, SecretBox("another encryption key, also 32+ chars long", BOX_PURPOSE)
    )
    assert await other.get("u1", "openai") is None
    assert await other.browse("u1") == []


async def test_without_encryption_key_nothing_is_stored(redis_client: Redis) -> None:
    vault = ApiKeyVault(redis_client, None)
    assert not vault.enabled
    with pytest.raises(VaultUnavailable, match="ENCRYPTION_KEY"):
        await vault.set("u1", "openai", OPENAI_KEY)
    assert await vault.get("u1", "openai") is None
    assert await vault.providers("u1") == set()
    assert [k async for k in redis_client.scan_iter()] == []
