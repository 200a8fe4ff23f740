"""Fetch a Discord attachment with limits: allowed hosts only, a size cap, a short timeout.

- The URL must be http(s) and its host one of `allowed_hosts` (ATTACHMENT_HOSTS): an entry
  `host` matches that host on the scheme's default port, `host:port` that exact pair; nothing
  else (no IP literals sneaking in, no user-info tricks: `cdn.discordapp.com@evil.example` has
  host `evil.example`).
- Redirects are followed by hand, at most 3, and only to an allowed host (a redirect elsewhere
  is an error, never fetched).
- The size cap is enforced twice: a Content-Length over it is refused before reading, and the
  body is counted while it streams (a lying or absent Content-Length cannot get past it).
- One timeout for the whole fetch (connect, redirects and body).
Every failure is a `FetchError` whose message is safe to show to the user.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

import aiohttp

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_REDIRECTS = 3
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def host_allowed(url: str, allowed_hosts: Iterable[str]) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return False
    host = parts.hostname.lower()
    effective = port if port is not None else _DEFAULT_PORTS[parts.scheme]
    for raw in allowed_hosts:
        entry = raw.strip().lower()
        name, sep, entry_port = entry.rpartition(":") if ":" in entry else (entry, "", "")
        if sep:
            if name == host and entry_port.isdigit() and int(entry_port) == effective:
                return True
        elif entry == host and effective == _DEFAULT_PORTS[parts.scheme]:
            return True
    return False


async def fetch_attachment(
    url: str,
    *,
    allowed_hosts: Iterable[str],
    max_bytes: int,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    session: aiohttp.ClientSession | None = None,
) -> bytes:
    """The bytes at `url`, within the limits above; raises `FetchError`."""
    hosts = tuple(allowed_hosts)
    if not host_allowed(url, hosts):
        raise FetchError("that file is not on Discord's attachment servers")
    own = session is None
    client = session or aiohttp.ClientSession()
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(client, url, hosts, max_bytes)
    except TimeoutError:
        raise FetchError(f"fetching the file took longer than {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise FetchError(f"could not fetch the file ({type(exc).__name__})") from None
    finally:
        if own:
            await client.close()


async def _fetch(
    client: aiohttp.ClientSession, url: str, hosts: tuple[str, ...], max_bytes: int
) -> bytes:
    for _ in range(MAX_REDIRECTS + 1):
        async with client.get(url, allow_redirects=False) as response:
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location")
                if not location:
                    raise FetchError("the file server redirected nowhere")
                url = urljoin(url, location)
                if not host_allowed(url, hosts):
                    raise FetchError("the file server redirected somewhere else; not followed")
                continue
            if response.status != 200:
                raise FetchError(f"the file server answered {response.status}")
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise FetchError(f"the file is larger than {_size(max_bytes)}")
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise FetchError(f"the file is larger than {_size(max_bytes)}")
                chunks.append(chunk)
            return b"".join(chunks)
    raise FetchError("the file server redirected too many times")


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:g} MiB"
    return f"{n / 1024:g} KiB"
