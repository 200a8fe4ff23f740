"""The registry of Redis key families (tzurot/infra/keys.py), on its own."""

from __future__ import annotations

import fnmatch
import string

import pytest

from tzurot.infra import keys
from tzurot.infra.keys import ALL, DAY, OURS, SAQ_FAMILIES, KeyFamily, family_of

# Realistic values for each template field (ids with the characters real ids have).
SAMPLES = {
    "request": "request:0f3c2a9e4b1d7c6a5e8f0b2d",
    "job_id": "llm-msg-1577288394910728195-e3677635d58f",
    "task": "transcript-retention",
    "name": "worker-host-2",
    "slug": "lilith",
    "channel": "1577288383883902976",
    "lane": "channel:1577288383883902976",
    "message_id": "1577288398668824576",
    "user_id": "1577288383892291585",
    "channel_id": "1577288383892291584",
    "kind": "manage_webhooks",
    "queue": "tzurot",
    "job_key": "llm-0b4eb9ad9960e4ef3c45f7b9",
    "worker": "worker-host-2",
}


def fields(family: KeyFamily) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(family.template) if f]


def sample(family: KeyFamily) -> str:
    # A field added later gets a made-up value until it is given a realistic one above.
    return family.key(**{f: SAMPLES.get(f, f"sample-{f}-1") for f in fields(family)})


def name(family: KeyFamily) -> str:
    return family.template


def test_every_family_of_ours_has_our_prefix() -> None:
    for family in OURS:
        assert family.template.startswith(keys.PREFIX), family.template
        assert sample(family).startswith("tzurot:"), family.template
    for family in SAQ_FAMILIES:
        assert family.template.startswith("saq:"), family.template
        assert family.owner == "saq"


def test_templates_are_unique_and_all_lists_every_family() -> None:
    templates = [f.template for f in ALL]
    assert len(templates) == len(set(templates))
    assert ALL == OURS + SAQ_FAMILIES
    declared = {v for v in vars(keys).values() if isinstance(v, KeyFamily)}
    # The done channel is a pub/sub channel, not a key: the only family left out of OURS.
    assert declared - set(OURS) == {keys.DONE_CHANNEL}, "a family missing from OURS"


@pytest.mark.parametrize("family", ALL, ids=name)
def test_key_then_family_of_round_trips(family: KeyFamily) -> None:
    key = sample(family)
    assert family_of(key) is family, (key, family_of(key))
    # No other family claims it either (family_of takes the first match).
    assert [f.template for f in ALL if f.matches(key)] == [family.template]


@pytest.mark.parametrize("family", ALL, ids=name)
def test_glob_matches_what_key_makes_and_nothing_of_other_families(family: KeyFamily) -> None:
    assert fnmatch.fnmatchcase(sample(family), family.glob), (family.glob, sample(family))
    others = [sample(f) for f in ALL if f is not family]
    assert [k for k in others if fnmatch.fnmatchcase(k, family.glob)] == []


@pytest.mark.parametrize(
    ("family", "field"), [(keys.TRANSCRIPT_ORDER, "order"), (keys.TRANSCRIPT_TURNS, "turns")]
)
def test_transcript_keys_are_hash_tagged_on_the_channel(family: KeyFamily, field: str) -> None:
    channel = "1577288383883902976"
    key = family.key(channel=channel)
    assert key == f"tzurot:transcript:{{{channel}}}:{field}"
    assert family_of(key) is family
    assert family.glob == f"tzurot:transcript:{{*}}:{field}"
    # Both keys of one channel hash to one cluster slot: the tag is the channel id.
    tag = key[key.index("{") + 1 : key.index("}")]
    assert tag == channel


def test_family_of_rejects_keys_outside_the_registry() -> None:
    for key in ("tzurot:unknown:1", "tzurot:result", "tzurot:claim:", "other:thing", "saq:x"):
        assert family_of(key) is None, key


@pytest.mark.parametrize("family", ALL, ids=name)
def test_a_family_either_expires_or_says_what_bounds_it(family: KeyFamily) -> None:
    if family.ttl_seconds is None:
        assert family.bounded_by.strip(), f"{family.template}: no ttl and no bounded_by"
    else:
        assert family.ttl_seconds > 0, family.template
        assert family.ttl_seconds <= 30 * DAY, family.template
    assert family.owner


# Families keyed by one job, one request or one message, and how long they are kept.
PER_JOB = {"job_id", "request", "message_id", "job_key"}


@pytest.mark.parametrize("family", [f for f in ALL if PER_JOB & set(fields(f))], ids=name)
def test_nothing_per_job_or_message_is_kept_beyond_seven_days(family: KeyFamily) -> None:
    if family.ttl_seconds is not None:
        assert family.ttl_seconds <= 7 * DAY, family.template
    else:
        # Kept without expiry only while in flight (results waiting for delivery, SAQ jobs
        # queued or running): the family must say how it expires afterwards.
        assert family in (keys.RESULT, SAQ_FAMILIES[0]), family.template
        assert "expire" in family.bounded_by, family.template
