"""What the program keeps in Redis stays bounded (DESIGN.md, "Running as several processes").

The number of keys without an expiry does not grow with the number of jobs served, every key
belongs to a family in `tzurot.infra.keys` (and carries that family's expiry), and nothing
tied to one job or one message outlives 7 days. The keys are SCANned here, in the test only.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from tests.emulator import DiscordEmulator
from tests.emulator.models import Channel, Message, User
from tests.fixtures.app import ApiClient, AppFactory
from tests.fixtures.fake_llm import FakeLLM, Step
from tests.fixtures.redis_server import RedisServer
from tzurot.infra import keys
from tzurot.infra.keys import DAY, KeyFamily, family_of
from tzurot.jobs.constants import QUEUE_NAME

pytestmark = pytest.mark.timeout(120)

SEVEN_DAYS_MS = 7 * DAY * 1000
NO_EXPIRY = -1
SETTLE_SECONDS = 15.0
QUEUE = QUEUE_NAME
# This is a load test of sorts: the users' and channels' rate limits must not answer instead.
UNLIMITED = {"RATE_LIMIT_USER_PER_MINUTE": "0", "RATE_LIMIT_CHANNEL_PER_MINUTE": "0"}


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A synchronous client on the test Redis, for looking only."""
    with redis_server.client() as connection:
        yield connection


# -- looking at Redis ----------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Every key in the test Redis with its PTTL (ms; -1: no expiry), taken in one go."""

    pttl: dict[str, int]

    @classmethod
    def take(cls, client: redis.Redis) -> Snapshot:
        # A synchronous client on purpose: the app shares this event loop, so it stands still
        # while the keys are read, and the picture is consistent.
        names = [k.decode() for k in client.scan_iter(count=1000)]
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.pttl(name)
        ttls = pipe.execute()
        # -2: expired between SCAN and PTTL.
        return cls({n: int(t) for n, t in zip(names, ttls, strict=True) if int(t) != -2})

    def without_expiry(self) -> dict[str, list[str]]:
        """Keys without an expiry, by family template (`?` for keys of no family)."""
        by_family: dict[str, list[str]] = {}
        for name, ttl in sorted(self.pttl.items()):
            if ttl == NO_EXPIRY:
                family = family_of(name)
                by_family.setdefault(family.template if family else "?", []).append(name)
        return by_family

    def counts(self) -> Counter[str]:
        return Counter({t: len(names) for t, names in self.without_expiry().items()})


def registry_problems(snapshot: Snapshot) -> list[str]:
    """Keys of no family, and keys whose expiry is not their family's."""
    problems = []
    for name, ttl in sorted(snapshot.pttl.items()):
        family = family_of(name)
        if family is None:
            problems.append(f"{name!r}: belongs to no family in tzurot.infra.keys")
        elif family.ttl_seconds is not None and not 0 < ttl <= family.ttl_seconds * 1000:
            problems.append(
                f"{name!r} (family {family.template!r}, ttl {family.ttl_seconds} s, "
                f"owner {family.owner}): PTTL is {ttl} ms"
            )
    return problems


def growth(before: Snapshot, after: Snapshot) -> list[str]:
    """Families with more keys without expiry than before, with the keys that are new."""
    old, new = before.without_expiry(), after.without_expiry()
    lines = []
    for template in sorted(new):
        extra = sorted(set(new[template]) - set(old.get(template, [])))
        if len(new[template]) > len(old.get(template, [])):
            family = _family_by_template(template)
            what = (
                f"bounded_by={family.bounded_by!r}, owner {family.owner}"
                if family is not None
                else "no family in tzurot.infra.keys"
            )
            lines.append(
                f"{template!r} ({what}): {len(old.get(template, []))} -> "
                f"{len(new[template])} keys without expiry; new: {extra[:5]}"
            )
    return lines


def _family_by_template(template: str) -> KeyFamily | None:
    return next((f for f in keys.ALL if f.template == template), None)


