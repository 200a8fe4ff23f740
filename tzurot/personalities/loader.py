"""Personality TOML files (format in DESIGN.md): load a directory of them, write one back."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tzurot.personalities.models import CharacterCard, Personality, validation_messages
from tzurot.personalities.toml_io import dump_toml

__all__ = ["MAX_FILE_BYTES", "LoadProblem", "LoadResult", "PersonalityFileError", "dump_toml",
           "load_directory", "load_file", "parse_toml"]  # fmt: skip

MAX_FILE_BYTES = 256 * 1024

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$")


class PersonalityFileError(ValueError):
    """One personality file (or uploaded export) that cannot be used, and why."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class LoadProblem:
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = str(self.path) if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    personalities: list[Personality] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)
    """The file each loaded personality came from, by slug."""
    unchanged: list[str] = field(default_factory=list)
    """Slugs whose file was already seeded as it is (nothing written)."""
    kept: list[str] = field(default_factory=list)
    """Slugs edited in Discord or the API: their file's version was not applied."""


def parse_toml(data: bytes) -> Personality:
    """One personality from the bytes of a TOML file; raises `PersonalityFileError`."""
    if len(data) > MAX_FILE_BYTES:
        raise PersonalityFileError(f"file is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PersonalityFileError("not valid UTF-8", line) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(str(exc)) from None
    _check_keys(raw, Personality)
    if isinstance(raw.get("card"), dict):
        _check_keys(raw["card"], CharacterCard, prefix="card.")
    try:
        return Personality.model_validate(raw)
    except ValidationError as exc:
        raise PersonalityFileError("; ".join(validation_messages(exc))) from None


def load_file(path: Path) -> Personality:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PersonalityFileError(f"cannot read: {exc.strerror or exc}") from None
    return parse_toml(data)


def load_directory(path: Path) -> LoadResult:
    """Every `*.toml` in `path`, in name order. Bad files and duplicates land in `problems`."""
    result = LoadResult()
    if not path.exists():
        return result
    if not path.is_dir():
        result.problems.append(LoadProblem(path, None, "not a directory"))
        return result
    claimed: dict[str, Personality] = {}
    for file in sorted(path.glob("*.toml")):
        if file.name.startswith(".") or not file.is_file():
            continue  # editor lock files and the like
        try:
            personality = load_file(file)
        except PersonalityFileError as exc:
            result.problems.append(LoadProblem(file, exc.line, exc.message))
            continue
        clashes = sorted(ref for ref in personality.refs() if ref in claimed)
        if clashes:
            other = claimed[clashes[0]]
            message = (
                f"{clashes[0]!r} is already used by {other.name!r} "
                f"({result.sources[other.slug].name}); skipped"
            )
            result.problems.append(LoadProblem(file, None, message))
            continue
        claimed.update(dict.fromkeys(personality.refs(), personality))
        result.personalities.append(personality)
        result.sources[personality.slug] = file
    return result


def _syntax_error(message: str) -> PersonalityFileError:
    # Python 3.11's tomllib only reports the position inside the message text.
    match = _TOML_POSITION.search(message)
    line = int(match.group(1)) if match else None
    if match:
        message = message[: match.start()]
    return PersonalityFileError(message[:1].lower() + message[1:], line)


def _check_keys(raw: dict[str, Any], model: type[BaseModel], prefix: str = "") -> None:
    known = list(model.model_fields)
    for key in raw:
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise PersonalityFileError(f"{prefix}{key}: unknown key{suggestion}")
