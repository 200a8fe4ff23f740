"""Discord's refusals sorted into what delivery does about them.

Permanent: trying again cannot help (the bot lost access, the channel is gone, the user does not
take DMs, the body is invalid); the reply is recorded as undeliverable and its lane moves on.
Transient: rate limits, Discord's 5xx, network trouble and timeouts; tried again with backoff,
while other lanes go on. This is the only retry layer: hikari's REST client is built with
`max_retries=0`, and it waits out a rate limit only up to `max_rate_limit` seconds itself (it
must: Discord demands it), beyond which it raises here.

Messages never carry hikari's error text: that text ends with the request URL, and a webhook's
URL holds its token.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import hikari

# Discord's JSON error codes delivery acts on.
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
MISSING_ACCESS = 50001
CANNOT_EDIT_OTHERS = 50005
CANNOT_DM = 50007
MISSING_PERMISSIONS = 50013
INVALID_FORM_BODY = 50035


@dataclass(eq=False)  # not frozen: Python sets __traceback__ on exceptions as they travel
class DeliveryError(Exception):
    permanent: bool
    category: str  # short, for logs, metrics and the record
    status: int | None = None
    code: int | None = None
    retry_after: float | None = None

    def __str__(self) -> str:
        kind = "permanent" if self.permanent else "transient"
        return f"{kind} {self.category} (status {self.status}, code {self.code})"


def classify(exc: BaseException) -> DeliveryError:
    """What a failed Discord call means for the reply being posted."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, hikari.RateLimitTooLongError):
        return DeliveryError(False, "rate_limited", 429, None, exc.retry_after)
    if isinstance(exc, hikari.InternalServerError):
        return DeliveryError(False, "discord_unavailable", int(exc.status))
    if isinstance(exc, hikari.ClientHTTPResponseError):
        return _client_error(exc)
    if isinstance(exc, hikari.HTTPResponseError):  # another status: odd, but may pass
        return DeliveryError(False, "discord_unavailable", int(exc.status))
    if isinstance(exc, hikari.HTTPError | aiohttp.ClientError | OSError | asyncio.TimeoutError):
        return DeliveryError(False, "network")
    return DeliveryError(False, "unexpected")


def _client_error(exc: hikari.ClientHTTPResponseError) -> DeliveryError:
    status, code = int(exc.status), int(exc.code)
    if status == 429:
        return DeliveryError(False, "rate_limited", status, code)
    if code == UNKNOWN_WEBHOOK:
        return DeliveryError(True, "unknown_webhook", status, code)
    if code == UNKNOWN_INTERACTION:
        return DeliveryError(True, "interaction_expired", status, code)
    if code == UNKNOWN_MESSAGE:
        return DeliveryError(True, "unknown_message", status, code)
    if code == CANNOT_EDIT_OTHERS:
        return DeliveryError(True, "not_author", status, code)
    if code == UNKNOWN_CHANNEL:
        return DeliveryError(True, "unknown_channel", status, code)
    if code == CANNOT_DM:
        return DeliveryError(True, "cannot_dm", status, code)
    if code in (MISSING_ACCESS, MISSING_PERMISSIONS) or status == 403:
        return DeliveryError(True, "missing_access", status, code)
    if code == INVALID_FORM_BODY or status == 400:
        return DeliveryError(True, "invalid_body", status, code)
    if status == 401:
        return DeliveryError(True, "unauthorized", status, code)
    return DeliveryError(True, "refused", status, code)
