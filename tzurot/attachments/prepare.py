"""Turning a message's attachments into parts of the user's turn, never raising.

Per attachment (in parallel, results in order):
- images: for a model that can see, fetched, sniffed, header-checked and sent as a data URL
  part (the text says "[image: name]"); otherwise described by the `MediaRunner` (a background
  job: `describe_attachment`) -> "[image name, described: ...]";
- voice messages and audio: transcribed by the runner (`transcribe_attachment`) when
  `transcribe` is on -> "[voice message, transcribed: ...]", else a notice;
- text files (<= MAX_TEXT_FILE_BYTES, valid UTF-8, a text name or type): read, capped at
  MAX_TEXT_CHARS, in a code fence no line of the file can close;
- anything else is named, not read: "[file x.zip: not read (a zip archive)]".
What Discord says (name, type, size) only picks the route; the bytes decide (an image that is
really HTML is refused, a zip named .txt is named as a zip). Every failure becomes a notice
in its part (`ok=False`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from pydantic import SecretStr

from tzurot.ai.errors import ProviderError
from tzurot.ai.models import ModelTarget
from tzurot.attachments.fetch import DEFAULT_TIMEOUT_SECONDS, FetchError, fetch_attachment
from tzurot.attachments.kinds import Sniffed, check_image, sniff, text_declared
from tzurot.attachments.media import (
    DESCRIBE_TIMEOUT_SECONDS,
    MAX_DESCRIPTION_CHARS,
    MAX_TRANSCRIPT_CHARS,
    TRANSCRIBE_TIMEOUT_SECONDS,
    cap_text,
    data_url,
    describe_image,
    transcribe_audio,
)
from tzurot.attachments.models import AttachmentRef, Kind, MediaError, TurnPart
from tzurot.logs import get_logger

log = get_logger(__name__)

MAX_TEXT_FILE_BYTES = 256 * 1024
MAX_TEXT_CHARS = 20_000

_IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jfif", ".gif", ".webp"})
_AUDIO_EXTENSIONS = frozenset(
    {".ogg", ".oga", ".opus", ".mp3", ".wav", ".flac", ".m4a", ".mp4", ".aac", ".webm"}
)

# C0/C1 controls other than tab and newline (terminal escapes and the like) are dropped from text
# files; format characters stay (emoji sequences need the zero-width joiner).
_CONTROL_CHARS = dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)])


class MediaRunner(Protocol):
    """Describes or transcribes one attachment (the lead runs these as background jobs).
    Raises `MediaError(message)` on failure; the message ends up in the notice."""

    async def describe(self, ref: AttachmentRef) -> str: ...

    async def transcribe(self, ref: AttachmentRef) -> str: ...


class MediaCache(Protocol):
    """Descriptions and transcripts by content: keys are "image:{sha256}" / "audio:{sha256}"."""

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, text: str) -> None: ...


@dataclass(frozen=True)
class LoadedFile:
    data: bytes
    sniffed: Sniffed
    sha256: str


def size_text(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:g} MiB"
    return f"{n / 1024:g} KiB"


def declared_kind(ref: AttachmentRef) -> Kind:
    """The route Discord's description suggests (the bytes still decide)."""
    mime = ref.mime or ""
    if ref.voice or mime.startswith("audio/") or ref.extension in _AUDIO_EXTENSIONS:
        return "audio"
    if (mime.startswith("image/") and mime != "image/svg+xml") or (
        ref.extension in _IMAGE_EXTENSIONS
    ):
        return "image"
    if text_declared(ref.filename, ref.content_type):
        return "text"
    return "other"


