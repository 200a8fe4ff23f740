"""The generation pipeline a job runs: personality -> prompt -> model -> reply."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import SecretStr

from tzurot.ai.contracts import (
    GenerationFailure,
    GenerationRequest,
    GenerationResult,
    Progress,
    ProgressCallback,
)
from tzurot.ai.credentials import CredentialResolver, Credentials, provider_of
from tzurot.ai.error_messages import error_message_for
from tzurot.ai.errors import ErrorCategory, ProviderError
from tzurot.ai.models import ChatMessage, Completion, ModelTarget
from tzurot.ai.prompt import MemoryLine, build_messages, split_at
from tzurot.ai.provider import SAMPLING_PARAMETERS, ChatModel, TextCallback
from tzurot.ai.thinking import prefilled_thinking, streamable
from tzurot.attachments.models import AttachmentRef, TurnPart
from tzurot.conversations.models import ChatTurn, HistorySource
from tzurot.logs import get_logger
from tzurot.memory.models import venue_of
from tzurot.personalities.models import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, Personality
from tzurot.settings.apikeys import ApiKeyVault
from tzurot.settings.catalog import SETTING_KEYS, SPECS, SettingValue

if TYPE_CHECKING:
    from tzurot.memory.service import MemoryService

log = get_logger(__name__)


class EffectiveSettings(Protocol):
    """What a generation reads of the settings cascade (tzurot/settings/resolver.py's
    ResolvedSettings): the effective value of each, None where nothing sets it."""

    @property
    def model(self) -> str | None: ...
    @property
    def temperature(self) -> float | None: ...
    @property
    def top_p(self) -> float | None: ...
    @property
    def frequency_penalty(self) -> float | None: ...
    @property
    def presence_penalty(self) -> float | None: ...
    @property
    def max_tokens(self) -> int | None: ...
    @property
    def context_window(self) -> int | None: ...
    @property
    def history_limit(self) -> int | None: ...
    @property
    def memory(self) -> bool: ...
    @property
    def streaming(self) -> bool: ...
    @property
    def voice_transcription(self) -> bool: ...


@runtime_checkable
class DescribedSettings(Protocol):
    """Settings that also tell where each value came from (ResolvedSettings): what Inspect
    shows of them."""

    @property
    def values(self) -> Mapping[str, SettingValue | None]: ...
    def describe_source(self, key: str) -> str: ...


class ReplyStreamWriter(Protocol):
    """One attempt's reply as it streams in (tzurot/jobs/streams.py's ReplyStreamWriter)."""

    async def restart(self) -> None: ...
    async def show(self, visible: str) -> None: ...
    async def end(self) -> None: ...
    async def close(self) -> None: ...


class ReplyStreams(Protocol):
    """Where replies stream to while they are written (tzurot/jobs/streams.py)."""

    def writer(self, job_id: str, lane: str) -> ReplyStreamWriter: ...
    async def prefills_thinking(self, model: str) -> bool: ...
    async def note_prefilled_thinking(self, model: str) -> None: ...


@dataclass(frozen=True)
class ShownSettings:
    """The settings as Inspect shows them: each key's value and where it came from, as text
    (the keys a user can set, tzurot/settings/catalog.py)."""

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, resolved: object) -> ShownSettings:
        if not isinstance(resolved, DescribedSettings):
            return cls()
        values: dict[str, str] = {}
        sources: dict[str, str] = {}
        for key in SETTING_KEYS:
            if key not in resolved.values:
                continue
            value = resolved.values[key]
            values[key] = "not set" if value is None else SPECS[key].format(value)
            sources[key] = resolved.describe_source(key)
        return cls(values, sources)


class SettingsSource(Protocol):
    async def resolve(
        self,
        personality: Personality,
        *,
        user_id: str,
        channel_id: str | None,
        parent_channel_id: str | None,
    ) -> EffectiveSettings: ...


def rejected_key_notice(provider: str, personality: Personality) -> str:
    return (
        f"Your **{provider}** API key was refused by {provider} when "
        f"{personality.display_name} tried to answer you, so I could not reply. Replace it "
        "with `/settings apikey set`, or remove it with `/settings apikey remove` to use the "
        "bot's own access (where there is one). I will not tell you again for this key."
    )


class AttachmentReader(Protocol):
    """Turns a message's attachments into what joins the user's turn (tzurot/attachments)."""

    async def prepare(
        self, refs: Sequence[AttachmentRef], *, can_see: bool, transcribe: bool
    ) -> list[TurnPart]: ...


class ModelDefaults:
    """Where a personality's model call goes when it does not say: DEFAULT_MODEL and
    LLM_API_BASE/LLM_API_KEY from the settings."""

    def __init__(self, model: str, api_base: str | None, api_key: SecretStr | None) -> None:
        self.model = model
        self.api_base = api_base
        self.api_key = api_key

    def target_for(self, personality: Personality) -> ModelTarget:
        return ModelTarget(
            model=personality.model or self.model, api_base=self.api_base, api_key=self.api_key
        )


class Generator:
    """Implements the job queue's GenerationHandler."""

    def __init__(
        self,
        model: ChatModel,
        history: HistorySource,
        defaults: ModelDefaults,
        history_limit: int = 50,
        *,
        settings: SettingsSource | None = None,
        credentials: CredentialResolver | None = None,
        vault: ApiKeyVault | None = None,
        memory: MemoryService | None = None,
        attachments: AttachmentReader | None = None,
        can_see: Callable[[str], bool] | None = None,
        after: Callable[[str, float], Awaitable[object]] | None = None,
        streams: ReplyStreams | None = None,
    ) -> None:
        """`settings` (the cascade) and `credentials` (BYOK, operator, guest) are optional:
        without them the personality's own values and `defaults` apply, as before. Without
        `memory` nothing is recalled or remembered; without `attachments` files are named only.
        `can_see(model)` tells whether a model takes images (litellm's supports_vision).
        `after(job_id, timeout)` waits for another job to finish (group_replies).
        With `streams`, a reply to be delivered streams there while it is written (when the
        `streaming` setting is on)."""
        self._streams = streams
        self._after = after
        self._model = model
        self._history = history
        self._defaults = defaults
        self._history_limit = history_limit
        self._settings = settings
        self._credentials = credentials
        self._vault = vault
        self._memory = memory
        self._attachments = attachments
        self._can_see = can_see or (lambda _model: False)

    async def generate(
        self,
        request: GenerationRequest,
        *,
        job_id: str,
        attempt: int,
        timeout: float,
        progress: ProgressCallback,
    ) -> GenerationResult:
        await progress(Progress.STARTED)
        timeout = await self._wait_after(request, timeout)  # (D) group_replies
        # Resolved by whoever accepted the request; its values as the settings cascade has them.
        personality, sampling, history_limit, flags, shown = await self._effective(request)
        credentials = await self._target(request, personality)
        target = credentials.target
        user_name = request.user_name or f"user {request.user_id}"
        user_text, images = await self._read_attachments(request, target.model, flags)
        history: list[ChatTurn] = []
        if request.channel_id is not None and request.chime_in:
            # (D) /chime-in: no new message; the channel's recent turns, nothing stored.
            recent = getattr(self._history, "recent", None)
            history = list(await recent(request.channel_id, history_limit)) if recent else []
        elif request.channel_id is not None:
            user_turn = ChatTurn(
                role="user",
                speaker=user_name,
                content=user_text,
                at=request.created_at,
                personality=personality.slug,
                user_id=request.user_id,
                message_id=request.source_message_id,
            )
            if request.regenerates is None:
                history = await self._history.exchange(request.channel_id, user_turn,
                                                       history_limit)  # fmt: skip
            else:  # (C) a new reply to the same turn: the history before it, nothing stored
                history = await self._history.exchange_again(
                    request.channel_id, request.regenerates, user_turn, history_limit
                )
        following: list[ChatTurn] = []
        if request.after_job_id is not None:  # (D) the replies before this one follow the message
            history, following = split_at(history, request.created_at)
        remember, facts, memories = (
            (False, [], [])
            if request.chime_in
            else await self._recall(request, user_text, history, flags)
        )
        messages = build_messages(
            personality,
            user_message=user_text,
            user_name=user_name,
            history=history,
            participants=_participants(user_name, history),
            now=datetime.now(UTC),
            location=request.location,
            model=target.model,
            images=images,
            facts=facts,
            memories=memories,
            following=following,
            chime_in=request.chime_in,
        )
        await progress(Progress.CALLING_MODEL)
        live = await self._live_reply(request, job_id, target.model, flags)  # None: not streamed
        started = time.monotonic()
        completion = await self._call_model(
            messages, personality, credentials, sampling, timeout=timeout, live=live
        )
        latency_ms = round((time.monotonic() - started) * 1000)
        if live is not None:
            await live.finished()
            if prefilled_thinking(live.raw) and self._streams is not None:
                # Its replies are hidden while they stream until the closing tag, from now on
                # and on every process (see thinking.streamable).
                await self._streams.note_prefilled_thinking(target.model)
        await progress(Progress.DONE)
        if request.channel_id is not None:
            reply_turn = ChatTurn(
                role="assistant",
                speaker=personality.display_name,
                content=completion.content,
                at=datetime.now(UTC),
                personality=personality.slug,
                user_id=request.user_id,  # whom it answers (/history clear takes both)
                message_id=f"reply:{job_id}",
            )
            if request.regenerates is None:
                await self._history.append(request.channel_id, reply_turn)
            else:  # (C) the old reply's turn gives way to this one, in its place
                await self._history.replace(
                    request.channel_id, f"reply:{request.regenerates}", reply_turn
                )
        result = GenerationResult(
            job_id=job_id,
            request=request,
            status="completed",
            content=completion.content,
            thinking=completion.thinking,
            model=completion.model,
            target_model=target.model,
            attempts=attempt,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            user_turn=user_text,
            remember=remember,
            provider=credentials.provider,
            latency_ms=latency_ms,
            streamed=live is not None,
            settings_used=shown.values,
            settings_sources=shown.sources,
            memories_used=tuple(_shortened(m.text) for m in memories),
        )
        if remember and request.delivery is None and self._memory is not None:
            # Nobody posts this reply (an API caller, the terminal): it is out once it is here.
            exchange = self._memory.exchange_of(result)
            if exchange is not None:
                await self._memory.remember_later(exchange)
        return result

    async def _call_model(
        self,
        messages: Sequence[ChatMessage],
        personality: Personality,
        credentials: Credentials,
        sampling: dict[str, float],
        *,
        timeout: float,
        live: _LiveReply | None,
    ) -> Completion:
        """The model call (streamed into `live` when there is one); a refused user key is
        told apart from a refused operator key."""
        on_text: TextCallback | None = live.on_text if live is not None else None
        try:
            return await self._model.complete(
                messages,
                credentials.target,
                temperature=_or(personality.temperature, DEFAULT_TEMPERATURE),
                max_tokens=personality.max_tokens or DEFAULT_MAX_TOKENS,
                timeout=timeout,
                on_text=on_text,
                **sampling,
            )
        except ProviderError as error:
            if live is not None:
                await live.failed()
            if not (credentials.uses_user_key and error.category is ErrorCategory.AUTHENTICATION):
                raise
            raise ProviderError(
                ErrorCategory.USER_KEY_REJECTED,
                f"The provider {credentials.provider} refused the API key this user added.",
                status_code=error.status_code,
            ) from None

    async def _live_reply(
        self, request: GenerationRequest, job_id: str, model: str, flags: dict[str, bool]
    ) -> _LiveReply | None:
        """This attempt's reply stream, when the reply is delivered and streaming is on."""
        if self._streams is None or request.delivery is None or not flags["streaming"]:
            return None
        writer = self._streams.writer(job_id, request.delivery.lane)
        live = _LiveReply(writer, prefilled=await self._streams.prefills_thinking(model))
        await live.start()
        return live

    async def _wait_after(self, request: GenerationRequest, timeout: float) -> float:
        """(D) group_replies: the reply this one answers after is finished first (so it is in
        the history), within this attempt's time; what is left of that time."""
        if request.after_job_id is None or self._after is None:
            return timeout
        started = time.monotonic()
        try:
            await self._after(request.after_job_id, timeout)
        except Exception:
            log.warning("could not wait for the previous reply", exc_info=True)
        return max(timeout - (time.monotonic() - started), 1.0)

    async def _read_attachments(
        self, request: GenerationRequest, model: str, flags: dict[str, bool]
    ) -> tuple[str, list[str]]:
        """The user's words with their attachments as text, and the images to show the model."""
        if not request.attachments:
            return request.message, []
        if self._attachments is None:
            parts = [f"[file {ref.filename}: not read]" for ref in request.attachments]
            return _joined(request.message, parts), []
        prepared = await self._attachments.prepare(
            request.attachments,
            can_see=self._can_see(model),
            transcribe=flags["voice_transcription"],
        )
        images = [part.image_url for part in prepared if part.image_url]
        return _joined(request.message, [part.text for part in prepared]), images

    async def _recall(
        self,
        request: GenerationRequest,
        user_text: str,
        history: Sequence[ChatTurn],
        flags: dict[str, bool],
    ) -> tuple[bool, list[str], list[MemoryLine]]:
        """(remember this exchange?, facts, memories): nothing when memory is off."""
        if self._memory is None or not flags["memory"]:
            return False, [], []
        try:
            recollection = await self._memory.recall(
                user_id=request.user_id,
                personality=request.personality.slug,
                venue=venue_of(
                    request.guild_id, request.channel_id, discord=request.delivery is not None
                ),
                query=user_text,
                exclude_sources=[t.message_id for t in history if t.message_id]
                + _replaced_sources(request),  # (C)
            )
        except Exception as error:
            # Memory is a help, not a condition: the reply goes on without it.
            log.warning("memory recall failed", error=type(error).__name__)
            return True, [], []
        memories = [MemoryLine(r.record.at, r.record.text) for r in recollection.memories]
        facts = [fact.text for fact in recollection.facts]
        return not recollection.prefs.incognito, facts, memories

    async def failed(
        self, request: GenerationRequest, *, job_id: str, attempts: int, failure: GenerationFailure
    ) -> GenerationResult:
        notice = None
        if failure.category == ErrorCategory.USER_KEY_REJECTED:
            notice = await self._rejection_notice(request)
        return GenerationResult(
            job_id=job_id,
            request=request,
            status="failed",
            error_message=error_message_for(request.personality, failure.category),
            attempts=attempts,
            failure=failure,
            private_notice=notice,
        )

    # -- settings and credentials ------------------------------------------------------------

    async def _effective(
        self, request: GenerationRequest
    ) -> tuple[Personality, dict[str, float], int, dict[str, bool], ShownSettings]:
        """The personality with the cascade's values in it (what the prompt budget and the
        model call read), the sampling values that are set, the history limit, the
        switches (`memory`, `voice_transcription`, `streaming`), and the settings as Inspect
        shows them."""
        personality = request.personality
        if self._settings is None:
            flags = {"memory": True, "voice_transcription": True, "streaming": True}
            return (
                personality.with_defaults(),
                _sampling_of(personality),
                self._history_limit,
                flags,
                ShownSettings(),
            )
        resolved = await self._settings.resolve(
            personality,
            user_id=request.user_id,
            channel_id=request.channel_id,
            parent_channel_id=request.parent_channel_id,
        )
        changes: dict[str, Any] = {}
        for name in ("model", "temperature", "max_tokens", "context_window", *SAMPLING_PARAMETERS):
            value = getattr(resolved, name, None)
            if value is not None and value != getattr(personality, name):
                changes[name] = value
        if changes:
            # No validation on copy: the resolver has validated every value it returns.
            personality = personality.model_copy(update=changes)
        limit = resolved.history_limit
        flags = {
            "memory": bool(resolved.memory),
            "voice_transcription": bool(resolved.voice_transcription),
            "streaming": bool(resolved.streaming),
        }
        return (
            personality,
            _sampling_of(personality),
            self._history_limit if limit is None else int(limit),
            flags,
            ShownSettings.of(resolved),
        )

    async def _target(self, request: GenerationRequest, personality: Personality) -> Credentials:
        if self._credentials is None:
            target = self._defaults.target_for(personality)
            return Credentials(target, "operator", provider_of(target.model), target.model)
        return await self._credentials.resolve(
            request.user_id, personality.model or self._defaults.model
        )

    async def _rejection_notice(self, request: GenerationRequest) -> str | None:
        """The owner of the refused key is told once per key (the vault's rejected flag)."""
        # Worked out again from the request (the settings cascade, as the call did), so any
        # process that records the failure can tell: a re-run after a crash, or a sweep.
        try:
            personality, *_ = await self._effective(request)
            provider = provider_of(personality.model or self._defaults.model)
        except Exception:
            log.warning("could not work out whose key was refused")
            return None
        if self._vault is None or not await self._vault.mark_rejected(request.user_id, provider):
            return None
        return rejected_key_notice(provider, request.personality)


