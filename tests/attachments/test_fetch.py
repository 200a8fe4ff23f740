"""Fetching attachments with limits: allowed hosts only, size caps, no foreign redirects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tzurot.attachments.fetch import FetchError, fetch_attachment, host_allowed


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def small(_: web.Request) -> web.Response:
        return web.Response(body=b"hello")

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    async def lying(request: web.Request) -> web.StreamResponse:
        # no Content-Length: chunked, and more than the cap
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"y" * 1000)
        await response.write_eof()
        return response

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(body=b"late")

    async def away(_: web.Request) -> web.Response:
        raise web.HTTPFound("http://evil.example/x.png")

    async def home(request: web.Request) -> web.Response:
        raise web.HTTPFound("/small")

    async def missing(_: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    for path, handler in [("/small", small), ("/big", big), ("/lying", lying), ("/slow", slow),
                          ("/away", away), ("/home", home), ("/missing", missing)]:  # fmt: skip
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"127.0.0.1:{port}"
    await runner.cleanup()


async def fetch(host: str, path: str, **kw: object) -> bytes:
    options: dict[str, object] = {"allowed_hosts": [host], "max_bytes": 2000, "timeout": 2.0}
    options.update(kw)
    return await fetch_attachment(f"http://{host}{path}", **options)  # type: ignore[arg-type]


async def test_small_file_is_fetched(server: str) -> None:
    assert await fetch(server, "/small") == b"hello"
    assert await fetch(server, "/home") == b"hello"  # a redirect on the same host is fine


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/big", "larger than"),
        ("/lying", "larger than"),
        ("/away", "redirected somewhere else"),
        ("/missing", "answered 404"),
    ],
)
async def test_limits(server: str, path: str, message: str) -> None:
    with pytest.raises(FetchError, match=message):
        await fetch(server, path)


async def test_timeout(server: str) -> None:
    with pytest.raises(FetchError, match="longer than"):
        await fetch(server, "/slow", timeout=0.3)


async def test_host_not_allowed(server: str) -> None:
    with pytest.raises(FetchError, match="not on Discord"):
        await fetch(server, "/small", allowed_hosts=["cdn.discordapp.com"])


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://cdn.discordapp.com/a.png", True),
        ("https://CDN.discordapp.com/a.png", True),
        ("http://cdn.discordapp.com/a.png", True),
        ("https://cdn.discordapp.com:8443/a.png", False),
        ("https://cdn.discordapp.com.evil.example/a.png", False),
        ("https://cdn.discordapp.com@evil.example/a.png", False),
        ("ftp://cdn.discordapp.com/a.png", False),
        ("file:///etc/passwd", False),
        ("https://127.0.0.1:9000/a", False),
        ("http://127.0.0.1:9001/a", True),
        ("http://[::1]:9001/a", False),
        ("https://cdn.discordapp.com:99999/a", False),
        ("not a url", False),
    ],
)
def test_host_matching(url: str, allowed: bool) -> None:
    hosts = ["cdn.discordapp.com", "127.0.0.1:9001"]
    assert host_allowed(url, hosts) is allowed
