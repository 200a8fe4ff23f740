"""Personalities: the model, the Redis-backed store, and seeding from TOML files."""

from tzurot.personalities.loader import (
    LoadProblem,
    LoadResult,
    PersonalityFileError,
    dump_toml,
    load_directory,
    load_file,
    parse_toml,
)
from tzurot.personalities.models import (
    CharacterCard,
    Personality,
    normalize_ref,
    slugify,
    validation_messages,
)
from tzurot.personalities.store import (
    PersonalityConflict,
    PersonalityDirectory,
    PersonalityStore,
    seed_from_directory,
)

__all__ = [
    "CharacterCard",
    "LoadProblem",
    "LoadResult",
    "Personality",
    "PersonalityConflict",
    "PersonalityDirectory",
    "PersonalityFileError",
    "PersonalityStore",
    "dump_toml",
    "load_directory",
    "load_file",
    "normalize_ref",
    "parse_toml",
    "seed_from_directory",
    "slugify",
    "validation_messages",
]
