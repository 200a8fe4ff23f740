"""The composition root: the one place that builds the concrete objects and wires them.

`Application.start()` brings the enabled parts up in order (Redis, jobs, personalities,
worker, API, Discord); `Application.stop()` takes them down in reverse: stop taking new work,
let running jobs finish within the grace period, leave the rest queued, close Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from typing import Any

from saq.queue.redis import RedisQueue

from tzurot.ai.generation import Generator, ModelDefaults
from tzurot.ai.provider import ChatModel, LiteLLMProvider
from tzurot.api import ApiServer
from tzurot.config import Component, Settings
from tzurot.conversations import TranscriptStore, retention_task
from tzurot.discord.bot import DiscordFrontEnd
from tzurot.discord.state import DiscordState
from tzurot.infra import EmbeddedRedis, RedisClient, connect, ping
from tzurot.infra.secretbox import SecretBox
from tzurot.infra.sentinel import connect_sentinel
from tzurot.jobs import (
    QUEUE_NAME,
    CronTask,
    GenerationJob,
    InProcessWorker,
    JobMetrics,
    JobOptions,
    JobQueue,
    PayloadSigner,
    ResultLog,
    build_worker,
    prune_finished_jobs,
    record_abandoned_jobs,
    saq_cron_jobs,
    shared_signing_secret,
)
from tzurot.jobs.saq_queue import TzurotQueue
from tzurot.logs import get_logger
from tzurot.personalities.store import PersonalityStore, seed_from_directory

log = get_logger(__name__)


@dataclass
class Application:
    settings: Settings
    # Tests and benchmarks may hand in their own model client or extra cron tasks.
    chat_model: ChatModel | None = None
    extra_cron: list[CronTask] = field(default_factory=list)

    redis: RedisClient | None = field(default=None, init=False)
    jobs: JobQueue | None = field(default=None, init=False)
    personalities: PersonalityStore | None = field(default=None, init=False)
    api: ApiServer | None = field(default=None, init=False)
    worker: InProcessWorker | None = field(default=None, init=False)
    discord: DiscordFrontEnd | None = field(default=None, init=False)
    _embedded: EmbeddedRedis | None = field(default=None, init=False)
    _worker_task: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        settings = self.settings
        self.redis = redis = await self._connect_redis()
        signing_secret = (
            settings.job_signing_key.get_secret_value()
            if settings.job_signing_key
            else await shared_signing_secret(redis)
        )
        signer = PayloadSigner(signing_secret)
        metrics = JobMetrics()
        results = ResultLog(redis)
        # SAQ serialises its job reads behind a semaphore (20 by default): size it to the work.
        saq_queue = TzurotQueue(
            redis, name=QUEUE_NAME, max_concurrent_ops=settings.worker_concurrency * 2 + 64
        )
        options = JobOptions(
            attempts=settings.job_attempts,
            attempt_timeout=settings.llm_attempt_timeout,
            job_timeout=settings.job_timeout,
        )
        self.jobs = jobs = JobQueue(saq_queue, redis, signer, results, options, metrics)
        await jobs.start()

        self.personalities = store = PersonalityStore(redis)
        await seed_from_directory(store, settings.personalities_dir)
        transcripts = TranscriptStore(redis)

        if settings.runs(Component.WORKER):
            generator = Generator(
                store,
                self.chat_model or LiteLLMProvider(),
                transcripts,
                ModelDefaults(settings.default_model, settings.llm_api_base, settings.llm_api_key),
                history_limit=settings.history_limit,
            )

            async def answer_abandoned(_tick: int) -> None:
                await record_abandoned_jobs(saq_queue, results, signer, generator)

            cron = [
                self._retention_task(saq_queue, results),
                CronTask(name="abandoned-jobs", schedule="* * * * *", run=answer_abandoned),
                retention_task(transcripts, settings.history_retention_days),
                *self.extra_cron,
            ]
            self.worker = build_worker(
                saq_queue,
                GenerationJob(generator, signer, results, options, metrics),
                concurrency=settings.worker_concurrency,
                cron_jobs=saq_cron_jobs(cron, redis),
            )
            self._worker_task = asyncio.create_task(self.worker.start(), name="saq-worker")

        if settings.runs(Component.API):
            token = settings.api_token.get_secret_value() if settings.api_token else None
            self.api = ApiServer(
                jobs,
                store,
                self.health,
                metrics,
                token=token,
                max_message_chars=settings.max_message_chars,
            )
            await self.api.start(settings.api_host, settings.api_port)

        if settings.runs(Component.DISCORD):
            assert settings.discord_token is not None  # the settings insist on it
            # Webhook tokens are sealed at rest with ENCRYPTION_KEY, else the signing secret.
            at_rest_key = (
                settings.encryption_key.get_secret_value()
                if settings.encryption_key
                else signing_secret
            )
            self.discord = DiscordFrontEnd(
                token=settings.discord_token.get_secret_value(),
                rest_url=settings.discord_rest_url,
                dev_guild_id=settings.discord_dev_guild_id,
                jobs=jobs,
                results=results,
                personalities=store,
                transcripts=transcripts,
                redis_state=DiscordState(redis, SecretBox(at_rest_key, "discord webhooks")),
                max_mentions=settings.max_mentions_per_message,
                taking_longer_after=settings.taking_longer_seconds,
                stale_reply_after=settings.job_timeout + 60,
                consumer_name=settings.process_name or "discord-main",
            )
            await self.discord.start()
        log.info("tzurot started", components=sorted(settings.components))

    async def _connect_redis(self) -> RedisClient:
        settings = self.settings
        pool_size = settings.worker_concurrency * 2 + 64
        if settings.redis_sentinels is not None:
            assert settings.redis_sentinel_master is not None  # the settings insist on both
            password = settings.redis_password
            return connect_sentinel(
                settings.redis_sentinels,
                settings.redis_sentinel_master,
                password=password.get_secret_value() if password else None,
                max_connections=pool_size,
            )
        if settings.redis_url is not None:
            url = settings.redis_url.get_secret_value()
        else:
            self._embedded = EmbeddedRedis(settings.data_dir)
            await self._embedded.start()
            url = self._embedded.url
        return connect(url, max_connections=pool_size)

    @staticmethod
    def _retention_task(queue: RedisQueue, results: ResultLog) -> CronTask:
        async def retention(_tick: int) -> None:
            await prune_finished_jobs(queue, results)
            await results.trim()

        return CronTask(name="job-retention", schedule="*/10 * * * *", run=retention)

    async def health(self) -> dict[str, bool]:
        services = {"redis": self.redis is not None and await ping(self.redis)}
        services["queue"] = services["redis"] and self.jobs is not None
        if self.settings.runs(Component.WORKER):
            services["worker"] = self._worker_task is not None and not self._worker_task.done()
        if self.settings.runs(Component.API):
            services["api"] = self.api is not None
        if self.settings.runs(Component.DISCORD):
            services["discord"] = self.discord is not None and self.discord.alive
        return services

    async def stop(self) -> None:
        grace = self.settings.shutdown_grace_period
        log.info("tzurot stopping", grace_s=grace)
        if self.discord is not None:
            await self.discord.stop()
        if self.api is not None:
            await self.api.stop()
        if self.worker is not None:
            await self.worker.drain(grace)
        if self._worker_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._worker_task, timeout=5)
        if self.jobs is not None:
            await self.jobs.stop()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
        if self._embedded is not None:
            await self._embedded.stop()
        log.info("tzurot stopped")


async def run(settings: Settings, **overrides: Any) -> int:
    """Run until SIGINT/SIGTERM, then shut down gracefully. Returns the exit code."""
    app = Application(settings, **overrides)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await app.start()
        await stop.wait()
        log.info("shutdown requested")
    finally:
        await app.stop()
    return 0
