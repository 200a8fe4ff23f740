"""The emulator's CDN on plain HTTP (same server, outside ``/api/v10``): attachment bytes at
``/attachments/{channel}/{id}/{filename}`` and ``/ephemeral-attachments/{app}/{id}/...``
(``/media/...`` is the ``proxy_url`` form), and scripted redirects at ``/redirect/{key}``."""

from __future__ import annotations

from aiohttp import web

from tests.emulator.state import World


class CdnRoutes:
    def __init__(self, world: World) -> None:
        self.world = world

    def install(self, app: web.Application) -> None:
        for prefix in ("", "/media"):
            for folder in ("attachments", "ephemeral-attachments"):
                app.router.add_get(
                    f"{prefix}/{folder}/{{owner}}/{{attachment_id}}/{{filename}}", self.attachment
                )
        app.router.add_get("/redirect/{key}", self.redirect)

    def _record(self, request: web.Request) -> None:
        self.world.cdn_fetches.append(request.path_qs)
        self.world.changed()

    async def attachment(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        try:
            found = self.world.cdn.get(int(request.match_info["attachment_id"]))
        except ValueError:
            found = None
        if found is None:
            return web.Response(status=404, text="Not Found")
        if found.redirect_to is not None:
            return web.Response(status=302, headers={"Location": found.redirect_to})
        return web.Response(
            body=found.data,
            headers={"Content-Type": found.content_type or "application/octet-stream"},
        )

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        found = self.world.redirects.get(request.match_info["key"])
        if found is None:
            return web.Response(status=404, text="Not Found")
        status, location = found
        return web.Response(status=status, headers={"Location": location})
