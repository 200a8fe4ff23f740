"""SAQ's Redis queue, with the things SAQ has no public option for.

1. A sweep that does not steal jobs from live workers. SAQ's sweep treats any job in the
   active list whose status is not yet "active" as abandoned, and any job whose heartbeat is
   stale as dead. Between a worker's dequeue and its "active" write there is a short gap; and
   after Redis was away for a while every live job's heartbeat is stale. A sweep in either
   moment would run jobs a second time (a second, paid model call). Here a suspect is watched
   for a heartbeat's length first, and swept only if it is still not active, or its heartbeat
   has not moved meanwhile.
2. A hook when the sweep ends a job for good (its last run died), so the job still gets an
   answer (`on_abandoned`).
3. `recover_own()`: a restarted process takes its own unfinished jobs back at once, instead of
   waiting for their heartbeats to go stale.
4. `enqueue_claimed()`: the duplicate claim and SAQ's enqueue in one script (one round trip;
   SAQ's own enqueue script, with the claim in front).
5. No per-job pub/sub: SAQ publishes every update of every job (each heartbeat too) on a
   channel per job, for `Job.refresh(until_complete)`, which nothing here uses; waiters are
   woken by the result log's one announcement per finished job instead.
6. `_finish` as one script instead of MULTI/LREM/ZREM/SETEX/EXEC: the same writes, atomic,
   in one command instead of five.

tests/jobs/test_saq_contract.py pins the SAQ internals this relies on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from saq import Job, Status
from saq.job import TERMINAL_STATUSES
from saq.queue.redis import RedisQueue
from saq.utils import now, seconds

from tzurot.jobs.constants import HEARTBEAT_EVERY_SECONDS

log = logging.getLogger("saq")

# How long a job that looks abandoned is watched before it is swept: longer than a dequeued
# job takes to be marked active, and than a live worker takes between two heartbeats.
RECHECK_SECONDS = HEARTBEAT_EVERY_SECONDS + 1.0


def _suspect(job: Job | None) -> bool:
    return job is None or job.status != Status.ACTIVE or job.stuck


def _heartbeat_stale(job: Job) -> bool:
    return bool(job.heartbeat) and seconds(now() - job.touched) > job.heartbeat


# SAQ's enqueue script (saq/queue/redis.py, `_enqueue`), after a claim of the request.
# KEYS: claims..., then SAQ's four (incomplete, job id, queued, abort id). ARGV: claim value,
# claim seconds, number of claims, the job, its schedule. Returns the earlier claim's holder,
# 1 if enqueued, 0 if the job is already queued or running.
_ENQUEUE_CLAIMED = """
local claims = tonumber(ARGV[3])
for i = 1, claims do
  local holder = redis.call('GET', KEYS[i])
  if holder then return holder end
end
for i = 1, claims do redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2]) end
local incomplete, job, queued, abort = KEYS[claims + 1], KEYS[claims + 2], KEYS[claims + 3],
  KEYS[claims + 4]
if not redis.call('ZSCORE', incomplete, job) and redis.call('EXISTS', abort) == 0 then
  redis.call('SET', job, ARGV[4])
  redis.call('ZADD', incomplete, ARGV[5], job)
  if ARGV[5] == '0' then redis.call('RPUSH', queued, job) end
  return 1
end
return 0
"""


# SAQ's `_finish` (saq/queue/redis.py) as one script. KEYS: active, incomplete, job id.
# ARGV: the job, its ttl (> 0: expire after; 0: keep; < 0: delete).
_FINISH = """
redis.call('LREM', KEYS[1], 1, KEYS[3])
redis.call('ZREM', KEYS[2], KEYS[3])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('SET', KEYS[3], ARGV[1], 'EX', ttl)
elseif ttl == 0 then
  redis.call('SET', KEYS[3], ARGV[1])
else
  redis.call('DEL', KEYS[3])
