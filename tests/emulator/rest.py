"""REST plumbing: body parsing, recording, auth, scripted faults and unknown routes."""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import http
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp
from aiohttp import web

from tests.emulator import ids, payloads
from tests.emulator.core import Core, DiscordError
from tests.emulator.models import Fault, RecordedRequest, UploadedFile

LOGGER = logging.getLogger("tests.emulator.rest")

RECORD = web.RequestKey("record", RecordedRequest)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]

# Routes authenticated by the token in the URL, not by the bot's Authorization header.
_TOKEN_ROUTES = re.compile(r"^/(interactions/\d+/[^/]+/callback|webhooks/\d+/[^/]+(/.*)?)$")
_UNAUTHENTICATED = frozenset({"/gateway"})
_RECORDED_HEADERS = ("authorization", "content-type", "user-agent", "x-audit-log-reason")


async def read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
    """JSON body, or ``payload_json`` plus files from a multipart body (hikari sends multipart
    whenever a form builder is used: attachments, or a field with a content type)."""
    if not request.body_exists:
        return None, []
    content_type = request.content_type
    if content_type.startswith("multipart/"):
        body: Any = None
        files: list[UploadedFile] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            data = await part.read()
            if part.name == "payload_json":
                body = json.loads(data)
            else:
                files.append(
                    UploadedFile(
                        field=part.name or "",
                        filename=part.filename,
                        content_type=part.headers.get("Content-Type"),
                        size=len(data),
                        data=bytes(data),
                    )
                )
        return body, files
    if content_type == "application/x-www-form-urlencoded":
        return dict(await request.post()), []
    raw = await request.read()
    if not raw:
        return None, []
    try:
        return json.loads(raw), []
    except ValueError:
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(payload, status=status, headers=headers)


def no_content() -> web.Response:
    return web.Response(status=204)