def _replaced_sources(request: GenerationRequest) -> list[str]:
    """(C) A reply replacing another does not recall the memory of the exchange it replaces."""
    if request.regenerates is None:
        return []
    return [f"reply:{request.regenerates}", *filter(None, [request.source_message_id])]


class _LiveReply:
    """One attempt's reply streaming into its job's reply stream: only what is safe to show
    (thinking.streamable). A failing stream is logged and left: the result is what counts."""

    def __init__(self, writer: ReplyStreamWriter, *, prefilled: bool) -> None:
        self._writer = writer
        self._prefilled = prefilled
        self._working = True
        self._shown = ""
        self.raw = ""  # all the raw content so far

    async def start(self) -> None:
        await self._do(self._writer.restart())

    async def on_text(self, raw: str) -> None:
        self.raw = raw
        visible = streamable(raw, prefilled=self._prefilled)
        if visible != self._shown:
            self._shown = visible
            await self._do(self._writer.show(visible))

    async def finished(self) -> None:
        await self._do(self._writer.end())

    async def failed(self) -> None:
        await self._do(self._writer.close())

    async def _do(self, step: Awaitable[None]) -> None:
        if not self._working:
            if isinstance(step, Coroutine):
                step.close()
            return
        try:
            await step
        except Exception:
            self._working = False
            log.warning("could not write the reply stream", exc_info=True)


def _shortened(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _joined(message: str, parts: Sequence[str]) -> str:
    return "\n\n".join(part for part in (message.strip(), *parts) if part)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _sampling_of(personality: Personality) -> dict[str, float]:
    return {
        name: float(value)
        for name in SAMPLING_PARAMETERS
        if (value := getattr(personality, name)) is not None
    }


def _participants(user_name: str, history: list[ChatTurn]) -> list[str]:
    names = [user_name]
    for turn in history:
        if turn.role == "user" and turn.speaker not in names:
            names.append(turn.speaker)
    return names
