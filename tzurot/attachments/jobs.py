"""The `image-` and `audio-` jobs: describing an image for a character whose model cannot see,
and transcribing a voice message, as background jobs the generation waits for.

A job's key comes from the attachment's URL, so the same file posted once and read by two
characters is described once; the text is also cached by the SHA-256 of the file's bytes
(MEDIA_CACHE, 30 days), so the same picture posted again costs no model call. A job answers
JSON: `{"text": ...}`, or `{"error": ...}` with a reason fit to show (not an image, too large,
the vision models did not answer); provider errors that may pass are retried by another run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Sequence

from pydantic import SecretStr, ValidationError
from redis.asyncio import Redis

from tzurot.ai.errors import ProviderError
from tzurot.ai.models import ModelTarget
from tzurot.attachments.models import AttachmentRef, MediaError, TurnPart
from tzurot.attachments.prepare import (
    AttachmentPreparer,
    describe_attachment,
    transcribe_attachment,
)
from tzurot.infra.keys import MEDIA_CACHE
from tzurot.jobs.background import BackgroundFailed, BackgroundJobs, TaskHandler, TaskRun, TaskSpec
from tzurot.jobs.constants import JobPrefix
from tzurot.logs import get_logger

log = get_logger(__name__)

DESCRIBE = TaskSpec("describe_image", JobPrefix.IMAGE, timeout=200, runs=2, retry_delay=2.0)
TRANSCRIBE = TaskSpec("transcribe_audio", JobPrefix.AUDIO, timeout=300, runs=2, retry_delay=2.0)
# How long a generation waits for its attachment's job (the job's own runs fit in it).
WAIT_SECONDS = {DESCRIBE.function: 240.0, TRANSCRIBE.function: 330.0}


class RedisMediaCache:
    """`image:{sha256}` / `audio:{sha256}` -> text, expiring after 30 days."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def get(self, key: str) -> str | None:
        raw = await self._redis.get(self._key(key))
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)

    async def put(self, key: str, text: str) -> None:
        await self._redis.set(self._key(key), text, ex=MEDIA_CACHE.ttl_seconds)

    @staticmethod
    def _key(key: str) -> str:
        kind, _, digest = key.partition(":")
        return MEDIA_CACHE.key(kind=kind, digest=digest)


class MediaJobs:
    """Runs the attachments' background jobs (as a `MediaRunner` the preparer calls) and is
    their body on the worker."""

    def __init__(
        self,
        background: BackgroundJobs,
        redis: Redis,
        *,
        allowed_hosts: Sequence[str],
        max_bytes: int,
        max_text_bytes: int,
        vision_models: Sequence[str],
        transcription_model: str | None,
        api_base: str | None,
        api_key: SecretStr | None,
    ) -> None:
        self._background = background
        self._cache = RedisMediaCache(redis)
        self._hosts = tuple(allowed_hosts)
        self._max_bytes = max_bytes
        self._api_base = api_base
        self._api_key = api_key
        self._vision = [self._target(model) for model in vision_models]
        self._transcription = transcription_model
        self._preparer = AttachmentPreparer(
            allowed_hosts=self._hosts, max_bytes=max_bytes, max_text_bytes=max_text_bytes
        )

    # -- what a generation calls ---------------------------------------------------------------

    def reader(self) -> _Reader:
        return _Reader(self._preparer, self)

    async def describe(self, ref: AttachmentRef) -> str:
        return await self._run(DESCRIBE, ref)

    async def transcribe(self, ref: AttachmentRef) -> str:
        if not self._transcription:
            raise MediaError("voice messages are not transcribed on this bot")
        return await self._run(TRANSCRIBE, ref)

    async def _run(self, spec: TaskSpec, ref: AttachmentRef) -> str:
        suffix = hashlib.sha256(ref.url.encode()).hexdigest()[:32]
        try:
            answer = await self._background.run(
                spec, suffix, ref.model_dump_json(), timeout=WAIT_SECONDS[spec.function]
            )
        except BackgroundFailed:
            raise MediaError("it could not be read just now") from None
        try:
            data = json.loads(answer or "{}")
        except ValueError:
            data = {}
        if isinstance(data.get("text"), str) and data["text"]:
            return str(data["text"])
        raise MediaError(str(data.get("error") or "it could not be read"))

    # -- the jobs' bodies ----------------------------------------------------------------------

    def handlers(self) -> dict[str, TaskHandler]:
        return {DESCRIBE.function: self._describe_job, TRANSCRIBE.function: self._transcribe_job}

    async def _describe_job(self, payload: str, run: TaskRun) -> str:
        ref = _ref_of(payload)
        if ref is None:
            return _error("it could not be read")
        if not self._vision:
            return _error("no model here can describe images")
        work = describe_attachment(
            ref, allowed_hosts=self._hosts, max_bytes=self._max_bytes, models=self._vision,
            cache=self._cache,
        )  # fmt: skip
        return await _answer(work, run, "the models that describe images did not answer")

    async def _transcribe_job(self, payload: str, run: TaskRun) -> str:
        ref = _ref_of(payload)
        if ref is None or not self._transcription:
            return _error("voice messages are not transcribed on this bot")
        target = self._target(self._transcription)
        work = transcribe_attachment(
            ref, allowed_hosts=self._hosts, max_bytes=self._max_bytes, model=target.model,
            api_base=target.api_base, api_key=target.api_key, cache=self._cache,
        )  # fmt: skip
        return await _answer(work, run, "the transcription model did not answer")

    def _target(self, model: str) -> ModelTarget:
        """LLM_API_BASE serves `openai/...` models (as for replies); others go to their
        provider with the key litellm finds in the environment."""
        if self._api_base and model.startswith("openai/"):
            return ModelTarget(model=model, api_base=self._api_base, api_key=self._api_key)
        return ModelTarget(model=model)


class _Reader:
    """The generation's view: `prepare(refs, can_see=, transcribe=)`."""

    def __init__(self, preparer: AttachmentPreparer, media: MediaJobs) -> None:
        self._preparer = preparer
        self._media = media

    async def prepare(
        self, refs: Sequence[AttachmentRef], *, can_see: bool, transcribe: bool
    ) -> list[TurnPart]:
        return await self._preparer.prepare(
            refs, can_see=can_see, transcribe=transcribe, media=self._media
        )


async def _answer(work: Awaitable[str], run: TaskRun, provider_failed: str) -> str:
    """The job's JSON answer: the text, or why there is none. A provider error that may pass
    is raised instead (another run tries again), unless this run is the last."""
    try:
        return json.dumps({"text": await work})
    except MediaError as error:
        return _error(error.message)
    except ProviderError as error:
        if error.retryable and not run.last:
            raise
        log.warning("an attachment could not be read by its model", category=error.category)
        return _error(provider_failed)


def _ref_of(payload: str) -> AttachmentRef | None:
    try:
        return AttachmentRef.model_validate_json(payload)
    except ValidationError:
        log.error("an attachment job's payload does not parse")
        return None


def _error(reason: str) -> str:
    return json.dumps({"error": reason})
