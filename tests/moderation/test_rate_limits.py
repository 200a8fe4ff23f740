"""Sliding-window rate limits against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tzurot.infra.keys import RATE_CHANNEL, RATE_TOLD, RATE_USER, family_of
from tzurot.moderation import RateLimiter

T = 1_700_000_000.0


async def test_allows_up_to_the_limit_then_says_when(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, per_user=2, per_channel=100)
    assert (await limiter.check("u", "c", "r1", now=T)).allowed
    assert (await limiter.check("u", "c", "r2", now=T + 10)).allowed
    refused = await limiter.check("u", "c", "r3", now=T + 20)
    assert not refused.allowed and refused.limit == "user"
    # The first request leaves the window at T + 60: 40 s from now.
    assert refused.retry_after == pytest.approx(40.0)
    assert refused.tell  # the first refusal in the window is told
    again = await limiter.check("u", "c", "r4", now=T + 30)
    assert not again.allowed and not again.tell  # told once
    assert again.retry_after == pytest.approx(30.0)


async def test_the_window_slides_exactly_at_its_edge(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, per_user=1, per_channel=0)
    assert (await limiter.check("u", "c", "a", now=T)).allowed
    just_before = await limiter.check("u", "c", "b", now=T + 59.999)
    assert not just_before.allowed
    assert just_before.retry_after == pytest.approx(0.001, abs=1e-6)
    assert just_before.retry_seconds == 1
    assert (await limiter.check("u", "c", "c", now=T + 60)).allowed  # the old one left
    assert not (await limiter.check("u", "c", "d", now=T + 61)).allowed


async def test_refusals_are_not_recorded(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, per_user=2, per_channel=0)
    await limiter.check("u", "c", "a", now=T)
    await limiter.check("u", "c", "b", now=T + 1)
    for i in range(10):  # hammering does not push the window forward
        assert not (await limiter.check("u", "c", f"x{i}", now=T + 2 + i)).allowed
    assert await redis_client.zcard(RATE_USER.key(user_id="u")) == 2
    assert (await limiter.check("u", "c", "c", now=T + 60)).allowed


async def test_channel_limit_counts_every_user_and_records_only_when_both_pass(
    redis_client: Redis,
) -> None:
    limiter = RateLimiter(redis_client, per_user=5, per_channel=2)
    assert (await limiter.check("a", "c", "1", now=T)).allowed
    assert (await limiter.check("b", "c", "2", now=T + 1)).allowed
    refused = await limiter.check("d", "c", "3", now=T + 2)
    assert not refused.allowed and refused.limit == "channel"
    assert refused.retry_after == pytest.approx(58.0)
    # d was refused by the channel: d's own window was not charged.
    assert await redis_client.zcard(RATE_USER.key(user_id="d")) == 0
    # Another channel is another window.
    assert (await limiter.check("d", "other", "4", now=T + 2)).allowed


async def test_user_limit_spans_channels(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, per_user=2, per_channel=10)
    assert (await limiter.check("u", "c1", "1", now=T)).allowed
    assert (await limiter.check("u", "c2", "2", now=T)).allowed
    assert not (await limiter.check("u", "c3", "3", now=T)).allowed
    # the refused request did not count against c3
    assert await redis_client.zcard(RATE_CHANNEL.key(channel_id="c3")) == 0


async def test_cost_counts_several_generations(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, per_user=3, per_channel=0)
    assert (await limiter.check("u", "c", "m1", cost=2, now=T)).allowed
    refused = await limiter.check("u", "c", "m2", cost=2, now=T + 1)
    assert not refused.allowed
    assert (await limiter.check("u", "c", "m3", cost=1, now=T + 1)).allowed
    # A cost above the limit is capped at it: it waits for a whole empty window, not forever.
    big = RateLimiter(redis_client, per_user=2, per_channel=0)
    assert (await big.check("v", "c", "z", cost=5, now=T)).allowed


async def test_zero_turns_a_limit_off(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, per_user=0, per_channel=0)
    for i in range(50):
        assert (await limiter.check("u", "c", str(i))).allowed
    assert await redis_client.dbsize() == 0


async def test_every_key_expires_within_the_window(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, per_user=1, per_channel=1)
    await limiter.check("u", "c", "1")
    await limiter.check("u", "c", "2")  # refused: sets the told key
    keys = [k.decode() for k in await redis_client.keys("*")]
    assert sorted(keys) == sorted(
        [RATE_USER.key(user_id="u"), RATE_CHANNEL.key(channel_id="c"), RATE_TOLD.key(user_id="u")]
    )
    for key in keys:
        family = family_of(key)
        assert family is not None and family.ttl_seconds is not None
        assert 0 < await redis_client.pttl(key) <= family.ttl_seconds * 1000


async def test_redis_clock_and_told_again_in_the_next_window(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, per_user=1, per_channel=0, window=0.3)
    assert (await limiter.check("u", "c", "1")).allowed
    first = await limiter.check("u", "c", "2")
    assert not first.allowed and first.tell and 0 < first.retry_after <= 0.3
    assert not (await limiter.check("u", "c", "3")).tell
    await asyncio.sleep(0.35)
    assert (await limiter.check("u", "c", "4")).allowed
    second = await limiter.check("u", "c", "5")
    assert not second.allowed and second.tell  # a new window: told again