class RestApi:
    """Wraps every ``/api/v10`` request: record it, apply faults and auth, then route it."""

    def __init__(self, core: Core, token: Callable[[], str]) -> None:
        self.core = core
        self._token = token
        self.faults: list[Fault] = []
        self.unknown: list[RecordedRequest] = []
        self.internal_errors: list[tuple[RecordedRequest, BaseException]] = []

    def install(self, app: web.Application, route_groups: Iterable[Iterable[Route]]) -> None:
        app.middlewares.append(self.middleware)
        for group in route_groups:
            for method, path, handler in group:
                app.router.add_route(method, ids.API_PREFIX + path, handler)
        app.router.add_route("*", ids.API_PREFIX + "/{tail:.*}", self.unknown_route)

    # -- middleware ------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(ids.API_PREFIX + "/"):
            return await handler(request)
        world = self.core.world
        record = RecordedRequest(
            method=request.method,
            path=request.path[len(ids.API_PREFIX) :],
            query=dict(request.query),
            json=None,
            files=[],
            headers={k: v for k, v in request.headers.items() if k.lower() in _RECORDED_HEADERS},
            at=world.now(),
            wall=ids.utcnow(),
        )
        world.requests.append(record)
        request[RECORD] = record
        try:
            record.json, record.files = await read_body(request)
            fault = self._take_fault(record)
            if fault is not None and fault.after_effect:
                record.injected_fault = True
                self._check_auth(request, record)
                await handler(request)
                await asyncio.sleep(fault.delay)
                response: web.StreamResponse = self._fault_response(fault, record)
            elif fault is not None:
                record.injected_fault = True
                response = self._fault_response(fault, record)
            else:
                self._check_auth(request, record)
                response = await handler(request)
        except DiscordError as error:
            response = json_response(error.payload, error.status, error.headers)
        except Exception as error:  # an emulator bug: make it loud, and not retryable
            LOGGER.exception("DISCORD EMULATOR BUG handling %s %s", record.method, record.path)
            self.internal_errors.append((record, error))
            message = f"EMULATOR BUG: {type(error).__name__}: {error}"
            response = json_response(payloads.error(-1, message), 400)
        record.status = response.status
        if response.status < 400:
            _rate_limit_headers(request, record, response)
        if (
            isinstance(response, web.Response)
            and response.body is not None
            and response.status != 204
        ):
            record.response = json.loads(response.text or "null")
        world.changed()
        return response

    def _check_auth(self, request: web.Request, record: RecordedRequest) -> None:
        if record.path in _UNAUTHENTICATED or _TOKEN_ROUTES.match(record.path):
            return
        if request.headers.get("Authorization") != f"Bot {self._token()}":
            LOGGER.error("%s %s without the bot's Authorization header", record.method, record.path)
            raise DiscordError(401, 0, "401: Unauthorized")

    async def unknown_route(self, request: web.Request) -> web.StreamResponse:
        record: RecordedRequest = request[RECORD]
        record.unknown_route = True
        self.unknown.append(record)
        LOGGER.error(
            "DISCORD EMULATOR: no route for %s %s (query=%s, body=%r) -> 404. "
            "Add it to tests/emulator if the bot really needs it.",
            record.method,
            record.path,
            record.query,
            record.json,
        )
        return json_response(payloads.error(0, "404: Not Found"), 404)

    # -- faults --------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(fault)

    def _take_fault(self, record: RecordedRequest) -> Fault | None:
        """The fault this request hits. A served 429 keeps answering 429 (with the remaining
        ``retry_after``) until its time is up, as Discord does, without using up ``count``."""
        for fault in self.faults:
            if fault.method not in ("*", record.method):
                continue
            if not fnmatch.fnmatchcase(record.path, fault.path_pattern):
                continue
            if fault.limited_until is not None and record.at < fault.limited_until:
                return fault
            if fault.count <= 0:
                continue
            fault.count -= 1
            if fault.status == 429:
                fault.limited_until = record.at + self._retry_after(fault)
            return fault
        return None

    @staticmethod
    def _retry_after(fault: Fault) -> float:
        return fault.retry_after if fault.retry_after is not None else 1.0

    @staticmethod
    def _fault_response(fault: Fault, record: RecordedRequest) -> web.Response:
        reason = http.HTTPStatus(fault.status).phrase
        if fault.status != 429:
            message = fault.message or f"{fault.status}: {reason}"
            return json_response(payloads.error(fault.code, message), fault.status)
        retry_after = RestApi._retry_after(fault)
        if fault.limited_until is not None:
            retry_after = round(max(0.001, fault.limited_until - record.at), 3)
        scope = "global" if fault.is_global else fault.scope
        headers = {
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Scope": scope,
        }
        if fault.is_global:
            headers["X-RateLimit-Global"] = "true"
        if not record.path.startswith("/interactions/"):
            # Discord sends no bucket for interaction callbacks; hikari complains if it sees one.
            headers["X-RateLimit-Bucket"] = f"emu{abs(hash(fault.path_pattern)):x}"
        body = {
            "message": fault.message or "You are being rate limited.",
            "retry_after": retry_after,
            "global": fault.is_global,
            "code": fault.code,
        }
        return json_response(body, 429, headers)


def _rate_limit_headers(
    request: web.Request, record: RecordedRequest, response: web.StreamResponse
) -> None:
    """What Discord sends with every answer but interaction callbacks: the route's bucket and
    room in it (never running out: limits come from scripted faults). Without a bucket, hikari
    sends the requests of one route one at a time, whatever their webhook or channel."""
    if record.path.startswith("/interactions/") or record.unknown_route or response.prepared:
        return
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else record.path
    bucket = hashlib.blake2b(f"{request.method} {template}".encode(), digest_size=8).hexdigest()
    response.headers.setdefault("X-RateLimit-Bucket", bucket)
    response.headers.setdefault("X-RateLimit-Limit", "5")
    response.headers.setdefault("X-RateLimit-Remaining", "4")
    response.headers.setdefault("X-RateLimit-Reset", f"{time.time() + 1.0:.3f}")
    response.headers.setdefault("X-RateLimit-Reset-After", "1.000")
