"""The internal HTTP API (aiohttp): generate, job status, health, metrics and personalities.

Every route but /health and GET /avatars/{slug} needs `Authorization: Bearer $API_TOKEN` (when
a token is set). Bad input always gets a 4xx with `{"error": {"code", "message"}}`; nothing is
dropped silently.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.exceptions import RedisError

from tzurot.ai.contracts import GenerationRequest, new_reference_id, new_request_id
from tzurot.api.metrics import render_prometheus
from tzurot.api.personalities import AVATAR_PATH_PREFIX, PersonalityRoutes
from tzurot.jobs import JobQueue, JobView
from tzurot.jobs.metrics import JobMetrics
from tzurot.logs import get_logger, log_context
from tzurot.personalities.service import CharacterService
from tzurot.personalities.store import PersonalityDirectory

log = get_logger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_WAIT_SECONDS = 600.0
# How long a request may wait on Redis before we answer 503 instead.
STORAGE_TIMEOUT_SECONDS = 10.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HealthProbe(Protocol):
    """Reports each enabled part of the process: name -> up?"""

    async def __call__(self) -> dict[str, bool]: ...


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class GenerateBody(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)

    request_id: str | None = Field(default=None, alias="requestId")
    personality: str = Field(min_length=1, max_length=200)
    message: str = Field(min_length=1)
    user_id: str = Field(alias="userId", min_length=1, max_length=64)
    channel_id: str | None = Field(default=None, alias="channelId", max_length=64)
    user_name: str | None = Field(default=None, alias="userName", max_length=200)
    message_id: str | None = Field(default=None, alias="messageId", max_length=64)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def job_body(view: JobView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jobId": view.job_id,
        "requestId": view.request_id,
        "status": view.status,
        "progress": view.progress,
        "attempts": view.attempts,
    }
    result = view.result
    if result is not None and result.status == "completed":
        body["content"] = result.content
        body["personality"] = result.personality_slug
    if view.failure is not None:
        body["error"] = {
            "category": view.failure.category,
            "message": view.failure.message,
            "referenceId": view.failure.reference_id,
        }
    return body


class ApiServer:
    def __init__(
        self,
        jobs: JobQueue,
        personalities: PersonalityDirectory,
        health: HealthProbe,
        metrics: JobMetrics,
        *,
        token: str | None,
        max_message_chars: int,
        characters: CharacterService | None = None,
    ) -> None:
        self._jobs = jobs
        self._personalities = personalities
        self._health = health
        self._metrics = metrics
        self._token = token
        self._max_message_chars = max_message_chars
        self._characters = characters
        self._started = time.monotonic()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def uptime(self) -> float:
        return round(time.monotonic() - self._started, 3)

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=MAX_BODY_BYTES, middlewares=[self._errors, self._auth]
        )
        app.router.add_post("/ai/generate", self.generate)
        app.router.add_get("/ai/jobs/{job_id}", self.job)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/metrics/prometheus", self.prometheus)
        if self._characters is not None:
            PersonalityRoutes(self._characters).add_to(app)
        return app

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        log.info("api listening", host=host, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- middleware ------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id") or new_request_id()
        with log_context(http_request_id=request_id, path=request.path):
            try:
                return await handler(request)
            except ApiError as exc:
                return web.json_response(error_body(exc.code, exc.message), status=exc.status)
            except web.HTTPRequestEntityTooLarge:
                return web.json_response(
                    error_body("payload_too_large", f"body over {MAX_BODY_BYTES} bytes"),
                    status=413,
                )
            except web.HTTPException as exc:
                code = exc.reason.lower().replace(" ", "_")
                return web.json_response(error_body(code, exc.reason), status=exc.status)
            except (RedisError, TimeoutError, OSError):
                log.warning("storage unavailable while serving a request", exc_info=True)
                return web.json_response(
                    error_body("unavailable", "storage is unavailable; retry shortly"),
                    status=503,
                    headers={"Retry-After": "2"},
                )
            except Exception:
                reference = new_reference_id()
                log.exception("unhandled error in api", reference_id=reference)
                return web.json_response(
                    error_body("internal_error", f"unexpected error (ref {reference})"),
                    status=500,
                )

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        public = request.path == "/health" or (
            request.method in ("GET", "HEAD") and request.path.startswith(AVATAR_PATH_PREFIX)
        )
        if not public and self._token is not None:
            header = request.headers.get("Authorization", "")
            scheme, _, supplied = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                supplied.strip().encode(), self._token.encode()
            ):
                raise ApiError(401, "unauthorized", "missing or wrong bearer token")
        return await handler(request)

    # -- routes ----------------------------------------------------------------------------

    async def generate(self, request: web.Request) -> web.Response:
        wait = _wait_seconds(request)
        body = await _read_json(request)
        try:
            parsed = GenerateBody.model_validate(body)
        except ValidationError as exc:
            raise ApiError(400, "invalid_request", _describe(exc)) from None
        if len(parsed.message) > self._max_message_chars:
            raise ApiError(
                413, "message_too_long", f"message is over {self._max_message_chars} characters"
            )
        async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS):
            personality = await self._personalities.get(parsed.personality)
        if personality is None:
            raise ApiError(404, "unknown_personality", "no personality by that name")
        try:
            generation = GenerationRequest(
                request_id=parsed.request_id or new_request_id(),
                personality=personality,
                message=parsed.message,
                user_id=parsed.user_id,
                user_name=parsed.user_name,
                channel_id=parsed.channel_id,
                source_message_id=parsed.message_id,
            )
        except ValidationError as exc:
            raise ApiError(400, "invalid_request", _describe(exc)) from None
        async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS):
            submission = await self._jobs.submit(generation)
        accepted: dict[str, Any] = {
            "jobId": submission.job_id,
            "requestId": submission.request_id,
            "status": submission.status,
        }
        if submission.duplicate:
            accepted["duplicate"] = True
        if wait is None:
            return web.json_response(accepted, status=202)
        view = await self._jobs.wait(submission.job_id, wait)
        if view is None or not view.done:
            return web.json_response({**accepted, **(job_body(view) if view else {})}, status=202)
        return web.json_response(job_body(view), status=200)

    async def job(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        if len(job_id) > 200:
            raise ApiError(400, "invalid_job_id", "job id too long")
        async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS):
            view = await self._jobs.status(job_id)
        if view is None:
            raise ApiError(404, "unknown_job", "no job with that id")
        return web.json_response(job_body(view))

    async def health(self, request: web.Request) -> web.Response:
        services = await self._health()
        up = sum(services.values())
        if up == len(services):
            status = "healthy"
        elif services.get("redis") and up > 0:
            status = "degraded"
        else:
            status = "unhealthy"
        body = {"status": status, "services": services, "uptime": self.uptime()}
        return web.json_response(body, status=200 if status == "healthy" else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        if "text/plain" in request.headers.get("Accept", ""):
            return await self.prometheus(request)
        async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS):
            counts = await self._jobs.counts()
        return web.json_response({"queue": counts.model_dump(), "uptime": self.uptime()})

    async def prometheus(self, request: web.Request) -> web.Response:
        async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS):
            counts = await self._jobs.counts()
        text = render_prometheus(self._metrics.registry, counts, self.uptime())
        return web.Response(body=text, content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip


def _wait_seconds(request: web.Request) -> float | None:
    raw = request.query.get("wait")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        raise ApiError(400, "invalid_wait", "wait must be a number of seconds") from None
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise ApiError(400, "invalid_wait", f"wait must be between 0 and {MAX_WAIT_SECONDS:g}")
    return seconds


async def _read_json(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"body over {MAX_BODY_BYTES} bytes")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return body


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{field}: {str(error['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)
