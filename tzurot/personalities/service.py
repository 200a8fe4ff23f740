"""Managing characters: the one service the slash commands and the HTTP API both call.

It holds the rules, so that Discord and the API cannot drift apart:
- who may see a character: a private one is its owner's alone (`visible_to`); the bot owner
  (BOT_OWNER_ID, and the API token, which acts as the bot owner) may also reach one to manage
  it, but mentions, replies, autocomplete and /chat still follow `visible_to`;
- who may change or delete one: its owner, or the bot owner; a character without an owner
  (seeded from a file) only the bot owner;
- every change is validated as a whole new `Personality` before anything is written, and the
  write is one Redis transaction (nothing half-saved); names clash case-insensitively with
  any name, slug, display name or alias of another character;
- each write records its provenance (`discord` or `api`), so seeding from files never
  silently overwrites it.
Errors are `CharacterError(code, message)`; the message is safe to show to users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from tzurot.personalities.avatars import AVATAR_MAX_BYTES, AvatarError, AvatarStore, check_avatar
from tzurot.personalities.avatars import avatar_url as build_avatar_url
from tzurot.personalities.loader import PersonalityFileError
from tzurot.personalities.models import (
    CharacterCard,
    Personality,
    normalize_ref,
    validation_messages,
)
from tzurot.personalities.store import (
    PersonalityChanged,
    PersonalityConflict,
    PersonalityExists,
    PersonalityStore,
)
from tzurot.personalities.toml_io import dump_toml, export_filename, import_toml

MAX_ALIASES = 10
CARD_FIELDS = tuple(CharacterCard.model_fields)
# What an edit may change (the slug is the identity, fixed at creation).
EDITABLE = frozenset(Personality.model_fields) - {"slug"}

ErrorCode = Literal["not_found", "forbidden", "conflict", "invalid", "too_large", "unavailable"]
STATUS = {
    "not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 400, "too_large": 413,
    "unavailable": 503,
}  # fmt: skip


class CharacterError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS[self.code]


@dataclass(frozen=True)
class Actor:
    """Who acts: a Discord user (by id) or the API token; `admin` is the bot owner's rights."""

    user_id: str | None
    admin: bool
    source: Literal["discord", "api"]

    @property
    def label(self) -> str:
        return self.user_id or "api"


def visible_to(personality: Personality, user_id: str | None) -> bool:
    """Whether a user sees a character at all (mentions, replies, autocomplete, /chat)."""
    return personality.public or (user_id is not None and personality.owner_id == user_id)


