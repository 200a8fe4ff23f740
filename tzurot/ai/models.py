"""What crosses the ai module's boundary: where to send a call, what to send, what came back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr


class ModelTarget(BaseModel):
    """A litellm model string plus, for OpenAI-compatible endpoints, its base URL and key."""

    model_config = ConfigDict(frozen=True)

    model: str
    api_base: str | None = None
    api_key: SecretStr | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str
    # Images (data: URLs) that go with a user message to a model that can see.
    images: tuple[str, ...] = ()

    def wire(self) -> dict[str, object]:
        """The message as the OpenAI chat format has it (what litellm takes)."""
        if not self.images:
            return {"role": self.role, "content": self.content}
        parts: list[dict[str, object]] = [{"type": "text", "text": self.content}]
        parts += [{"type": "image_url", "image_url": {"url": url}} for url in self.images]
        return {"role": self.role, "content": parts}


class Completion(BaseModel):
    """A model's reply. `content` is what users may see; `thinking` is kept for inspection only."""

    content: str
    thinking: str | None = None
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
