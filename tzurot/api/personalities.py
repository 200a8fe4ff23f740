"""HTTP routes for characters: `GET/POST /personalities`, `GET/PATCH/DELETE
/personalities/{slug}` (bearer-protected like every route) and the public `GET /avatars/{slug}`.

They call the same `CharacterService` as /character in Discord, with the API token acting as
the bot owner: the same validation, the same conflicts, the same provenance (`api`), so a
character edited here is never overwritten by a seed file either.

Bodies are JSON objects of personality fields (DESIGN.md "Personality files"; `card` is an
object of card fields). PATCH changes only the fields it names (`card` is merged field by
field); `null` resets an optional field. Errors are `{"error": {"code", "message"}}`:
400 `invalid_json` / `invalid`, 404 `not_found`, 409 `conflict`, 413 `too_large`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tzurot.personalities.models import Personality
from tzurot.personalities.service import CharacterError, CharacterService

AVATAR_PATH_PREFIX = "/avatars/"
MAX_REF_CHARS = 200


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def personality_body(personality: Personality) -> dict[str, Any]:
    return personality.model_dump(mode="json")


class PersonalityRoutes:
    def __init__(self, characters: CharacterService) -> None:
        self._characters = characters
        self._actor = characters.api_actor()

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/personalities", self.list)
        app.router.add_post("/personalities", self.create)
        app.router.add_get("/personalities/{slug}", self.get)
        app.router.add_patch("/personalities/{slug}", self.patch)
        app.router.add_delete("/personalities/{slug}", self.delete)
        app.router.add_get("/avatars/{slug}", self.avatar)

    async def list(self, request: web.Request) -> web.Response:
        found = await self._characters.browse(self._actor)
        return web.json_response({"personalities": [personality_body(p) for p in found]})

    async def create(self, request: web.Request) -> web.Response:
        body = await _read_object(request)
        if isinstance(body, web.Response):
            return body
        try:
            created = await self._characters.create(body, self._actor)
        except CharacterError as exc:
            return _error(exc.status, exc.code, exc.message)
        return web.json_response(personality_body(created), status=201)

    async def get(self, request: web.Request) -> web.Response:
        try:
            found = await self._characters.find(_ref(request), self._actor)
        except CharacterError as exc:
            return _error(exc.status, exc.code, exc.message)
        return web.json_response(personality_body(found))

    async def patch(self, request: web.Request) -> web.Response:
        body = await _read_object(request)
        if isinstance(body, web.Response):
            return body
        try:
            updated = await self._characters.edit(_ref(request), body, self._actor)
        except CharacterError as exc:
            return _error(exc.status, exc.code, exc.message)
        return web.json_response(personality_body(updated))

    async def delete(self, request: web.Request) -> web.Response:
        try:
            gone = await self._characters.delete(_ref(request), self._actor)
        except CharacterError as exc:
            return _error(exc.status, exc.code, exc.message)
        return web.json_response({"deleted": gone.slug})

    async def avatar(self, request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        avatar = (
            await self._characters.avatars.get(slug) if 0 < len(slug) <= MAX_REF_CHARS else None
        )
        if avatar is None:
            return _error(404, "not_found", "no avatar for that character")
        etag = f'"{avatar.hash}"'
        versioned = request.query.get("v") == avatar.hash
        headers = {
            "ETag": etag,
            # A versioned URL never changes content: cache it for a year. Unversioned: briefly.
            "Cache-Control": "public, max-age=31536000, immutable"
            if versioned
            else "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": "inline",
        }
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=avatar.data, content_type=avatar.content_type, headers=headers)


def _ref(request: web.Request) -> str:
    ref = request.match_info["slug"]
    if len(ref) > MAX_REF_CHARS:
        raise CharacterError("not_found", "no character by that name")
    return ref


async def _read_object(request: web.Request) -> dict[str, Any] | web.Response:
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "invalid_json", "the body is not valid JSON")
    if not isinstance(body, dict):
        return _error(400, "invalid_json", "the body must be a JSON object")
    return body