class CharacterService:
    def __init__(
        self,
        store: PersonalityStore,
        avatars: AvatarStore,
        *,
        owner_id: str | None,
        public_base_url: str | None,
        max_attachment_bytes: int = AVATAR_MAX_BYTES,
        attachment_hosts: tuple[str, ...] = (),
    ) -> None:
        self.store = store
        self.avatars = avatars
        self.owner_id = owner_id
        self.public_base_url = public_base_url
        self.max_avatar_bytes = min(max_attachment_bytes, AVATAR_MAX_BYTES)
        # Where uploaded files may be fetched from (ATTACHMENT_HOSTS): tzurot.attachments.
        self.attachment_hosts = attachment_hosts

    # -- who ------------------------------------------------------------------------------

    def discord_actor(self, user_id: str) -> Actor:
        return Actor(user_id, admin=self.owner_id is not None and user_id == self.owner_id,
                     source="discord")  # fmt: skip

    @staticmethod
    def api_actor() -> Actor:
        return Actor(None, admin=True, source="api")

    def may_see(self, personality: Personality, actor: Actor) -> bool:
        return actor.admin or visible_to(personality, actor.user_id)

    def may_change(self, personality: Personality, actor: Actor) -> bool:
        return actor.admin or (actor.user_id is not None and personality.owner_id == actor.user_id)

    # -- reading ----------------------------------------------------------------------------

    async def find(self, ref: str, actor: Actor) -> Personality:
        """The character `ref` names, if this actor may see it; else `not_found` (a private
        character of someone else is indistinguishable from none)."""
        found = await self.store.get(ref) if ref.strip() and len(ref) <= 200 else None
        if found is None or not self.may_see(found, actor):
            raise CharacterError("not_found", f"no character called {_quote(ref)}")
        return found

    async def find_to_change(self, ref: str, actor: Actor) -> Personality:
        found = await self.find(ref, actor)
        if not self.may_change(found, actor):
            raise CharacterError(
                "forbidden",
                f"only the owner of {found.display_name} (or the bot owner) may change it",
            )
        return found

    async def browse(self, actor: Actor) -> list[Personality]:
        """Characters this actor sees: their own first, then the public ones, by name."""
        shown = [p for p in await self.store.list() if self.may_see(p, actor)]
        mine = [p for p in shown if actor.user_id is not None and p.owner_id == actor.user_id]
        return mine + [p for p in shown if p not in mine]

    # -- writing ----------------------------------------------------------------------------

    async def create(self, fields: dict[str, Any], actor: Actor) -> Personality:
        fields = dict(fields)
        if not actor.admin or "owner_id" not in fields:
            fields["owner_id"] = actor.user_id
        personality = _validate(fields)
        return await self._save(personality, actor, new=True)

    async def edit(self, ref: str, changes: dict[str, Any], actor: Actor) -> Personality:
        current = await self.find_to_change(ref, actor)
        unknown = sorted(set(changes) - EDITABLE - {"slug"})
        if unknown:
            raise CharacterError("invalid", f"{unknown[0]}: unknown field")
        if "slug" in changes and changes["slug"] != current.slug:
            raise CharacterError("invalid", "slug: cannot be changed (it is the character's id)")
        if "owner_id" in changes and changes["owner_id"] != current.owner_id and not actor.admin:
            raise CharacterError("forbidden", "only the bot owner may give a character away")
        merged = current.model_dump()
        for key, value in changes.items():
            if key == "card" and isinstance(value, dict):
                merged["card"] = {**merged["card"], **value}
            else:
                merged[key] = value
        updated = _validate(merged)
        if updated == current:
            return current
        return await self._save(updated, actor, expect=current)

    async def delete(self, ref: str, actor: Actor) -> Personality:
        current = await self.find_to_change(ref, actor)
        await self.store.delete(current.slug)  # the avatar goes in the same transaction
        return current

    async def add_alias(self, ref: str, alias: str, actor: Actor) -> Personality:
        current = await self.find_to_change(ref, actor)
        if len(current.aliases) >= MAX_ALIASES:
            raise CharacterError("invalid", f"a character may have at most {MAX_ALIASES} aliases")
        return await self.edit(current.slug, {"aliases": [*current.aliases, alias]}, actor)

    async def remove_alias(self, ref: str, alias: str, actor: Actor) -> Personality:
        current = await self.find_to_change(ref, actor)
        wanted = normalize_ref(alias)
        kept = [a for a in current.aliases if normalize_ref(a) != wanted]
        if len(kept) == len(current.aliases):
            raise CharacterError(
                "not_found", f"{current.display_name} has no alias {_quote(alias)}"
            )
        return await self.edit(current.slug, {"aliases": kept}, actor)

    async def set_visibility(self, ref: str, public: bool, actor: Actor) -> Personality:
        return await self.edit(ref, {"public": public}, actor)

    async def set_avatar_url(self, ref: str, url: str | None, actor: Actor) -> Personality:
        current = await self.find_to_change(ref, actor)
        updated = await self.edit(current.slug, {"avatar_url": url}, actor)
        await self.avatars.delete(current.slug)
        return updated

    async def upload_avatar(self, ref: str, data: bytes, actor: Actor) -> Personality:
        if not self.public_base_url:
            raise CharacterError(
                "invalid",
                "uploaded avatars need PUBLIC_BASE_URL (where this bot's HTTP API can be "
                "reached from the internet) and it is not set; use an image URL instead",
            )
        current = await self.find_to_change(ref, actor)
        try:
            avatar = check_avatar(data, max_bytes=self.max_avatar_bytes)
        except AvatarError as exc:
            code: ErrorCode = "too_large" if "at most" in exc.message else "invalid"
            raise CharacterError(code, exc.message) from None
        url = build_avatar_url(self.public_base_url, current.slug, avatar.hash)
        await self.avatars.put(current.slug, avatar)
        return await self.edit(current.slug, {"avatar_url": url}, actor)

    async def export(self, ref: str, actor: Actor) -> tuple[str, str]:
        """(file name, TOML text) of a character the actor may change."""
        current = await self.find_to_change(ref, actor)
        return export_filename(current), dump_toml(current)

    async def import_file(self, data: bytes, actor: Actor) -> Personality:
        try:
            personality = import_toml(data)
        except PersonalityFileError as exc:
            where = f" (line {exc.line})" if exc.line else ""
            code: ErrorCode = "too_large" if "larger than" in exc.message else "invalid"
            raise CharacterError(code, f"{exc.message}{where}") from None
        if not actor.admin:
            personality = personality.model_copy(update={"owner_id": actor.user_id})
        return await self._save(personality, actor, new=True)

    async def _save(
        self,
        personality: Personality,
        actor: Actor,
        *,
        new: bool = False,
        expect: Personality | None = None,
    ) -> Personality:
        try:
            await self.store.upsert(
                personality, source=actor.source, edited_by=actor.label,
                must_be_new=new, expect=expect,
            )  # fmt: skip
        except PersonalityExists:
            raise CharacterError(
                "conflict", f"a character with the id {_quote(personality.slug)} already exists"
            ) from None
        except PersonalityConflict as exc:
            raise CharacterError(
                "conflict",
                f"the name {_quote(exc.ref)} is already used by the character "
                f"{_quote(exc.owner_slug)}",
            ) from None
        except PersonalityChanged:
            raise CharacterError(
                "conflict", "someone else changed this character meanwhile; try again"
            ) from None
        return personality


def _validate(fields: dict[str, Any]) -> Personality:
    try:
        return Personality.model_validate(fields)
    except ValidationError as exc:
        raise CharacterError("invalid", "; ".join(validation_messages(exc))[:1500]) from None
    except (TypeError, ValueError) as exc:
        raise CharacterError("invalid", str(exc)[:500]) from None


def _quote(text: str) -> str:
    shown = "".join(ch if ch.isprintable() else "?" for ch in text[:80])
    shown = shown.replace("`", "'")
    return f"“{shown}”"
