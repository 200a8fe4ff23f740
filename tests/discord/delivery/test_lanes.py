"""Lanes: each channel's replies in message order, posted by one process at a time."""

from __future__ import annotations

from redis.asyncio import Redis

from tzurot.ai.contracts import Delivery
from tzurot.discord.delivery.lanes import Lanes, Speaker, Ticket
from tzurot.discord.delivery.render import webhook_username


def ticket(job: str, order: float, channel: str = "c1", kind: str = "channel") -> Ticket:
    delivery = Delivery(kind=kind, channel_id=channel, interaction_id="i1")  # type: ignore[arg-type]
    return Ticket(
        job_id=job, delivery=delivery, speaker=Speaker(display_name="Lilith"),
        personality_slug="lilith", error_message=None, order=order, created_at=0.0,
    )  # fmt: skip


async def test_heads_come_in_message_order_and_one_process_holds_a_lane(
    redis_client: Redis,
) -> None:
    mine, theirs = Lanes(redis_client, owner="a"), Lanes(redis_client, owner="b")
    for job, order in (("late", 30.0), ("early", 10.0), ("middle", 20.0)):
        await mine.add(ticket(job, order))
    await mine.add(ticket("early", 10.0))  # the same ticket again (a replay) is one ticket

    got, head = await mine.lease_head("c1")
    assert got and head is not None and head.ticket is not None
    assert head.ticket.job_id == "early"
    assert (await theirs.lease_head("c1")) == (False, None)

    order = []
    while head is not None:
        assert head.ticket is not None
        order.append(head.ticket.job_id)
        head = await mine.pop("c1", head)
    assert order == ["early", "middle", "late"]
    # The lane emptied: its lease went with it, and it is no longer listed.
    assert (await theirs.lease_head("c1"))[0] is True
    await theirs.release("c1")
    assert await mine.count() == 0


async def test_lanes_are_independent_and_an_interaction_has_its_own(redis_client: Redis) -> None:
    lanes = Lanes(redis_client, owner="a")
    await lanes.add(ticket("here", 1.0, channel="c1"))
    await lanes.add(ticket("there", 2.0, channel="c2"))
    await lanes.add(ticket("chat", 0.5, channel="c1", kind="interaction"))

    for lane, job in (("c1", "here"), ("c2", "there"), ("interaction-i1", "chat")):
        got, head = await lanes.lease_head(lane)
        assert got and head is not None and head.ticket is not None
        assert head.ticket.job_id == job


async def test_a_lane_released_to_wait_is_due_again_later(redis_client: Redis) -> None:
    lanes = Lanes(redis_client, owner="a", look_again_after=0.0)
    await lanes.add(ticket("waiting", 1.0))
    assert await lanes.due() == ["c1"]
    await lanes.lease_head("c1")
    await lanes.release("c1", look_again_in=60.0)
    assert await lanes.due() == []


async def test_an_unreadable_head_is_reported_not_raised(redis_client: Redis) -> None:
    lanes = Lanes(redis_client, owner="a")
    await redis_client.zadd("tzurot:lane:c9", {b"\xff not json": 1})
    got, head = await lanes.lease_head("c9")
    assert got and head is not None and head.ticket is None
    assert await lanes.pop("c9", head) is None


def test_webhook_names_avoid_the_words_discord_refuses() -> None:
    assert webhook_username("Discord Clyde") == "Disc0rd Clyd3"
    assert webhook_username("my DISCORD pal") == "my DISC0RD pal"
    assert webhook_username("x" * 100) == "x" * 80
    assert webhook_username("   ") == "Tzurot"
