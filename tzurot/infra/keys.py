"""Every Redis key family the program writes: one place, one `tzurot:` prefix, each expiry.

Modules build their keys from these families and nothing else, so this table is the whole
picture of what the program keeps in Redis. A family either expires (`ttl_seconds`, set on
every write) or is a structure whose size something else bounds (`bounded_by`): no family grows
with the number of jobs served. SAQ's own keys cannot take our prefix (SAQ hard-codes `saq:`);
they are listed at the end with the expiry we give them.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

PREFIX = "tzurot:"
HOUR = 3600
DAY = 24 * HOUR

_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class KeyFamily:
    template: str  # e.g. "tzurot:claim:{request_id}"
    owner: str  # the module that reads and writes it
    ttl_seconds: int | None  # expiry set on every write, or None for a bounded structure
    bounded_by: str = ""  # what keeps a family without expiry small
    meaning: str = ""

    def key(self, **parts: str) -> str:
        return self.template.format(**parts)

    @property
    def glob(self) -> str:
        """The family as a SCAN/KEYS pattern (for tests and operators, never on a schedule)."""
        return "".join(literal + ("*" if field else "") for literal, field in self._parts())

    def matches(self, key: str) -> bool:
        pattern = "".join(
            re.escape(literal) + (".+" if field else "") for literal, field in self._parts()
        )
        return re.fullmatch(pattern, key) is not None

    def _parts(self) -> list[tuple[str, str | None]]:
        return [(literal, field) for literal, field, _, _ in _FORMATTER.parse(self.template)]


# -- jobs --------------------------------------------------------------------------------------
CLAIM = KeyFamily(
    "tzurot:claim:{request}", "jobs", 7 * DAY,
    meaning="the one duplicate guard: request id (or source message + personality) -> job id",
)  # fmt: skip
RESULT = KeyFamily(
    "tzurot:result:{job_id}", "jobs", None,
    bounded_by="expires 24 h (completed) / 7 d (failed) once delivered or when nothing is to "
    "be delivered; only results still waiting for delivery have no expiry",
    meaning="a finished generation, recorded once",
)  # fmt: skip
RESULTS_STREAM = KeyFamily(
    "tzurot:results", "jobs", None,
    bounded_by="trimmed to the last 24 h on every append (XADD MINID)",
    meaning="finished generations to deliver (consumer group per front end)",
)  # fmt: skip
DONE_CHANNEL = KeyFamily(
    "tzurot:done", "jobs", None, bounded_by="a pub/sub channel, not a key",
    meaning="one message per finished job: wakes waiters",
)  # fmt: skip
PREFILLED_THINKING = KeyFamily(
    "tzurot:prefilled-thinking", "jobs.streams", 30 * DAY,
    meaning="models seen pre-filling <think> (a reply that only closed it): their streamed "
    "replies stay hidden until the closing tag; one set, as large as the models in use",
)  # fmt: skip
STATS = KeyFamily("tzurot:stats", "jobs", None, bounded_by="one hash, one field per status")
STREAM = KeyFamily(
    "tzurot:stream:{job_id}", "jobs.streams", HOUR,
    meaning="a reply as it is written (a Redis stream of visible-text pieces), so any process "
    "can show it; compacted as it grows, deleted once the reply is delivered",
)  # fmt: skip
SIGNING_SECRET = KeyFamily(
    "tzurot:job-signing-secret", "jobs", None, bounded_by="one key",
    meaning="the generated JOB_SIGNING_KEY shared by every process (when none is set)",
)  # fmt: skip
CRON_TICK = KeyFamily(
    "tzurot:cron:{task}", "jobs", 7 * DAY,
    meaning="the last tick of a cron task that ran (each tick runs once across processes)",
)  # fmt: skip

# -- processes ---------------------------------------------------------------------------------
PROCESS_LEASE = KeyFamily(
    "tzurot:process:{name}", "infra", 15,
    meaning="a live process's name (delivery consumer and SAQ worker id), renewed every 5 s",
)  # fmt: skip

# -- personalities and conversations -----------------------------------------------------------
PERSONALITY = KeyFamily(
    "tzurot:personality:{slug}", "personalities", None, bounded_by="one per personality"
)
PERSONALITY_INDEX = KeyFamily(
    "tzurot:personality-index", "personalities", None,
    bounded_by="one hash: every name, slug and alias -> slug",
)  # fmt: skip
PERSONALITY_META = KeyFamily(
    "tzurot:personality-meta:{slug}", "personalities", None,
    bounded_by="one hash per personality, removed with it",
    meaning="where a character came from (file, discord, api), who last edited it and when, "
    "the hash of the file version last seeded",
)  # fmt: skip
AVATAR = KeyFamily(
    "tzurot:avatar:{slug}", "personalities.avatars", None,
    bounded_by="one hash per personality with an uploaded avatar (2 MiB cap), removed with it",
    meaning="an uploaded avatar image: bytes, content type and hash, served at /avatars/{slug}",
)  # fmt: skip
TRANSCRIPT_ORDER = KeyFamily(
    "tzurot:transcript:{{{channel}}}:order", "conversations", None,
    bounded_by="500 turns per channel, pruned after HISTORY_RETENTION_DAYS by a cron task",
)  # fmt: skip
TRANSCRIPT_TURNS = KeyFamily(
    "tzurot:transcript:{{{channel}}}:turns", "conversations", None,
    bounded_by="as the order set it belongs to",
)  # fmt: skip
TRANSCRIPT_ACTIVE = KeyFamily(
    "tzurot:transcript-active", "conversations", None,
    bounded_by="one member per channel with a transcript; pruned with them",
)  # fmt: skip

# -- Discord front end -------------------------------------------------------------------------
LANE = KeyFamily(
    "tzurot:lane:{lane}", "discord.delivery", None,
    bounded_by="replies waiting for delivery in one channel; empty lanes vanish",
    meaning="a channel's replies in the order their messages were written",
)  # fmt: skip
LANES = KeyFamily(
    "tzurot:lanes", "discord.delivery", None,
    bounded_by="one member per non-empty lane",
    meaning="lanes with replies waiting, scored by when they were last looked at",
)  # fmt: skip
LANE_LEASE = KeyFamily(
    "tzurot:lane-lease:{lane}", "discord.delivery", 15,
    meaning="the process posting in a lane right now (renewed while it posts)",
)  # fmt: skip
LANE_LAST = KeyFamily(
    "tzurot:lane-last:{lane}", "discord.delivery", DAY,
    meaning="the newest message a lane posted: a streamed message posted but never recorded "
    "is looked for after it",
)  # fmt: skip
DELIVERY = KeyFamily(
    "tzurot:delivery:{job_id}", "discord.delivery", 7 * DAY,
    meaning="the one delivered record: chunks posted, the chunk in flight, attempts, outcome",
)  # fmt: skip
DELIVERY_FAILING = KeyFamily(
    "tzurot:delivery-failing", "discord.delivery", None,
    bounded_by="one member per reply Discord keeps refusing for now (until posted or given up)",
    meaning="replies waiting for a retry, scored by their first refusal (for /health)",
)  # fmt: skip
DELIVERY_LAST = KeyFamily(
    "tzurot:delivery-last", "discord.delivery", None, bounded_by="one key",
    meaning="when any process last delivered a reply (for /health)",
)  # fmt: skip
INTERACTION = KeyFamily(
    "tzurot:interaction:{job_id}", "discord", 15 * 60,
    meaning="a deferred interaction's token, sealed, for its 15-minute life",
)  # fmt: skip
TYPING = KeyFamily(
    "tzurot:typing", "discord", None,
    bounded_by="one field per reply being generated; each has a deadline",
    meaning="typing indicators to keep up, and 'taking longer' notices",
)  # fmt: skip
SAID_BY = KeyFamily(
    "tzurot:said-by:{message_id}", "discord", 7 * DAY,
    meaning="which personality posted a message (a reply to it continues with them)",
)  # fmt: skip
DM_LAST = KeyFamily(
    "tzurot:dm-last:{user_id}", "discord", 30 * DAY,
    meaning="the personality a user last talked to in DMs",
)  # fmt: skip
WEBHOOK = KeyFamily(
    "tzurot:webhook:{channel_id}", "discord.delivery", 30 * DAY,
    meaning="a channel's webhook id and token, sealed",
)  # fmt: skip
NOTICE = KeyFamily(
    "tzurot:notice:{kind}:{channel_id}", "discord.delivery", DAY,
    meaning="a channel was told about a missing permission today",
)  # fmt: skip
REPLY = KeyFamily(
    "tzurot:reply:{job_id}", "discord.replies", DAY,
    meaning="a delivered reply: its messages, requester, trigger and what Inspect shows "
    "(for Regenerate, Delete reply, View reasoning, Inspect)",
)  # fmt: skip
REPLY_MESSAGE = KeyFamily(
    "tzurot:reply-message:{message_id}", "discord.replies", DAY,
    meaning="the reply (job id) a posted message belongs to",
)  # fmt: skip
REPLY_TRIGGER = KeyFamily(
    "tzurot:reply-trigger:{message_id}", "discord.replies", DAY,
    meaning="the replies (a set of job ids) a user's message triggered (edits, deletions)",
)  # fmt: skip
REPLY_BUSY = KeyFamily(
    "tzurot:reply-busy:{job_id}", "discord.replies", 15 * 60,
    meaning="a Regenerate or Delete reply of this reply is under way (one at a time)",
)  # fmt: skip
PLURALKIT_MESSAGE = KeyFamily(
    "tzurot:pk-message:{message_id}", "discord.pluralkit", HOUR,
    meaning="PluralKit's answer for a message (webhook or original id): the member and sender "
    "who proxied it, or that it was not proxied (kept 5 min)",
)  # fmt: skip
PLURALKIT_SYSTEM = KeyFamily(
    "tzurot:pk-system:{user_id}", "discord.pluralkit", HOUR,
    meaning="whether a Discord user has a PluralKit system (their messages are held briefly)",
)  # fmt: skip
PLURALKIT_CLAIM = KeyFamily(
    "tzurot:pk-claim:{message_id}", "discord.pluralkit", 600,
    meaning="an original message is answered once: by itself or by PluralKit's repost of it",
)  # fmt: skip
PLURALKIT_RATE = KeyFamily(
    "tzurot:pk-rate:{{{scope}}}", "discord.pluralkit", 1,
    meaning="requests to PluralKit's API in the current second, across processes",
)  # fmt: skip
PLURALKIT_PAUSE = KeyFamily(
    "tzurot:pk-pause:{{{scope}}}", "discord.pluralkit", 60,
    meaning="PluralKit answered 429: no process calls it until this expires (its retry_after)",
)  # fmt: skip

# -- users' own API keys (BYOK) ------------------------------------------------------------------
API_KEYS = KeyFamily(
    "tzurot:apikeys:{user_id}", "settings.apikeys", None,
    bounded_by="one hash per user who added a key: one field per provider (each sealed) and "
    "its rejected flag; removed with the user's last key",
    meaning="a user's own provider API keys, sealed with ENCRYPTION_KEY (AES-256-GCM)",
)  # fmt: skip

# -- settings and presets ----------------------------------------------------------------------
PRESETS = KeyFamily(
    "tzurot:presets", "settings.presets", None,
    bounded_by="one hash: one field per preset (at most 25 per owner); /preset delete removes it",
    meaning="presets of model and sampling values: slug -> JSON",
)  # fmt: skip
SETTINGS_USER = KeyFamily(
    "tzurot:settings:user:{user_id}", "settings.store", None,
    bounded_by="one hash per user with a setting: at most one field per setting key, plus one "
    "per key and character the user set; /settings reset removes fields, the last one the hash",
    meaning="a user's own settings: `key` (their default) and `slug/key` (for one character)",
)  # fmt: skip
SETTINGS_CHANNEL = KeyFamily(
    "tzurot:settings:channel:{channel_id}", "settings.store", None,
    bounded_by="one hash per channel or thread with a setting: one field per setting key",
    meaning="a channel's settings, each with its enforce flag (`1|value` enforced)",
)  # fmt: skip

# -- community: denylist, rate limits, channel activation, history undo ------------------------
DENYLIST = KeyFamily(
    "tzurot:denylist", "moderation", None,
    bounded_by="one hash: one field per /deny entry a moderator added (capped); /deny remove "
    "deletes it",
    meaning="who may not talk to the characters: scope + place + target -> the entry",
)  # fmt: skip
RATE_USER = KeyFamily(
    "tzurot:rate-user:{user_id}", "moderation", 60,
    meaning="a user's generations in the last minute (sliding window, sorted set)",
)  # fmt: skip
RATE_CHANNEL = KeyFamily(
    "tzurot:rate-channel:{channel_id}", "moderation", 60,
    meaning="a channel's generations in the last minute (sliding window, sorted set)",
)  # fmt: skip
RATE_TOLD = KeyFamily(
    "tzurot:rate-told:{user_id}", "moderation", 60,
    meaning="the user was told about a rate limit in this window (told once)",
)  # fmt: skip
ACTIVATIONS = KeyFamily(
    "tzurot:activations:{guild_id}", "discord.activation", None,
    bounded_by="one hash per server with an activated channel: one field per activated (or "
    "deactivated-here) channel; removed with /channel deactivate",
    meaning="which character answers every message in a channel (and who set it, when)",
)  # fmt: skip
TRANSCRIPT_UNDO = KeyFamily(
    "tzurot:transcript-undo:{{{channel}}}", "conversations", DAY,
    meaning="what each user's last /history clear removed in a channel, for /history undo",
)  # fmt: skip

# -- memory (long-term) and attachments ---------------------------------------------------------
# A memory scope is one user with one character: `{user_id}:{slug}`, a hash tag keeping its keys
# in one slot. Its memories are capped (MEMORY_CAP_PER_SCOPE), the oldest unlocked dropped first.
MEMORY_VECTORS = KeyFamily(
    "tzurot:memory:{{{scope}}}:vectors", "memory.store", None,
    bounded_by="one float32 row per slot; slots are reused, never more than the scope's cap",
    meaning="a scope's embeddings: row i is slot i's vector",
)  # fmt: skip
MEMORY_SLOTS = KeyFamily(
    "tzurot:memory:{{{scope}}}:slots", "memory.store", None,
    bounded_by="one entry per slot (at most the scope's cap); a freed slot is reused",
    meaning="slot i -> `memory id|venue`, or empty when free",
)  # fmt: skip
MEMORY_RECORDS = KeyFamily(
    "tzurot:memory:{{{scope}}}:records", "memory.store", None,
    bounded_by="one field per memory (at most the scope's cap); /memory delete|purge remove them",
    meaning="memory id -> the memory as JSON (text, time, venue, slot, lock)",
)  # fmt: skip
MEMORY_ORDER = KeyFamily(
    "tzurot:memory:{{{scope}}}:order", "memory.store", None,
    bounded_by="one member per memory (at most the scope's cap)",
    meaning="memory ids by time: browse order and who is dropped first",
)  # fmt: skip
MEMORY_INFO = KeyFamily(
    "tzurot:memory:{{{scope}}}:info", "memory.store", None,
    bounded_by="one small hash per scope with memories; removed by /memory purge",
    meaning="the scope's embedding model and dimension, its version (bumped on every write) "
    "and its free slots",
)  # fmt: skip
MEMORY_FREE = KeyFamily(
    "tzurot:memory:{{{scope}}}:free", "memory.store", None,
    bounded_by="freed slots waiting for reuse (fewer than the scope's cap)",
    meaning="slots whose memory was deleted, reused by the next write",
)  # fmt: skip
MEMORY_SCOPES = KeyFamily(
    "tzurot:memory-scopes:{user_id}", "memory.service", None,
    bounded_by="one member per character the user has memories or facts with",
    meaning="the characters a user has memories with (for /memory purge and browse)",
)  # fmt: skip
MEMORY_PREFS = KeyFamily(
    "tzurot:memory-prefs:{user_id}", "memory.service", None,
    bounded_by="one small hash per user who set /memory share or incognito",
    meaning="a user's memory choices: share (across servers and DMs), incognito",
)  # fmt: skip
FACTS = KeyFamily(
    "tzurot:facts:{{{scope}}}", "memory.facts", None,
    bounded_by="at most MAX_FACTS fields per scope (newest kept); /memory facts and purge",
    meaning="durable facts about a user for one character: key -> JSON (text, venue, lock)",
)  # fmt: skip
FACTS_DUE = KeyFamily(
    "tzurot:facts-due:{{{scope}}}", "memory.facts", 30 * DAY,
    meaning="exchanges since facts were last distilled for this scope",
)  # fmt: skip
MEMORY_PENDING = KeyFamily(
    "tzurot:memory-pending", "memory.service", None,
    bounded_by="one hash, capped (oldest dropped beyond 10,000): memory writes whose every "
    "attempt failed, re-queued every 10 minutes until they land (kept 7 days)",
    meaning="memory writes waiting to be tried again",
)  # fmt: skip
MEMORY_FORGOTTEN = KeyFamily(
    "tzurot:memory-forgotten:{job_id}", "memory.service", 7 * DAY,
    meaning="a reply deleted or replaced: its memory is forgotten and never written later",
)  # fmt: skip
MEDIA_CACHE = KeyFamily(
    "tzurot:media:{kind}:{digest}", "attachments", 30 * DAY,
    meaning="what an attachment said: an image's description or an audio transcript, by the "
    "SHA-256 of its bytes",
)  # fmt: skip

OURS: tuple[KeyFamily, ...] = (
    CLAIM, RESULT, RESULTS_STREAM, STATS, STREAM, PREFILLED_THINKING, SIGNING_SECRET, CRON_TICK,
    PROCESS_LEASE,
    PERSONALITY, PERSONALITY_INDEX, TRANSCRIPT_ORDER, TRANSCRIPT_TURNS, TRANSCRIPT_ACTIVE,
    PERSONALITY_META, AVATAR,
    LANE, LANES, LANE_LEASE, LANE_LAST, DELIVERY, DELIVERY_FAILING, DELIVERY_LAST,
    INTERACTION, TYPING,
    SAID_BY, DM_LAST, WEBHOOK, NOTICE, REPLY, REPLY_MESSAGE, REPLY_TRIGGER,
    REPLY_BUSY,
    PLURALKIT_MESSAGE, PLURALKIT_SYSTEM, PLURALKIT_CLAIM, PLURALKIT_RATE, PLURALKIT_PAUSE,
    DENYLIST, RATE_USER, RATE_CHANNEL, RATE_TOLD, ACTIVATIONS, TRANSCRIPT_UNDO,
    API_KEYS,
    PRESETS, SETTINGS_USER, SETTINGS_CHANNEL,
    MEMORY_VECTORS, MEMORY_SLOTS, MEMORY_RECORDS, MEMORY_ORDER, MEMORY_INFO, MEMORY_FREE,
    MEMORY_SCOPES, MEMORY_PREFS, FACTS, FACTS_DUE, MEMORY_PENDING, MEDIA_CACHE,
    MEMORY_FORGOTTEN,
)  # fmt: skip

# -- SAQ's own keys (queue name "tzurot"; SAQ fixes the `saq:` prefix) ---------------------------
SAQ_FAMILIES: tuple[KeyFamily, ...] = (
    KeyFamily(
        "saq:job:{queue}:{job_key}",
        "saq",
        None,
        bounded_by="jobs in flight; a finished job expires after Job.ttl (24 h)",
    ),
    KeyFamily("saq:{queue}:incomplete", "saq", None, bounded_by="jobs in flight"),
    KeyFamily("saq:{queue}:queued", "saq", None, bounded_by="jobs in flight"),
    KeyFamily("saq:{queue}:active", "saq", None, bounded_by="jobs in flight"),
    KeyFamily("saq:{queue}:stats", "saq", 60, meaning="live workers"),
    KeyFamily("saq:{queue}:worker_info:{worker}", "saq", 60),
    KeyFamily("saq:{queue}:schedule", "saq", 1, meaning="scheduler lock"),
    KeyFamily("saq:{queue}:sweep", "saq", 60, meaning="sweep lock"),
    KeyFamily("saq:abort:{job_key}", "saq", 5),
)

ALL: tuple[KeyFamily, ...] = OURS + SAQ_FAMILIES


def family_of(key: str) -> KeyFamily | None:
    """The family a concrete key belongs to (tests use it to prove nothing unlisted exists)."""
    return next((family for family in ALL if family.matches(key)), None)