def per_job_problems(snapshot: Snapshot, ids: Iterable[str]) -> list[str]:
    """Keys naming one of `ids` (job or message ids) that could outlive 7 days."""
    wanted = set(ids)
    problems = []
    for name, ttl in sorted(snapshot.pttl.items()):
        found = next((i for i in wanted if i in name), None)
        if found is not None and not 0 < ttl <= SEVEN_DAYS_MS:
            family = family_of(name)
            problems.append(
                f"{name!r} (names {found!r}; family {family.template if family else None!r}): "
                f"PTTL {ttl} ms"
            )
    return problems


async def settled(
    client: redis.Redis,
    done: Callable[[Snapshot], bool] = lambda _: True,
    timeout: float = SETTLE_SECONDS,
) -> Snapshot:
    """A snapshot once `done` holds and the keys without expiry have stopped changing (or
    as things stand when `timeout` runs out: the assertions that follow then explain)."""
    deadline = time.monotonic() + timeout
    previous = Snapshot.take(client)
    while True:
        await asyncio.sleep(0.3)
        current = Snapshot.take(client)
        stable = current.without_expiry() == previous.without_expiry()
        if (stable and done(current)) or time.monotonic() > deadline:
            return current
        previous = current


def at_rest(snapshot: Snapshot) -> bool:
    """Nothing in flight: no SAQ job queued or running."""
    names = snapshot.pttl
    return f"saq:{QUEUE}:queued" not in names and f"saq:{QUEUE}:active" not in names


def queue_problems(client: redis.Redis) -> list[str]:
    """SAQ's in-flight structures hold nothing but the cron jobs once all jobs are done."""
    problems = []
    incomplete = [m.decode() for m in client.zrange(f"saq:{QUEUE}:incomplete", 0, -1)]
    leftover = [m for m in incomplete if not m.startswith(f"saq:job:{QUEUE}:cron:")]
    if leftover:
        problems.append(f"saq:{QUEUE}:incomplete still lists finished jobs: {leftover[:5]}")
    for kind in ("queued", "active"):
        length = client.llen(f"saq:{QUEUE}:{kind}")
        if length:
            problems.append(f"saq:{QUEUE}:{kind} holds {length} job(s) with nothing running")
    return problems


def report(title: str, problems: list[str]) -> str:
    return title + ":\n  " + "\n  ".join(problems)


# -- through the HTTP API ------------------------------------------------------------------

CHANNELS = ("api-channel-1", "api-channel-2", "api-channel-3")


async def serve(api: ApiClient, count: int, start: int, batch: int = 50) -> list[str]:
    """`count` generations through the API, `batch` at a time, each waited for; job ids."""
    job_ids: list[str] = []
    for first in range(start, start + count, batch):
        numbers = range(first, min(first + batch, start + count))
        answers = await asyncio.gather(
            *(
                api.generate(
                    wait=30,
                    message=f"question {n}",
                    userId=f"user-{n % 7}",
                    channelId=CHANNELS[n % len(CHANNELS)],
                    # Every other request names a source message (a second claim key).
                    **({"messageId": message_id(n)} if n % 2 == 0 else {}),
                )
                for n in numbers
            )
        )
        for status, body in answers:
            assert status == 200 and body["status"] in {"completed", "failed"}, body
            job_ids.append(body["jobId"])
    return job_ids


def message_id(n: int) -> str:
    return str(900_000_000_000_000_000 + n)