end
return 1
"""


class TzurotQueue(RedisQueue):
    # Called with a job the sweep ended for good (ABORTED, no run left).
    on_abandoned: Callable[[Job], Awaitable[None]] | None = None

    async def notify(self, job: Job) -> None:
        """Nothing listens on SAQ's per-job channels (see 5. above)."""

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        task = asyncio.current_task()
        if task is not None:
            self._idle.add(task)
        try:
            return await super().dequeue(timeout, poll_interval)
        finally:
            if task is not None:
                self._idle.discard(task)

    def wake_idle(self) -> int:
        """Cut short the workers' idle waits (a blocking pop of up to DEQUEUE_TIMEOUT_SECONDS),
        so a stop does not wait them out. A pop cut off just after Redis moved a job leaves it
        in the active list with status queued, where the sweep finds it and runs it again."""
        idle = list(self._idle)
        for task in idle:
            task.cancel()
        return len(idle)

    @property
    def _idle(self) -> set[asyncio.Task[Any]]:
        # Tasks blocked in dequeue() right now (created on first use: SAQ builds the queue).
        found: set[asyncio.Task[Any]] | None = self.__dict__.get("_idle_tasks")
        if found is None:
            found = self.__dict__["_idle_tasks"] = set()
        return found

    async def _finish(
        self, job: Job, status: Status, *, result: Any = None, error: str | None = None
    ) -> None:
        if self._finish_script is None:
            self._finish_script = self.redis.register_script(_FINISH)
        await self._finish_script(
            keys=[self._active, self._incomplete, job.id], args=[self.serialize(job), job.ttl]
        )
        await self.notify(job)

    _finish_script: Any = None

    async def enqueue_claimed(self, job: Job, claims: list[str], claim_seconds: int) -> str | bool:
        """Claim `claims` for this job and enqueue it, atomically. Returns the job id already
        holding a claim (then nothing was written), else whether the job was enqueued (False:
        a job with this key is already queued or running)."""
        if self._enqueue_claimed is None:
            self._enqueue_claimed = self.redis.register_script(_ENQUEUE_CLAIMED)
        job.queue = self
        job.queued = now()
        job.status = Status.QUEUED
        answer = await self._enqueue_claimed(
            keys=[*claims, self._incomplete, job.id, self._queued, job.abort_id],
            args=[job.key, claim_seconds, len(claims), self.serialize(job), job.scheduled],
        )
        if isinstance(answer, bytes):
            return answer.decode()
        return bool(answer)

    _enqueue_claimed: Any = None

    async def recover_own(self, worker_id: str) -> list[str]:
        """Requeue the jobs an earlier incarnation of this worker was running when it died."""
        ids = await self.redis.lrange(self._active, 0, -1)
        raws = await self.redis.mget(ids) if ids else []
        recovered = []
        for raw in raws:
            job = self.deserialize(raw)
            if job is None or job.worker_id != worker_id or job.status != Status.ACTIVE:
                continue
            # Its runner is gone (it was us), so there is nobody to abort: straight back in line.
            await self.retry(job, error="worker restarted")
            recovered.append(job.key)
        return recovered

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        if self._cleanup_script is None:
            self._cleanup_script = self.redis.register_script(
                """
                local id_jobs = {}
                if redis.call('EXISTS', KEYS[1]) == 0 then
                    redis.call('SETEX', KEYS[1], ARGV[1], 1)
                    for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
                        id_jobs[i] = {v, redis.call('GET', v)}
                    end
                end
                return id_jobs
                """
            )
        id_jobs: Any = await self._cleanup_script(
            keys=[self._sweep, self._active], args=[lock], client=self.redis
        )
        pending = [(job_id, self.deserialize(raw)) for job_id, raw in id_jobs]
        suspects = [(job_id, job) for job_id, job in pending if _suspect(job)]
        if not suspects:
            return []
        # Look again a moment later: a job just dequeued is marked active within the grace
        # period, and a live worker whose heartbeat was held up (Redis was away) touches it
        # within a heartbeat. Only what still looks abandoned then is swept.
        await asyncio.sleep(RECHECK_SECONDS)
        still_active = set(await self.redis.lrange(self._active, 0, -1))
        ids = [job_id for job_id, _ in suspects if job_id in still_active]
        fresh = await self.redis.mget(ids) if ids else []
        before = {job_id: job for job_id, job in suspects}
        swept: list[str] = []
        for job_id, raw in zip(ids, fresh, strict=True):
            job, earlier = self.deserialize(raw), before[job_id]
            if job is None:
                await self._forget_missing(job_id)
            elif job.status != Status.ACTIVE:
                await self._sweep_job(job, abort)
            elif job.stuck and (earlier is None or job.touched == earlier.touched):
                # Not touched for a whole beat while watched: its worker is gone, there is
                # nobody to wait for (a live one past its timeout still gets `abort` seconds).
                alive = not _heartbeat_stale(job)
                await self._sweep_job(job, abort if alive else 0)
            else:
                continue
            swept.append(job_id.decode())
        return swept

    async def _sweep_job(self, job: Job, abort: float) -> None:
        log.info("Sweeping job %s", job.info(False))
        await self.abort(job, error=self.swept_error_message)
        # SAQ waits for the abort through its pub/sub multiplexer, which then stays subscribed
        # to every update of every job; polling the one job costs less.
        for _ in range(round(abort / 0.5)):
            await asyncio.sleep(0.5)
            current = await self.job(job.key)
            if current is None or current.status in TERMINAL_STATUSES:
                break
        else:
            if abort:
                log.info("Could not abort job %s", job.id)
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
        else:
            await self.finish(job, Status.ABORTED, error=self.swept_error_message)
            if self.on_abandoned is not None:
                try:
                    await self.on_abandoned(job)
                except Exception:
                    log.exception("could not answer an abandoned job %s", job.key)

    async def _forget_missing(self, job_id: bytes) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self._active, 0, job_id.decode())
            pipe.zrem(self._incomplete, job_id)
            await pipe.execute()
        log.info("Sweeping missing job %s", job_id)
