"""The generation pipeline a job runs: personality -> prompt -> model -> reply."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr

from tzurot.ai.contracts import (
    GenerationFailure,
    GenerationRequest,
    GenerationResult,
    Progress,
    ProgressCallback,
)
from tzurot.ai.error_messages import error_message_for
from tzurot.ai.models import ModelTarget
from tzurot.ai.prompt import build_messages
from tzurot.ai.provider import ChatModel
from tzurot.conversations.models import ChatTurn, HistorySource
from tzurot.logs import get_logger
from tzurot.personalities.models import Personality

log = get_logger(__name__)


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
    ) -> None:
        self._model = model
        self._history = history
        self._defaults = defaults
        self._history_limit = history_limit

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
        personality = request.personality  # resolved by whoever accepted the request
        user_name = request.user_name or f"user {request.user_id}"
        history: list[ChatTurn] = []
        if request.channel_id is not None:
            user_turn = ChatTurn(
                role="user",
                speaker=user_name,
                content=request.message,
                at=request.created_at,
                personality=personality.slug,
                user_id=request.user_id,
                message_id=request.source_message_id,
            )
            history = await self._history.exchange(
                request.channel_id, user_turn, self._history_limit
            )
        target = self._defaults.target_for(personality)
        messages = build_messages(
            personality,
            user_message=request.message,
            user_name=user_name,
            history=history,
            participants=_participants(user_name, history),
            now=datetime.now(UTC),
            location=request.location,
            model=target.model,
        )
        await progress(Progress.CALLING_MODEL)
        completion = await self._model.complete(
            messages,
            target,
            temperature=personality.temperature,
            max_tokens=personality.max_tokens,
            timeout=timeout,
        )
        await progress(Progress.DONE)
        if request.channel_id is not None:
            reply_turn = ChatTurn(
                role="assistant",
                speaker=personality.display_name,
                content=completion.content,
                at=datetime.now(UTC),
                personality=personality.slug,
                message_id=f"reply:{job_id}",
            )
            await self._history.append(request.channel_id, reply_turn)
        return GenerationResult(
            job_id=job_id,
            request=request,
            status="completed",
            content=completion.content,
            thinking=completion.thinking,
            model=completion.model,
            attempts=attempt,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )

    async def failed(
        self, request: GenerationRequest, *, job_id: str, attempts: int, failure: GenerationFailure
    ) -> GenerationResult:
        return GenerationResult(
            job_id=job_id,
            request=request,
            status="failed",
            error_message=error_message_for(request.personality, failure.category),
            attempts=attempts,
            failure=failure,
        )


def _participants(user_name: str, history: list[ChatTurn]) -> list[str]:
    names = [user_name]
    for turn in history:
        if turn.role == "user" and turn.speaker not in names:
            names.append(turn.speaker)
    return names