async def test_api_generations_do_not_grow_keys_without_expiry(
    start_app: AppFactory, client: redis.Redis, fake_llm: FakeLLM
) -> None:
    app = await start_app(**UNLIMITED)
    assert app.api is not None and app.api.port is not None
    api = ApiClient(f"http://127.0.0.1:{app.api.port}")
    try:
        warm = await serve(api, 30, start=0)
        before = await settled(client, at_rest)
        served = await serve(api, 300, start=30)
        after = await settled(client, lambda s: at_rest(s) and not growth(before, s))
    finally:
        await api.close()

    assert len(fake_llm.chat_calls) == 330
    assert not (problems := registry_problems(after)), report("keys off the registry", problems)
    assert not (problems := growth(before, after)), report(
        "keys without expiry grew over 300 generations", problems
    )
    assert not (problems := queue_problems(client)), report("SAQ left jobs behind", problems)
    ids = [*warm, *served, *(message_id(n) for n in range(0, 330, 2))]
    assert not (problems := per_job_problems(after, ids)), report(
        "keys tied to one job or message that outlive 7 days", problems
    )


# -- through Discord -----------------------------------------------------------------------


@dataclass
class Chat:
    """Mentions written in a few channels by several users, and the replies expected."""

    emu: DiscordEmulator
    channels: list[Channel]
    users: list[User]
    sent: list[Message]
    expected: dict[int, list[str]]  # channel id -> the replies it should get

    @classmethod
    def make(cls, emu: DiscordEmulator, channels: int, users: int) -> Chat:
        chans = [
            emu.channel,
            *(emu.add_text_channel(emu.guild, f"c{i}") for i in range(1, channels)),
        ]
        people = [emu.add_user(f"user{i}") for i in range(users)]
        return cls(emu, chans, people, [], {c.id: [] for c in chans})

    async def mention(self, count: int) -> None:
        for _ in range(count):
            n = len(self.sent)
            channel = self.channels[n % len(self.channels)]
            user = self.users[(n // len(self.channels)) % len(self.users)]
            text = f"@Lilith tell me about {n}"
            self.sent.append(await self.emu.post_message(channel, user, text))
            self.expected[channel.id].append(f"reply to: {user.username}: {text}")

    async def all_answered(self, timeout: float = 30) -> None:
        for channel in self.channels:
            want = len(self.expected[channel.id])
            await self.emu.wait_for_messages(channel, want, timeout=timeout)
        await asyncio.sleep(0.5)  # a reply posted twice would show by now
        for channel in self.channels:
            got = [m.content for m in self.emu.bot_messages(channel)]
            assert sorted(got) == sorted(self.expected[channel.id]), (channel.name, got)

    def message_ids(self) -> list[str]:
        bot = [m for c in self.channels for m in self.emu.bot_messages(c)]
        return [str(m.id) for m in [*self.sent, *bot]]


def delivery_problems(client: redis.Redis, snapshot: Snapshot) -> list[str]:
    """Once every reply is posted: results expire, lanes are empty, no typing is pending."""
    problems = [
        f"{name!r}: a delivered result without expiry"
        for name, ttl in snapshot.pttl.items()
        if keys.RESULT.matches(name) and ttl == NO_EXPIRY
    ]
    lanes = [n for n in snapshot.pttl if keys.LANE.matches(n)]
    if lanes:
        problems.append(f"lanes not emptied: {lanes[:5]}")
    if waiting := client.zcard(keys.LANES.key()):
        problems.append(f"{keys.LANES.key()} still lists {waiting} lane(s)")
    if typing := client.hkeys(keys.TYPING.key()):
        problems.append(f"{keys.TYPING.key()} still has {len(typing)} record(s): {typing[:5]}")
    stream = keys.RESULTS_STREAM.key()
    groups = client.xinfo_groups(stream) if client.exists(stream) else []
    for group in groups:
        if group["pending"]:
            problems.append(f"{stream} group {group['name']!r}: {group['pending']} unacknowledged")
    return problems


def delivered(client: redis.Redis) -> Callable[[Snapshot], bool]:
    return lambda snapshot: at_rest(snapshot) and not delivery_problems(client, snapshot)


async def test_discord_mentions_do_not_grow_keys_without_expiry(
    start_bot: Callable[..., Awaitable[Any]],
    discord_emulator: DiscordEmulator,
    client: redis.Redis,
    fake_llm: FakeLLM,
) -> None:
    emu = discord_emulator
    chat = Chat.make(emu, channels=3, users=4)
    await start_bot(**UNLIMITED)

    await chat.mention(20)
    await chat.all_answered()
    before = await settled(client, delivered(client))
    assert not (problems := delivery_problems(client, before)), report(
        "after 20 mentions", problems
    )

    for _ in range(4):  # 80 more, 20 at a time
        await chat.mention(20)
        await chat.all_answered()
    after = await settled(client, lambda s: delivered(client)(s) and not growth(before, s))

    assert len(fake_llm.chat_calls) == 100
    assert not (problems := registry_problems(after)), report("keys off the registry", problems)
    assert not (problems := delivery_problems(client, after)), report(
        "after 100 mentions", problems
    )
    assert not (problems := growth(before, after)), report(
        "keys without expiry grew between 20 and 100 answered mentions", problems
    )
    assert not (problems := queue_problems(client)), report("SAQ left jobs behind", problems)
    assert not (problems := per_job_problems(after, chat.message_ids())), report(
        "keys tied to one message that outlive 7 days", problems
    )


async def test_nothing_tied_to_one_job_or_message_outlives_seven_days(
    start_bot: Callable[..., Awaitable[Any]],
    discord_emulator: DiscordEmulator,
    client: redis.Redis,
    fake_llm: FakeLLM,
) -> None:
    """Mentions, a reply to a personality, a DM, failed generations (kept 7 days) and API
    jobs naming a source message: every key naming one of those jobs or messages expires
    within 7 days."""
    emu = discord_emulator
    chat = Chat.make(emu, channels=2, users=2)
    app = await start_bot(**UNLIMITED)

    await chat.mention(6)
    await chat.all_answered()
    first = emu.bot_messages(chat.channels[0])[0]
    continued = await emu.post_message(chat.channels[0], chat.users[1], "go on", reply_to=first)
    alice = chat.users[0]
    dm = emu.world.dm_channel(alice)
    dm_message = await emu.send_dm(alice, "@Lilith a private word")
    fake_llm.script(Step(status=400))  # a failure that is not retried: kept 7 days
    failing = await emu.post_message(chat.channels[1], alice, "@Lilith this one fails")
    await emu.wait_for_messages(chat.channels[0], 4, timeout=30)
    await emu.wait_for_messages(dm, 1, timeout=30)
    await emu.wait_for_messages(chat.channels[1], 4, timeout=30)

    assert app.api is not None and app.api.port is not None
    api = ApiClient(f"http://127.0.0.1:{app.api.port}")
    try:
        fake_llm.script(Step(status=400))
        api_jobs = await serve(api, 6, start=0, batch=6)
    finally:
        await api.close()

    snapshot = await settled(client, delivered(client))
    ids = [
        *chat.message_ids(),
        *(str(m.id) for m in [continued, dm_message, failing, *emu.bot_messages(dm)]),
        *(str(m.id) for c in chat.channels for m in emu.bot_messages(c)),
        *api_jobs,
        *(message_id(n) for n in range(0, 6, 2)),
    ]
    named = [n for n in snapshot.pttl if any(i in n for i in ids)]
    # The families that hold per-job or per-message state were all written.
    families = {f.template for n in named if (f := family_of(n)) is not None}
    for family in (keys.CLAIM, keys.RESULT, keys.DELIVERY, keys.SAID_BY, keys.SAQ_FAMILIES[0]):
        assert family.template in families, (family.template, sorted(families))
    failed = [n for n in named if keys.RESULT.matches(n) and snapshot.pttl[n] > 2 * DAY * 1000]
    assert len(failed) >= 2, "the failed generations' results should be kept 7 days"

    assert not (problems := per_job_problems(snapshot, ids)), report(
        "keys tied to one job or message that outlive 7 days", problems
    )
    assert not (problems := registry_problems(snapshot)), report("keys off the registry", problems)
