"""Deferred interactions' tokens, sealed in Redis for their 15-minute life.

Any process may answer an interaction (an answer needs only the application id and the token,
no gateway), so the token lives in Redis, not in the memory of the process that deferred it.
It is sealed (AES-GCM) and expires when Discord stops accepting it.
"""

from __future__ import annotations

from redis.asyncio import Redis

from tzurot.infra.keys import INTERACTION
from tzurot.infra.secretbox import SecretBox

# Discord accepts an interaction's token for 15 minutes after it was created.
_LIFE_SECONDS = INTERACTION.ttl_seconds or 15 * 60
_MARGIN_SECONDS = 15


class InteractionTokens:
    def __init__(self, redis: Redis, secrets: SecretBox) -> None:
        self._redis = redis
        self._secrets = secrets

    async def put(self, job_id: str, token: str, *, age_seconds: float = 0.0) -> None:
        life = int(_LIFE_SECONDS - _MARGIN_SECONDS - age_seconds)
        if life > 0:
            await self._redis.set(
                INTERACTION.key(job_id=job_id), self._secrets.seal(token), ex=life
            )

    async def get(self, job_id: str) -> str | None:
        sealed = await self._redis.get(INTERACTION.key(job_id=job_id))
        if sealed is None:
            return None
        return self._secrets.open(sealed if isinstance(sealed, bytes) else sealed.encode())
