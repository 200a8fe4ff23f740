"""Discord's refusals sorted into permanent (the lane moves on) and transient (tried again)."""

from __future__ import annotations

from http import HTTPStatus

import hikari
import pytest
from hikari.internal import routes
from multidict import CIMultiDict

from tzurot.discord.delivery.errors import DeliveryError, classify

URL = "https://discord.com/api/v10/webhooks/123/SECRET-WEBHOOK-TOKEN"


def response_error(cls: type[hikari.HTTPResponseError], status: int, code: int) -> Exception:
    """As hikari builds them: the URL (holding the webhook's token) comes first."""
    if cls in (hikari.InternalServerError,):
        return cls(URL, HTTPStatus(status), CIMultiDict(), b"{}", "no", code)
    return cls(URL, CIMultiDict(), b"{}", "no", code)  # the status is the class's own


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (response_error(hikari.ForbiddenError, 403, 50001), "missing_access"),
        (response_error(hikari.ForbiddenError, 403, 50013), "missing_access"),
        (response_error(hikari.NotFoundError, 404, 10003), "unknown_channel"),
        (response_error(hikari.ForbiddenError, 403, 50007), "cannot_dm"),
        (response_error(hikari.NotFoundError, 404, 10015), "unknown_webhook"),
        (response_error(hikari.NotFoundError, 404, 10062), "interaction_expired"),
        (response_error(hikari.BadRequestError, 400, 50035), "invalid_body"),
        (response_error(hikari.UnauthorizedError, 401, 0), "unauthorized"),
    ],
)
def test_refusals_that_retrying_cannot_help_are_permanent(error: Exception, category: str) -> None:
    classified = classify(error)
    assert classified.permanent
    assert classified.category == category


@pytest.mark.parametrize(
    "error",
    [
        response_error(hikari.InternalServerError, 500, 0),
        response_error(hikari.InternalServerError, 503, 0),
        hikari.HTTPError("connection reset"),
        TimeoutError(),
        ConnectionResetError(),
    ],
)
def test_discord_trouble_is_transient(error: Exception) -> None:
    assert not classify(error).permanent


def test_a_rate_limit_too_long_to_wait_in_place_is_transient_with_its_retry_after() -> None:
    route = routes.POST_WEBHOOK_WITH_TOKEN.compile(webhook=1, token="t")
    error = hikari.RateLimitTooLongError(
        route=route, is_global=False, retry_after=42.0, max_retry_after=10.0,
        reset_at=0.0, limit=None, period=None,
    )  # fmt: skip
    classified = classify(error)
    assert not classified.permanent and classified.retry_after == 42.0


def test_the_classification_never_carries_the_url_and_its_token() -> None:
    classified = classify(response_error(hikari.NotFoundError, 404, 10015))
    assert isinstance(classified, DeliveryError)
    assert "SECRET" not in str(classified) and "SECRET" not in repr(classified)
