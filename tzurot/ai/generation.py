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
from tzurot.ai.errors import ErrorCategory, ProviderError
from tzurot.ai.models import ModelTarget
from tzurot.ai.prompt import build_messages
from tzurot.ai.provider import ChatModel
from tzurot.conversations.models import ChatTurn, HistorySource
from tzurot.logs import get_logger
from tzurot.personalities.models import Personality
from tzurot.personalities.store import PersonalityDirectory

log = get_logger(__name__)

# What a user reads when a personality has no error_message of its own.
BUILT_IN_ERROR_MESSAGES: dict[str, str] = {
    ErrorCategory.AUTHENTICATION: "I can't reach my model right now: its API key was refused.",
    ErrorCategory.QUOTA_EXCEEDED: "I'm out of credits with my model provider for the moment.",
    ErrorCategory.CONTENT_POLICY: "My model provider declined to answer that.",
    ErrorCategory.MODEL_NOT_FOUND: "The model I'm set up to use doesn't exist any more.",
    ErrorCategory.BAD_REQUEST: "My model provider couldn't make sense of that request.",
    ErrorCategory.CONTEXT_WINDOW: "This conversation got too long for my model to read.",
    ErrorCategory.RATE_LIMIT: "Too many people are talking to me at once; try again shortly.",
    ErrorCategory.SERVER_ERROR: "My model provider is having trouble right now.",
    ErrorCategory.TIMEOUT: "My model took too long to answer.",
    ErrorCategory.NETWORK: "I couldn't reach my model provider.",
    ErrorCategory.EMPTY_RESPONSE: "My model answered with nothing at all.",
}
DEFAULT_ERROR_MESSAGE = "Something went wrong while I was thinking."


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
        personalities: PersonalityDirectory,
        model: ChatModel,
        history: HistorySource,
        defaults: ModelDefaults,
        history_limit: int = 50,
    ) -> None:
        self._personalities = personalities
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
        personality = await self._personalities.get(request.personality)
        if personality is None:
            raise ProviderError(
                ErrorCategory.BAD_REQUEST, f"personality {request.personality!r} no longer exists"
            )
        history = []
        if request.channel_id is not None and self._history_limit:
            history = await self._history.recent(request.channel_id, self._history_limit + 1)
            # The triggering message is already in the transcript; it goes in as the new turn.
            history = [t for t in history if t.message_id != request.source_message_id]
        target = self._defaults.target_for(personality)
        user_name = request.user_name or f"user {request.user_id}"
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
        return GenerationResult(
            job_id=job_id,
            request=request,
            status="completed",
            personality_slug=personality.slug,
            display_name=personality.display_name,
            avatar_url=personality.avatar_url,
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
        personality = await self._personalities.get(request.personality)
        own_message = personality.error_message if personality else None
        return GenerationResult(
            job_id=job_id,
            request=request,
            status="failed",
            personality_slug=personality.slug if personality else None,
            display_name=personality.display_name if personality else None,
            avatar_url=personality.avatar_url if personality else None,
            error_message=own_message
            or BUILT_IN_ERROR_MESSAGES.get(failure.category, DEFAULT_ERROR_MESSAGE),
            attempts=attempts,
            failure=failure,
        )


def _participants(user_name: str, history: list[ChatTurn]) -> list[str]:
    names = [user_name]
    for turn in history:
        if turn.role == "user" and turn.speaker not in names:
            names.append(turn.speaker)
    return names
