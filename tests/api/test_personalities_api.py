"""The personalities routes of the HTTP API and the public avatar route."""

from __future__ import annotations

import aiohttp

from tests.fixtures.app import ApiClient, AppFactory
from tzurot.app import Application

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def code(body: object) -> str:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}
    return str(body["error"]["code"])


async def test_crud(api: ApiClient) -> None:
    status, body = await api.request(
        "POST", "/personalities",
        json={"name": "Nova", "system_prompt": "You are Nova.", "card": {"tone": "dry"}},
    )  # fmt: skip
    assert status == 201 and body["slug"] == "nova" and body["card"]["tone"] == "dry"

    status, body = await api.request("GET", "/personalities")
    assert status == 200 and "nova" in [p["slug"] for p in body["personalities"]]

    status, body = await api.request(
        "PATCH", "/personalities/NOVA", json={"card": {"likes": "tea"}, "public": False}
    )
    assert status == 200 and body["card"] == {**body["card"], "tone": "dry", "likes": "tea"}
    assert body["public"] is False

    status, body = await api.request("GET", "/personalities/nova")
    assert status == 200 and body["card"]["likes"] == "tea"

    status, body = await api.request("DELETE", "/personalities/nova")
    assert status == 200 and body == {"deleted": "nova"}
    status, body = await api.request("GET", "/personalities/nova")
    assert status == 404 and code(body) == "not_found"


async def test_errors(api: ApiClient) -> None:
    cases = [
        ("POST", "/personalities", {"data": b"{nope"}, 400, "invalid_json"),
        ("POST", "/personalities", {"json": [1]}, 400, "invalid_json"),
        ("POST", "/personalities", {"json": {"name": "X"}}, 400, "invalid"),
        ("POST", "/personalities", {"json": {"name": "@everyone", "system_prompt": "x"}}, 400,
         "invalid"),
        ("POST", "/personalities", {"json": {"name": "Discordia", "system_prompt": "x"}}, 400,
         "invalid"),
        ("POST", "/personalities", {"json": {"name": "X", "system_prompt": "x", "bogus": 1}},
         400, "invalid"),
        ("POST", "/personalities", {"json": {"name": "lil", "system_prompt": "x"}}, 409,
         "conflict"),
        ("PATCH", "/personalities/lilith", {"json": {"temperature": 7}}, 400, "invalid"),
        ("PATCH", "/personalities/lilith", {"json": {"slug": "other"}}, 400, "invalid"),
        ("PATCH", "/personalities/nobody", {"json": {}}, 404, "not_found"),
        ("DELETE", "/personalities/nobody", {}, 404, "not_found"),
    ]  # fmt: skip
    for method, path, kwargs, status, expected in cases:
        got, body = await api.request(method, path, **kwargs)
        assert (got, code(body)) == (status, expected), (method, path, kwargs, body)


async def test_routes_need_the_token_but_avatars_do_not(app: Application) -> None:
    assert app.api is not None
    client = ApiClient(f"http://127.0.0.1:{app.api.port}", token=None)
    try:
        for method in ("GET", "POST"):
            status, body = await client.request(method, "/personalities", json={})
            assert status == 401 and code(body) == "unauthorized"
        status, body = await client.request("DELETE", "/personalities/lilith")
        assert status == 401
        status, body = await client.request("GET", "/avatars/lilith")
        assert status == 404 and code(body) == "not_found"
        status, body = await client.request("DELETE", "/avatars/lilith")
        assert status == 401  # only GET is public
    finally:
        await client.close()


async def test_avatar_served_with_safe_headers(start_app: AppFactory) -> None:
    app = await start_app(PUBLIC_BASE_URL="https://bot.example.org")
    assert app.api is not None and app.api._characters is not None
    characters = app.api._characters
    updated = await characters.upload_avatar("lilith", PNG, characters.api_actor())
    assert updated.avatar_url is not None
    query = updated.avatar_url.split("?", 1)[1]
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{app.api.port}/avatars/lilith?{query}"
        async with session.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/png"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "immutable" in response.headers["Cache-Control"]
            assert await response.read() == PNG
            etag = response.headers["ETag"]
        async with session.get(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 304
