"""The delivery runner: finished jobs in, each lane posted in order, nothing stalled by anything.

Every process with the Discord part runs one, under its process name, in one consumer group
over the jobs module's results stream. An entry says "job J finished; it belongs in lane L".
Reading it kicks lane L: the runner takes the lane's lease and posts from its head while heads
are ready, each lane in its own task, so one channel's trouble never delays another. An entry is
acknowledged once its job is delivered or given up; until then it stays pending in Redis, so:

- a restarted process reads its own pending entries at once (the same name, see
  infra/identity.py) and resumes its lanes (a lane lease held under its own name is its own);
- a process that dies has its pending entries moved to a live one as soon as its name's lease
  has lapsed (within 15 s), and its lane leases lapse as fast;
- a lane whose head job was lost without a word is found by `tzurot:lanes`' look-again times.

Transient Discord failures (429, 5xx, network) are retried with backoff inside the lane; a
permanent refusal (403, unknown channel, ...) is recorded against the job and the lane moves on.

A streamed reply announces itself on the same stream when its first text is written (a second
entry for its job; the older entry is acknowledged when the newer one is read): the lease holder
of its lane follows the text live (live.py) while its head has no result, then posts it as any
other reply, the final pass editing the streamed messages to their final text.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from tzurot.ai.contracts import GenerationFailure, GenerationResult, new_reference_id
from tzurot.discord.delivery.errors import DeliveryError
from tzurot.discord.delivery.lanes import Head, Lanes, Ticket
from tzurot.discord.delivery.live import LiveReplies
from tzurot.discord.delivery.metrics import DeliveryMetrics
from tzurot.discord.delivery.records import DeliveryRecord, DeliveryRecords
from tzurot.jobs import JobQueue, ResultLog, StreamEntry
from tzurot.logs import get_logger, log_context

log = get_logger(__name__)

GROUP = "delivery"
_READ_BLOCK_MS = 1000
_UPKEEP_EVERY_SECONDS = 5.0
_BUSY_RETRY_SECONDS = 0.25
# A head whose job has no result is looked at again this often (a lost job is noticed then).
_LOOK_AGAIN_SECONDS = 30.0
# Transient failures: backoff from 1 s doubling to 60 s; given up after an hour of trying.
_BACKOFF_FIRST, _BACKOFF_MAX, _GIVE_UP_SECONDS = 1.0, 60.0, 3600.0
_STOP_WAIT_SECONDS = 10.0
# A lane's lease lasts 15 s; it is renewed this often while a reply is being posted.
_LEASE_RENEW_SECONDS = 5.0
# A head announced as streaming whose stream is not there yet is looked at again this soon.
_SOON_SECONDS = 0.25

PostReply = Callable[
    [Ticket, GenerationResult | None, GenerationFailure | None, DeliveryRecord], Awaitable[None]
]


class _Step(Enum):
    DONE = "done"  # the head is delivered or given up: on to the next
    WAIT = "wait"  # the head is not ready (or waits for a retry): the lane stops here


@dataclass(frozen=True)
class _Outcome:
    step: _Step
    look_again_in: float = _LOOK_AGAIN_SECONDS


def backoff(attempt: int, retry_after: float | None) -> float:
    delay = min(_BACKOFF_FIRST * 2.0 ** max(attempt - 1, 0), _BACKOFF_MAX)
    return max(delay, min(retry_after or 0.0, _BACKOFF_MAX * 5))


class DeliveryRunner:
    def __init__(
        self,
        *,
        consumer: str,
        results: ResultLog,
        jobs: JobQueue,
        lanes: Lanes,
        records: DeliveryRecords,
        post_reply: PostReply,
        settled: Callable[[Ticket], Awaitable[None]],
        is_alive: Callable[[str], Awaitable[bool]],
        metrics: DeliveryMetrics,
        job_timeout: float,
        stall_seconds: float,
        live: LiveReplies | None = None,
    ) -> None:
        self.consumer = consumer
        self._live = live
        # Jobs being followed live: set when an entry for the job comes in (its result may).
        self._wakes: dict[str, asyncio.Event] = {}
        self._results = results
        self._jobs = jobs
        self._lanes = lanes
        self._records = records
        self._post_reply = post_reply
        self._settled = settled
        self._is_alive = is_alive
        self._metrics = metrics
        self._job_timeout = job_timeout
        self._stall_seconds = stall_seconds
        # This consumer's pending entries by lane (a mirror of its pending list in Redis).
        self._waiting: dict[str, dict[str, str]] = defaultdict(dict)
        self._lane_tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._stopping = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self.restarts = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._main = asyncio.create_task(self._supervise(), name="delivery")

    @property
    def alive(self) -> bool:
        return self._main is not None and not self._main.done()

    async def stop(self) -> None:
        """Stop reading; let lanes being posted finish their current head. What is left stays
        pending in Redis for the next start (or for another process)."""
        self._stopping.set()
        for timer in self._timers.values():
            timer.cancel()
        tasks = [t for t in (self._main, *self._lane_tasks.values()) if t is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=_STOP_WAIT_SECONDS)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)

    async def _supervise(self) -> None:
        """The runner never dies silently: a crash is logged and it starts over."""
        while not self._stopping.is_set():
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.restarts += 1
                log.exception("delivery runner crashed; restarting", restarts=self.restarts)
                await asyncio.sleep(min(self.restarts, 5))

    async def _run(self) -> None:
        await self._results.ensure_group(GROUP)
        self._accept(await self._results.read_own_pending(GROUP, self.consumer))
        next_upkeep = 0.0
        while not self._stopping.is_set():
            if time.monotonic() >= next_upkeep:
                await self._upkeep()
                next_upkeep = time.monotonic() + _UPKEEP_EVERY_SECONDS
            self._accept(await self._results.read(GROUP, self.consumer, block_ms=_READ_BLOCK_MS))

    # -- entries in ----------------------------------------------------------------------------

    def _accept(self, entries: list[StreamEntry]) -> None:
        orphans = []
        for entry in entries:
            if not entry.job_id or not entry.lane:
                orphans.append(entry.entry_id)
                continue
            waiting = self._waiting[entry.lane]
            older = waiting.get(entry.job_id)
            if older is not None and older != entry.entry_id:
                # A job's second entry (it streamed, then finished): one pending entry is
                # enough; the newer one stays.
                newer, older = sorted((older, entry.entry_id), key=_entry_order, reverse=True)
                orphans.append(older)
                waiting[entry.job_id] = newer
            else:
                waiting[entry.job_id] = entry.entry_id
            wake = self._wakes.get(entry.job_id)
            if wake is not None:
                wake.set()
            self.kick(entry.lane)
        if orphans:
            task = asyncio.create_task(self._results.ack(GROUP, *orphans))
            task.add_done_callback(_log_failure)

    def kick(self, lane: str) -> None:
        """Post what is ready in `lane` (now, or right after the pass already running)."""
        if self._stopping.is_set():
            return
        running = self._lane_tasks.get(lane)
        if running is not None and not running.done():
            self._again.add(lane)
            return
        task = asyncio.create_task(self._lane(lane), name=f"lane:{lane}")
        self._lane_tasks[lane] = task

    def _kick_later(self, lane: str, seconds: float) -> None:
        timer = self._timers.pop(lane, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[lane] = loop.call_later(max(seconds, 0.05), self._timer_fired, lane)

    def _timer_fired(self, lane: str) -> None:
        self._timers.pop(lane, None)
        self.kick(lane)

    # -- one lane --------------------------------------------------------------------------------

    async def _lane(self, lane: str) -> None:
        with log_context(lane=lane):
            try:
                while True:
                    self._again.discard(lane)
                    await self._pass(lane)
                    if lane not in self._again or self._stopping.is_set():
                        break
            except Exception:
                log.exception("delivery in a lane failed; trying again shortly")
                self._kick_later(lane, 5.0)
            finally:
                self._lane_tasks.pop(lane, None)

    async def _pass(self, lane: str) -> None:
        got, head = await self._lanes.lease_head(lane)
        if not got:
            # Another process is posting here; it may have missed the newest result.
            if self._waiting.get(lane):
                self._kick_later(lane, _BUSY_RETRY_SECONDS)
            return
        seen = dict(self._waiting.get(lane, {}))  # entries read before this pass began
        handled: set[str] = set()
        holding = True  # the lease; `pop` gives it back when it empties the lane
        try:
            while head is not None and not self._stopping.is_set():
                outcome = await self._head(head)
                if outcome.step is _Step.WAIT:
                    await self._lanes.release(lane, look_again_in=outcome.look_again_in)
                    holding = False
                    if self._waiting.get(lane) or outcome.look_again_in < _LOOK_AGAIN_SECONDS:
                        self._kick_later(lane, outcome.look_again_in)
                    break
                if head.ticket is not None:
                    handled.add(head.ticket.job_id)
                head = await self._lanes.pop(lane, head)
                holding = head is not None
        finally:
            if holding:
                with contextlib.suppress(Exception):
                    await self._lanes.release(lane, look_again_in=1.0)
        await self._acknowledge(lane, seen, handled, lane_empty=head is None)

    async def _head(self, head: Head) -> _Outcome:
        ticket = head.ticket
        if ticket is None:
            log.error("an unreadable lane entry was dropped")
            return _Outcome(_Step.DONE)
        with log_context(job_id=ticket.job_id):
            record = await self._records.get(ticket.job_id)
            if record.done:
                return _Outcome(_Step.DONE)
            wait = record.next_at - time.time()
            if wait > 0:
                return _Outcome(_Step.WAIT, wait)
            streaming = False
            if self._live is None:
                result = await self._jobs.result(ticket.job_id)
            else:  # both at once: a streamed reply's first text is waited for by a person
                result, streaming = await asyncio.gather(
                    self._jobs.result(ticket.job_id), self._live.exists(ticket.job_id)
                )
            failure = None
            if result is None and streaming:
                # Still being written: shown as it grows (a lost job is noticed meanwhile).
                result, failure = await self._follow(ticket)
                if result is None and failure is None:
                    return _Outcome(_Step.WAIT, _SOON_SECONDS)
            elif result is None:
                result, failure = await self._finished_since_or_lost(ticket)
                if result is None and failure is None:
                    return _Outcome(_Step.WAIT, self._look_again_in(ticket))
            record = await self._records.begin(ticket.job_id)
            outcome = await self._post(ticket, result, failure, record)
            if self._live is not None and outcome.step is _Step.DONE:
                await self._live.discard(ticket.job_id)
            return outcome

    def _look_again_in(self, ticket: Ticket) -> float:
        """A head without a result or a stream: an entry read for it says it streams (its
        stream is on the way), else the backstop look."""
        if self._live is not None and ticket.job_id in self._waiting.get(ticket.lane, {}):
            return _SOON_SECONDS
        return _LOOK_AGAIN_SECONDS

    async def _follow(
        self, ticket: Ticket
    ) -> tuple[GenerationResult | None, GenerationFailure | None]:
        """Show the head's reply live until its job is done; then its result (or why it has
        none). (None, None) when this process let go first (stopping, or the lease lost)."""
        assert self._live is not None
        found: list[tuple[GenerationResult | None, GenerationFailure | None]] = []

        async def finished() -> bool:
            result = await self._jobs.result(ticket.job_id)
            failure = None
            if result is None:
                result, failure = await self._finished_since_or_lost(ticket)
            if result is None and failure is None:
                return False
            found.append((result, failure))
            return True

        wake = self._wakes.setdefault(ticket.job_id, asyncio.Event())
        try:
            async with self._keeping_lease(ticket.lane) as lost:
                done = await self._live.follow(
                    ticket, finished=finished, wake=wake,
                    stop=lambda: lost.is_set() or self._stopping.is_set(),
                )  # fmt: skip
        finally:
            if self._wakes.get(ticket.job_id) is wake:
                del self._wakes[ticket.job_id]
        return found[-1] if done and found else (None, None)

    async def _finished_since_or_lost(
        self, ticket: Ticket
    ) -> tuple[GenerationResult | None, GenerationFailure | None]:
        """The head had no result a moment ago: its result if it has one now, or why it will
        never have one; (None, None) while it may still get one."""
        view = await self._jobs.status(ticket.job_id)
        if view is not None and view.result is not None:
            return view.result, None
        if view is not None and view.done:
            return None, view.failure or GenerationFailure(category="timeout", message="lost")
        age = time.time() - ticket.created_at
        # A ticket goes in just before its job does: a missing job is lost only after a while.
        missing = view is None and age > _LOOK_AGAIN_SECONDS
        overdue = age > self._job_timeout + 2 * _LOOK_AGAIN_SECONDS
        if missing or overdue:
            reason = "the job was lost" if missing else "the job never finished"
            log.warning("a reply's job will never finish; telling the user", reason=reason)
            return None, GenerationFailure(category="timeout", message=reason)
        return None, None

    async def _post(
        self,
        ticket: Ticket,
        result: GenerationResult | None,
        failure: GenerationFailure | None,
        record: DeliveryRecord,
    ) -> _Outcome:
        try:
            async with self._keeping_lease(ticket.lane):
                await self._post_reply(ticket, result, failure, record)
        except DeliveryError as error:
            return await self._refused(ticket, result, record, error)
        await self._records.finish(ticket.job_id, "delivered", failed_before=record.next_at > 0)
        await self._settled(ticket)
        if result is not None:
            await self._results.delivered(result)
            lag = time.time() - result.finished_at.timestamp()
            self._metrics.lag.observe(max(lag, 0.0))
        self._metrics.delivered.labels(ticket.delivery.kind).inc()
        log.info("reply delivered", kind=ticket.delivery.kind, attempts=record.attempts)
        return _Outcome(_Step.DONE)

    @contextlib.asynccontextmanager
    async def _keeping_lease(self, lane: str) -> AsyncIterator[asyncio.Event]:
        """Renew the lane's lease while a reply is posted: a long reply held up by rate limits
        must not lose the lane to another process halfway (it would post the rest again).
        The event yielded is set if the lease is lost all the same."""
        lost = asyncio.Event()

        async def keep() -> None:
            while True:
                await asyncio.sleep(_LEASE_RENEW_SECONDS)
                renewed = False
                with contextlib.suppress(Exception):
                    renewed = await self._lanes.renew(lane)
                if not renewed:
                    log.warning("lost a lane's lease while posting in it")
                    lost.set()
                    return

        keeper = asyncio.create_task(keep(), name=f"lane-lease:{lane}")
        try:
            yield lost
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await keeper

    async def _refused(
        self,
        ticket: Ticket,
        result: GenerationResult | None,
        record: DeliveryRecord,
        error: DeliveryError,
    ) -> _Outcome:
        self._metrics.failures.labels(error.category, str(error.permanent).lower()).inc()
        first_try = result.finished_at.timestamp() if result is not None else ticket.created_at
        if not error.permanent and time.time() - first_try < _GIVE_UP_SECONDS:
            delay = backoff(record.attempts, error.retry_after)
            await self._records.retry_at(ticket.job_id, time.time() + delay)
            log.warning("discord refused for now; trying again", error=str(error),
                        delay_s=round(delay, 2), attempt=record.attempts)  # fmt: skip
            return _Outcome(_Step.WAIT, delay)
        reference = new_reference_id()
        await self._records.finish(
            ticket.job_id, f"failed:{error.category}:{reference}", failed_before=record.next_at > 0
        )
        await self._settled(ticket)
        if result is not None:
            await self._results.delivered(result)
        log.error("reply could not be delivered; moving on", error=str(error),
                  reference_id=reference, kind=ticket.delivery.kind)  # fmt: skip
        return _Outcome(_Step.DONE)

    # -- acknowledging ---------------------------------------------------------------------------

    async def _acknowledge(
        self, lane: str, seen: dict[str, str], handled: set[str], *, lane_empty: bool
    ) -> None:
        """Acknowledge the entries (read before the pass) whose job is done with: posted or
        given up in this pass or by another process, or nothing left of them in the lane."""
        if not seen:
            return
        unsure = [job for job in seen if job not in handled]
        outcomes = await self._records.outcomes(unsure) if unsure and not lane_empty else {}
        done = [
            job for job in seen if job in handled or lane_empty or outcomes.get(job) is not None
        ]
        if not done:
            return
        await self._results.ack(GROUP, *(seen[job] for job in done))
        waiting = self._waiting.get(lane, {})
        for job in done:
            if waiting.get(job) == seen[job]:
                del waiting[job]
        if not waiting:
            self._waiting.pop(lane, None)

    # -- upkeep: dead consumers, lost heads ------------------------------------------------------

    async def _upkeep(self) -> None:
        try:
            await self._take_over_the_dead()
            for lane in await self._lanes.due():
                self.kick(lane)
            for lane in list(self._waiting):
                if lane not in self._lane_tasks and lane not in self._timers:
                    self.kick(lane)
        except Exception:
            log.warning("delivery upkeep failed", exc_info=True)

    async def _take_over_the_dead(self) -> None:
        for other in await self._results.consumers(GROUP):
            if other.consumer == self.consumer or await self._is_alive(other.consumer):
                continue
            claimed = await self._results.take_over(GROUP, other.consumer, self.consumer)
            if claimed:
                log.warning("took over a stopped process's deliveries", process=other.consumer,
                            entries=len(claimed))  # fmt: skip
            self._accept(claimed)

    # -- health ------------------------------------------------------------------------------------

    async def stalled(self) -> bool:
        """Replies have waited DELIVERY_STALL_SECONDS (Discord kept refusing them, or no
        process read them), and nothing was delivered meanwhile. A reply that waits its turn
        behind a slower one in its channel does not count."""
        now = time.time()
        last = await self._records.last_delivered_at()
        if last is not None and now - last < self._stall_seconds:
            return False
        failing = await self._records.failing_since()
        unread_ms = await self._results.oldest_unread_ms(GROUP)
        waits = [t for t in (failing, unread_ms / 1000 if unread_ms else None) if t is not None]
        return bool(waits) and now - min(waits) >= self._stall_seconds


def _entry_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("acknowledging results failed", error=repr(task.exception()))
