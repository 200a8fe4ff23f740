"""The personality model: who a character is and which model speaks for it."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tzurot.personalities.validation import MAX_NAME_CHARS, check_text, clean_label

# What a character that does not set them gets (the original's figures).
DEFAULT_TEMPERATURE = 0.7
DEFAULT_MAX_TOKENS = 4096
DEFAULT_CONTEXT_WINDOW = 131_072

MAX_ERROR_MESSAGE_CHARS = 500
MAX_PROMPT_CHARS = 32_000
MAX_CARD_FIELD_CHARS = 8_000

_SLUG_SEPARATORS = re.compile(r"[\W_]+")
_SNOWFLAKE = re.compile(r"^[0-9]{1,20}$")


def _fold_char(ch: str) -> str:
    # Accented Latin folds to ASCII (é -> e); letters with no ASCII form (李, ж) are kept,
    # so names in any script get a slug; symbols and emoji are dropped.
    ascii_form = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    if ascii_form:
        return ascii_form
    return ch if ch.isalnum() else ""


def slugify(name: str) -> str:
    """`Bambi Prime` -> `bambi-prime`, `Zoë` -> `zoe`, `李白` -> `李白`."""
    folded = "".join(_fold_char(ch) for ch in unicodedata.normalize("NFC", name).casefold())
    return _SLUG_SEPARATORS.sub("-", folded.lower()).strip("-")


def normalize_ref(ref: str) -> str:
    """The form names, slugs and aliases are compared in: NFKC, casefolded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", ref).casefold().split())


def _clean_label(value: str) -> str:
    """Names, display names and aliases: the rules of `validation.clean_label`."""
    return clean_label(value)


def _check_text(value: str) -> str:
    return check_text(value)


CardText = Annotated[str, Field(max_length=MAX_CARD_FIELD_CHARS), AfterValidator(_check_text)]


def validation_messages(error: ValidationError) -> list[str]:
    """One `field: problem` line per error, for people rather than for pydantic."""
    messages = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            text = "unknown key"
        else:
            text = item["msg"].removeprefix("Value error, ")
            text = text[:1].lower() + text[1:]
        messages.append(f"{where}: {text}" if where else text)
    return messages


class CharacterCard(BaseModel):
    """The optional character card fields of the original."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    character_info: CardText = ""
    personality_traits: CardText = ""
    tone: CardText = ""
    age: CardText = ""
    appearance: CardText = ""
    likes: CardText = ""
    dislikes: CardText = ""
    conversational_goals: CardText = ""
    conversational_examples: CardText = ""


class Personality(BaseModel):
    """A character. Only `name` and `system_prompt` are required; the rest has defaults.

    `model = None` means "use DEFAULT_MODEL".
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    system_prompt: Annotated[
        str, Field(min_length=1, max_length=MAX_PROMPT_CHARS), AfterValidator(_check_text)
    ]
    display_name: str = ""
    slug: str = ""
    aliases: tuple[str, ...] = ()
    avatar_url: str | None = None
    model: str | None = None
    # None: the character does not say, and the settings cascade goes on to its preset and
    # the built-in defaults (DEFAULT_TEMPERATURE, ...).
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    context_window: int | None = Field(default=None, ge=1024, le=10_000_000)
    # Sampling beyond temperature: unset means the model's own default.
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    # A preset (by name or slug) whose values sit between the built-in defaults and this
    # character's own in the settings cascade.
    preset: str | None = Field(default=None, max_length=80)
    owner_id: str | None = None
    public: bool = True
    error_message: (
        Annotated[str, Field(max_length=MAX_ERROR_MESSAGE_CHARS), AfterValidator(_check_text)]
        | None
    ) = None
    card: CharacterCard = CharacterCard()

    @property
    def id(self) -> str:
        """Stable identity: the slug is unique across personalities."""
        return self.slug

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return _clean_label(value)

    @field_validator("display_name")
    @classmethod
    def _check_display_name(cls, value: str) -> str:
        return _clean_label(value) if value else ""

    @field_validator("slug")
    @classmethod
    def _check_slug(cls, value: str) -> str:
        if not value:
            return ""
        if len(value) > MAX_NAME_CHARS:
            raise ValueError(f"must be at most {MAX_NAME_CHARS} characters")
        slug = slugify(value)
        if not slug:
            raise ValueError("must contain at least one letter or digit")
        return slug

    @field_validator("aliases")
    @classmethod
    def _check_aliases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = []
        for alias in value:
            try:
                cleaned.append(_clean_label(alias))
            except ValueError as exc:
                raise ValueError(f"{alias[:100]!r}: {exc}") from None
        return tuple(cleaned)

    @field_validator("avatar_url")
    @classmethod
    def _check_avatar(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value) if len(value) <= 2048 else None
        if (
            parts is None
            or parts.scheme not in {"http", "https"}
            or not parts.hostname
            or any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in value)
        ):
            raise ValueError("must be an http(s) URL of at most 2048 characters")
        return value

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if len(value) > 200 or any(ch.isspace() for ch in value):
            raise ValueError("must be a litellm model string without spaces")
        return value

    @field_validator("owner_id", mode="before")
    @classmethod
    def _check_owner(cls, value: Any) -> Any:
        # A Discord user id; TOML authors naturally write it as an integer.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and not _SNOWFLAKE.match(value):
            raise ValueError("must be a Discord user id (digits only)")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Personality:
        slug = self.slug or slugify(self.name)
        if not slug:
            raise ValueError("name has no letter or digit to derive a slug from; set slug")
        object.__setattr__(self, "display_name", self.display_name or self.name)
        object.__setattr__(self, "slug", slug)
        return self

    def with_defaults(self) -> Personality:
        """This personality with the built-in values where it sets none (for callers that
        run without the settings cascade)."""
        temperature = DEFAULT_TEMPERATURE if self.temperature is None else self.temperature
        return self.model_copy(
            update={
                "temperature": temperature,
                "max_tokens": self.max_tokens or DEFAULT_MAX_TOKENS,
                "context_window": self.context_window or DEFAULT_CONTEXT_WINDOW,
            }
        )

    def refs(self) -> set[str]:
        """Every normalized string this personality can be looked up by."""
        return {normalize_ref(r) for r in (self.name, self.slug, self.display_name, *self.aliases)}
