"""What crosses the attachments module's boundary: a file a user sent, and what joins the turn.

Pure (pydantic only): the message path builds `AttachmentRef`s from Discord's attachment
objects, and background jobs carry them in their payloads.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_URL_CHARS = 2048
MAX_FILENAME_CHARS = 256
MAX_CONTENT_TYPE_CHARS = 127

Kind = Literal["image", "audio", "text", "other"]

# Discord mention markup (<@1>, <@!1>, <@&1>, <#1>, </cmd:1>, <a:name:1>): a file name must not
# ping anyone or render as a mention when it is shown back.
_MARKUP = re.compile(r"<(?:@[!&]?|#|/[\w -]+:|a?:\w+:)\d+>")
_EVERYONE = re.compile(r"@+(everyone|here)\b", re.IGNORECASE)
# Brackets and backticks could close a label ("[file ...]") or a code fence around the content.
_SWAPS = str.maketrans("[]`", "()'")


class MediaError(Exception):
    """An attachment that cannot be described, transcribed or read; `message` is user-safe."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def clean_filename(raw: str) -> str:
    """A file name safe to show inside a labelled turn: no control or format characters (so no
    newlines), no mention markup, no brackets or backticks that could end a label or a code
    fence, whitespace collapsed, at most 256 characters; "file" when nothing is left."""
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in raw
    )
    while True:  # until stable: removing one mention may join the pieces of another
        cleaned = _EVERYONE.sub(r"\1", _MARKUP.sub("", text))
        if cleaned == text:
            break
        text = cleaned
    text = text.translate(_SWAPS)
    text = " ".join(text.split())
    return text[:MAX_FILENAME_CHARS].strip() or "file"


class AttachmentRef(BaseModel):
    """A file attached to a message, as Discord describes it (`size` and `content_type` are
    what Discord says, which a hostile client may make lie: the bytes decide)."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    url: str = Field(max_length=MAX_URL_CHARS)
    filename: str = Field(default="file", max_length=MAX_FILENAME_CHARS)
    content_type: str | None = None
    size: int = Field(ge=0)
    voice: bool = False  # a Discord voice message (message flag IS_VOICE_MESSAGE)
    duration_s: float | None = None

    @field_validator("filename", mode="before")
    @classmethod
    def _clean_filename(cls, value: Any) -> Any:
        return clean_filename(value) if isinstance(value, str) else value

    @field_validator("content_type", mode="before")
    @classmethod
    def _clean_content_type(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip().lower()[:MAX_CONTENT_TYPE_CHARS]
        return text if text and text.isprintable() else None

    @field_validator("duration_s", mode="before")
    @classmethod
    def _clean_duration(cls, value: Any) -> Any:
        # Informational only: a hostile value becomes "unknown" instead of refusing the file.
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) and value >= 0 else None

    @property
    def mime(self) -> str | None:
        """The declared content type without parameters (`audio/ogg; codecs=opus` -> audio/ogg)."""
        if self.content_type is None:
            return None
        return self.content_type.split(";", 1)[0].strip() or None

    @property
    def extension(self) -> str:
        """The file name's extension, lower case, with the dot (".png"), or ""."""
        _, dot, ext = self.filename.rpartition(".")
        return f".{ext.lower()}" if dot and ext and " " not in ext else ""


class TurnPart(BaseModel):
    """What one attachment adds to the user's turn (and to the stored history)."""

    model_config = ConfigDict(frozen=True)

    filename: str
    kind: Kind
    # A labelled description, a transcript, the file's content, or a plain notice saying why
    # it was not read ("[cat.png was not read: the file is larger than 8 MiB]").
    text: str
    # A data: URL, only when the image goes to a model that can see it.
    image_url: str | None = None
    # False: its content did not reach the turn (the notice in `text` says why).
    ok: bool = True