class AttachmentPreparer:
    """Fetches what the turn needs itself (images for a seeing model, text files); delegates
    descriptions and transcripts to a `MediaRunner`."""

    def __init__(
        self,
        *,
        allowed_hosts: Iterable[str],
        max_bytes: int,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_text_bytes: int = MAX_TEXT_FILE_BYTES,
        max_text_chars: int = MAX_TEXT_CHARS,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.allowed_hosts = tuple(allowed_hosts)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_text_bytes = min(max_text_bytes, max_bytes)
        self.max_text_chars = max_text_chars
        self.session = session

    async def prepare(
        self,
        refs: Sequence[AttachmentRef],
        *,
        can_see: bool,
        transcribe: bool,
        media: MediaRunner,
    ) -> list[TurnPart]:
        """One part per ref, in order. Never raises (but cancellation propagates)."""
        return list(
            await asyncio.gather(*(self._safely(r, can_see, transcribe, media) for r in refs))
        )

    async def _safely(
        self, ref: AttachmentRef, can_see: bool, transcribe: bool, media: MediaRunner
    ) -> TurnPart:
        kind = declared_kind(ref)
        try:
            return await self._prepare(ref, kind, can_see, transcribe, media)
        except (MediaError, FetchError) as exc:
            return _notice(ref, kind, exc.message)
        except ProviderError as exc:
            return _notice(ref, kind, exc.message)
        except Exception as exc:
            log.warning("attachment failed", error=type(exc).__name__, attachment=ref.id)
            return _notice(ref, kind, "something went wrong while reading it")

    async def _prepare(
        self, ref: AttachmentRef, kind: Kind, can_see: bool, transcribe: bool, media: MediaRunner
    ) -> TurnPart:
        if ref.size == 0:
            raise MediaError("the file is empty")
        limit = self.max_text_bytes if kind == "text" else self.max_bytes
        if ref.size > limit:
            raise MediaError(f"the file is larger than {size_text(limit)}")
        if kind == "audio":
            return await self._audio(ref, transcribe, media)
        if kind == "image" and not can_see:
            return await self._described(ref, media)
        data = await fetch_attachment(
            ref.url,
            allowed_hosts=self.allowed_hosts,
            max_bytes=limit,
            timeout=self.timeout,
            session=self.session,
        )
        sniffed = sniff(data, filename=ref.filename, content_type=ref.content_type)
        if not data:
            raise MediaError("the file is empty")
        if sniffed.kind == "image":
            if not can_see:
                return await self._described(ref, media)
            check_image(data, sniffed.mime or "")
            return TurnPart(
                filename=ref.filename,
                kind="image",
                text=f"[image: {ref.filename}]",
                image_url=data_url(data, sniffed.mime or "application/octet-stream"),
            )
        if sniffed.kind == "audio":
            return await self._audio(ref, transcribe, media)
        if sniffed.kind == "text":
            return self._text(ref, data)
        return TurnPart(
            filename=ref.filename,
            kind="other",
            text=f"[file {ref.filename}: not read ({sniffed.label})]",
            ok=False,
        )

    async def _described(self, ref: AttachmentRef, media: MediaRunner) -> TurnPart:
        description = cap_text((await media.describe(ref)).strip(), MAX_DESCRIPTION_CHARS)
        if not description:
            raise MediaError("its description came back empty")
        return TurnPart(
            filename=ref.filename,
            kind="image",
            text=f"[image {ref.filename}, described: {description}]",
        )

    async def _audio(self, ref: AttachmentRef, transcribe: bool, media: MediaRunner) -> TurnPart:
        label = "voice message" if ref.voice else f"audio {ref.filename}"
        if not transcribe:
            return TurnPart(
                filename=ref.filename,
                kind="audio",
                text=f"[{label}: not transcribed (voice transcription is off)]",
                ok=False,
            )
        transcript = cap_text((await media.transcribe(ref)).strip(), MAX_TRANSCRIPT_CHARS)
        if not transcript:
            raise MediaError("no speech was recognised")
        return TurnPart(
            filename=ref.filename, kind="audio", text=f"[{label}, transcribed: {transcript}]"
        )

    def _text(self, ref: AttachmentRef, data: bytes) -> TurnPart:
        content = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
        content = content.translate(_CONTROL_CHARS)
        header = f"[file {ref.filename}]"
        if len(content) > self.max_text_chars:
            content = content[: self.max_text_chars]
            header = f"[file {ref.filename} (only its first {self.max_text_chars:,} characters)]"
        fence = "`" * max(3, _longest_backtick_run(content) + 1)
        return TurnPart(
            filename=ref.filename,
            kind="text",
            text=f"{header}\n{fence}\n{content.rstrip(chr(10))}\n{fence}",
        )


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return longest


def _notice(ref: AttachmentRef, kind: Kind, reason: str) -> TurnPart:
    name = "voice message" if ref.voice else ref.filename
    return TurnPart(
        filename=ref.filename, kind=kind, text=f"[{name} was not read: {reason}]", ok=False
    )


# --- what the background jobs call -------------------------------------------------------------


async def load_attachment(
    ref: AttachmentRef,
    *,
    allowed_hosts: Iterable[str],
    max_bytes: int,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    session: aiohttp.ClientSession | None = None,
) -> LoadedFile:
    """The attachment's bytes (within the fetch limits), what they are, and their sha256.
    Raises `MediaError` (a fetch failure's message, or an empty file)."""
    if ref.size > max_bytes:
        raise MediaError(f"the file is larger than {size_text(max_bytes)}")
    try:
        data = await fetch_attachment(
            ref.url,
            allowed_hosts=allowed_hosts,
            max_bytes=max_bytes,
            timeout=timeout,
            session=session,
        )
    except FetchError as exc:
        raise MediaError(exc.message) from None
    if not data:
        raise MediaError("the file is empty")
    sniffed = sniff(data, filename=ref.filename, content_type=ref.content_type)
    return LoadedFile(data=data, sniffed=sniffed, sha256=hashlib.sha256(data).hexdigest())


async def describe_attachment(
    ref: AttachmentRef,
    *,
    allowed_hosts: Iterable[str],
    max_bytes: int,
    models: Sequence[str | ModelTarget],
    api_base: str | None = None,
    api_key: str | SecretStr | None = None,
    timeout: float = DESCRIBE_TIMEOUT_SECONDS,
    fetch_timeout: float = DEFAULT_TIMEOUT_SECONDS,
    session: aiohttp.ClientSession | None = None,
    cache: MediaCache | None = None,
) -> str:
    """Fetch, sniff and header-check an image, then describe it (`describe_image`). A file
    that is not a PNG/JPEG/GIF/WebP image is a `MediaError`; provider failures `ProviderError`.
    With `cache`, a description of the same bytes is reused and a new one stored."""
    loaded = await load_attachment(
        ref,
        allowed_hosts=allowed_hosts,
        max_bytes=max_bytes,
        timeout=fetch_timeout,
        session=session,
    )
    if loaded.sniffed.kind != "image" or loaded.sniffed.mime is None:
        raise MediaError(f"it is not an image ({loaded.sniffed.label})")
    check_image(loaded.data, loaded.sniffed.mime)
    mime = loaded.sniffed.mime
    return await _through_cache(
        cache,
        f"image:{loaded.sha256}",
        lambda: describe_image(
            loaded.data, mime, models=models, api_base=api_base, api_key=api_key, timeout=timeout
        ),
    )


async def transcribe_attachment(
    ref: AttachmentRef,
    *,
    allowed_hosts: Iterable[str],
    max_bytes: int,
    model: str,
    api_base: str | None = None,
    api_key: str | SecretStr | None = None,
    timeout: float = TRANSCRIBE_TIMEOUT_SECONDS,
    fetch_timeout: float = DEFAULT_TIMEOUT_SECONDS,
    session: aiohttp.ClientSession | None = None,
    cache: MediaCache | None = None,
    language: str | None = None,
) -> str:
    """Fetch and sniff audio, then transcribe it (`transcribe_audio`, with a file name whose
    extension matches the bytes, never the user's). Not audio: `MediaError`."""
    loaded = await load_attachment(
        ref,
        allowed_hosts=allowed_hosts,
        max_bytes=max_bytes,
        timeout=fetch_timeout,
        session=session,
    )
    if loaded.sniffed.kind != "audio":
        raise MediaError(f"it is not audio ({loaded.sniffed.label})")
    return await _through_cache(
        cache,
        f"audio:{loaded.sha256}",
        lambda: transcribe_audio(
            loaded.data,
            f"audio{loaded.sniffed.extension}",
            model=model,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
            language=language,
        ),
    )


async def _through_cache(
    cache: MediaCache | None, key: str, produce: Callable[[], Awaitable[str]]
) -> str:
    """What `cache` holds for `key` (the bytes' kind and hash), else `produce()`, kept."""
    if cache is not None and (cached := await cache.get(key)):
        return cached
    text = await produce()
    if cache is not None:
        await cache.put(key, text)
    return text
