"""tzurot.redaction: every secret shape, real hikari/aiohttp exceptions, and a property test."""

from __future__ import annotations

import http
import io
import json
import logging
import re
import string
import time
from collections import namedtuple
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
import hikari
import pytest
import yarl
from aiohttp import web
from hikari.internal import routes
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from tzurot import logs, redaction
from tzurot.redaction import REDACTED, Redactor, redact

WEBHOOK_ID = 1234567890123456789
WEBHOOK_TOKEN = "Wh0Ok-t0ken_" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OTp" + "Zm9vYmFyYmF6cXV4cXV1eA"
BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
WEBHOOK_URL = f"https://discord.com/api/v10/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"


def masked(text: str, *secrets: str, r: Redactor | None = None) -> str:
    """Redact `text` and assert none of `secrets` survived, in any escaping."""
    out = (r or Redactor()).redact(text)
    for secret in secrets:
        for form in (secret, quote(secret, safe=""), json.dumps(secret)[1:-1]):
            assert form not in out, (text, out)
    return out


# -- registered values --------------------------------------------------------------------------


def test_registered_values_are_masked_raw_and_escaped() -> None:
    secret = 'p@ss/w0rd"with:odd&chars'
    r = Redactor([secret])
    for form in (secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]):
        assert r.redact(f"value={form}!") == f"value={REDACTED}!"
    lowered_hex = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(secret, safe=""))
    assert r.redact(lowered_hex) == REDACTED


def test_runtime_registration_and_forgetting() -> None:
    r = Redactor(["configured-secret"])
    learned = "ZmFrZS13ZWJob29rLXRva2VuLWZyb20tZGlzY29yZA"
    assert learned in r.redact(f"token {learned} in prose")
    r.register(learned, None, "")
    assert r.redact(f"token {learned} in prose") == f"token {REDACTED} in prose"
    r.forget(learned, "configured-secret")  # configuration is never forgotten
    assert learned in r.redact(learned)
    assert r.redact("configured-secret") == REDACTED


def test_runtime_registrations_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redaction, "MAX_RUNTIME_SECRETS", 3)
    r = Redactor(["pinned-secret"])
    r.register("first-one", "second-one", "third-one", "fourth-one")
    assert r.secret_count == 4
    assert r.redact("first-one") == "first-one"
    assert r.redact("fourth-one pinned-secret") == f"{REDACTED} {REDACTED}"


def test_too_short_values_are_not_registered() -> None:
    r = Redactor(["abc", ""])
    assert r.secret_count == 0
    assert r.redact("abc abc") == "abc abc"


def test_module_level_helpers_use_the_shared_instance() -> None:
    redaction.register_secret("shared-runtime-secret-value")
    try:
        assert redact("x shared-runtime-secret-value y") == f"x {REDACTED} y"
        assert logs.redactor is redaction.redactor
    finally:
        redaction.forget_secret("shared-runtime-secret-value")


# -- Discord URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "https://discord.com/api/v10/webhooks/{id}/{token}",
        "https://discordapp.com/api/webhooks/{id}/{token}?wait=true&thread_id=42",
        "https://canary.discord.com/api/v9/webhooks/{id}/{token}/messages/@original",
        "https://ptb.discord.com/api/webhooks/{id}/{token}/github",
        "http://127.0.0.1:41234/api/v10/webhooks/{id}/{token}/messages/987654321",
        "POST /webhooks/{id}/{token}",
        "PATCH /webhooks/{id}/{token}/messages/@original",
        "/webhooks/{id}/{token}",
        "webhooks/{id}/{token}",
        "url='https://discord.com/api/v10/webhooks/{id}/{token}'",
        'URL("https://discord.com/api/v10/webhooks/{id}/{token}")',
        "<https://discord.com/api/webhooks/{id}/{token}>",
        "see https://discord.com/api/webhooks/{id}/{token}.",
        "https://discord.com/api/v10/Webhooks/{id}/{token}",
        "POST /interactions/{id}/{token}/callback",
        "https://discord.com/api/v10/interactions/{id}/{token}/callback?with_response=true",
    ],
)
@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s,
        lambda s: quote(s, safe=""),
        lambda s: quote(quote(s, safe=""), safe=""),
        lambda s: s.replace("/", "\\/"),  # JSON with escaped slashes
        lambda s: quote(s, safe="").lower(),  # lower-case escapes (token lower-cased too)
    ],
    ids=["plain", "percent", "percent-twice", "json-slashes", "lowercase-escapes"],
)
def test_discord_url_tokens_are_masked(template: str, encode: Callable[[str], str]) -> None:
    token = WEBHOOK_TOKEN if "webhooks" in template.lower() else INTERACTION_TOKEN
    text = encode(template.format(id=WEBHOOK_ID, token=token))
    out = masked(text, token, token.lower())
    assert str(WEBHOOK_ID) in out and REDACTED in out


def test_interaction_followup_urls_and_bare_interaction_tokens() -> None:
    app_id = 1100000000000000001
    url = f"https://discord.com/api/v10/webhooks/{app_id}/{INTERACTION_TOKEN}/messages/@original"
    out = masked(url, INTERACTION_TOKEN)
    assert out == f"https://discord.com/api/v10/webhooks/{app_id}/{REDACTED}/messages/@original"
    # The token by itself (a payload, a dataclass repr): recognised by its shape.
    assert masked(f"token {INTERACTION_TOKEN} x", INTERACTION_TOKEN) == f"token {REDACTED} x"


def test_hikari_bucket_keys_holding_a_webhook_token() -> None:
    line = (
        f"POST /webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN} is being mapped to existing bucket "
        f"abcd1234;-8734523452;{WEBHOOK_ID}:{WEBHOOK_TOKEN}"
    )
    out = masked(line, WEBHOOK_TOKEN)
    assert out.endswith(f";{WEBHOOK_ID}:{REDACTED}")


def test_route_templates_and_ids_are_left_alone() -> None:
    for text in (
        "POST /webhooks/{webhook}/{token}",
        "rate limited on a user sub bucket on bucket emu1f (reason: 'x') to 'POST /webhooks/1'",
        f"GET /channels/{WEBHOOK_ID}/webhooks",
        f"DELETE /webhooks/{WEBHOOK_ID}",
    ):
        assert Redactor().redact(text) == text


# -- credentials by shape ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (f"token {BOT_TOKEN}", BOT_TOKEN, "token "),
        (f"Authorization: Bot {BOT_TOKEN}", BOT_TOKEN, "Authorization: Bot "),
        (f"{{'Authorization': 'Bot {BOT_TOKEN}'}}", BOT_TOKEN, "'Authorization': 'Bot "),
        ('{"authorization": "Bearer abc.def-ghi_jkl"}', "abc.def-ghi_jkl", '"authorization": '),
        ("Proxy-Authorization=Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA", "Basic "),
        ("Authorization: some-opaque-credential", "some-opaque-credential", "Authorization: "),
        ("bearer eyJhbGciOiJIUzI1NiJ9xyz", "eyJhbGciOiJIUzI1NiJ9xyz", "bearer "),
        ("mfa.abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz0123", ""),
        (
            "jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            "jwt ",
        ),
    ],
)
def test_discord_tokens_and_authorization(text: str, secret: str, kept: str) -> None:
    out = masked(text, secret)
    assert kept in out and REDACTED in out


@pytest.mark.parametrize(
    "key",
    [
        "sk-" + "a1B2" * 8,
        "sk-proj-" + "Ab3_" * 10,
        "sk-ant-api03-" + "x9Y8" * 10,
        "sk-or-v1-" + "0f" * 32,
        "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
        "gsk_" + "q" * 20 + "1234",
        "xai-" + "Zz9" * 10,
        "hf_" + "AbCdEfGhIjKlMnOpQrStUv",
        "r8_" + "0123456789abcdefghij",
        "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnop",
        "glpat-" + "xxxxxxxxxxxxxxxxxxxx",
        "xoxb-" + "123456789012-abcdefghijkl",
        "pplx-" + "abcdefabcdefabcdefabcdef",
        "nvapi-" + "abcdefabcdefabcdefabcdef",
        "AIza" + "SyA1234567890abcdefghijklmnopqrstu",
        "AKIAIOSFODNN7EXAMPLE",
    ],
)
def test_provider_api_keys(key: str) -> None:
    for text in (key, f"key={key}", f"'{key}'", f"Incorrect API key provided: {key}."):
        assert REDACTED in masked(text, key)


@pytest.mark.parametrize(
    ("url", "password", "shown"),
    [
        ("redis://:hunter2secret@127.0.0.1:6379/0", "hunter2secret", "redis://:"),
        ("rediss://default:s3cr3t-pw@cache.example:6380", "s3cr3t-pw", "rediss://default:"),
        ("postgres://app:pa55w0rd@db/app", "pa55w0rd", "postgres://app:"),
        ("Error connecting to redis://user:topsecret@h:1.", "topsecret", "@h:1."),
    ],
)
def test_passwords_inside_urls(url: str, password: str, shown: str) -> None:
    out = masked(url, password)
    assert shown in out


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Target(kind='interaction', interaction_token='abcdef123456')", "abcdef123456"),
        ('{"token": "abcdef123456", "max_tokens": 100}', "abcdef123456"),
        ('{\\"api_key\\": \\"abcdef123456\\"}', "abcdef123456"),
        ("password=hunter22 next", "hunter22"),
        ("X-Api-Key: 0123abcd0123abcd", "0123abcd0123abcd"),
        ("client_secret: abcdef123456", "abcdef123456"),
        ("JOB_SIGNING_KEY=abcdef123456", "abcdef123456"),
        ("GET /x?key=abcdef123456&sig=abcdef654321", "abcdef123456"),
        ("GET /oauth?code=abcdef123456", "abcdef123456"),
    ],
)
def test_secret_pairs(text: str, secret: str) -> None:
    assert REDACTED in masked(text, secret)


@pytest.mark.parametrize(
    "text",
    [
        "reply delivered kind=channel job_id=llm-r-abc123 channel_id=123456789012345678",
        '{"prompt_tokens": 1234, "completion_tokens": 56, "max_tokens": 1000}',
        "2024-01-01T12:34:56.123456Z tzurot.discord.delivery.sender",
        "Received status 500 on request, backing off for 1.23s and retrying. Retries remaining: 2",
        "token count exceeded; tokenizer=cl100k_base",
        "task-scheduler finished; desk-1234567890123 disk ok",
        "redis key tzurot:results:llm-r-abc stream entry 1700000000000-0",
        "https://example.org/lilith.png and http://127.0.0.1:8080/health",
        "",
    ],
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert Redactor(["unrelated-secret"]).redact(text) == text


def test_redaction_is_idempotent() -> None:
    r = Redactor(["hunter2secret"])
    text = (
        f"{WEBHOOK_URL} Authorization: Bot {BOT_TOKEN} redis://:hunter2secret@h "
        f"token={INTERACTION_TOKEN} sk-or-v1-{'ab' * 20} {WEBHOOK_ID}:{WEBHOOK_TOKEN}"
    )
    once = r.redact(text)
    assert r.redact(once) == once
    assert "Bot [redacted]" in once and f"{REDACTED} {REDACTED}" not in once.split("Bot")[1][:30]


def test_no_quadratic_blowup_on_long_runs() -> None:
    r = Redactor(["some-secret"])
    blobs = ["A" * 200_000, ("a." * 100_000), ("1" * 30 + ":") * 5_000, "webhooks/1/" * 20_000]
    started = time.perf_counter()
    for blob in blobs:
        r.redact(blob)
    assert time.perf_counter() - started < 5.0


def test_cheap_on_ordinary_lines() -> None:
    r = Redactor(["test-api-token-0123456789abcdef", "sk-test-0123456789abcdefghijklmnop"])
    line = (
        '{"event": "reply delivered", "kind": "channel", "job_id": "llm-r-abc123", '
        '"channel_id": "123456789012345678", "logger": "tzurot.discord.delivery"}'
    )
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        r.redact(line)
    per_line = (time.perf_counter() - started) / rounds
    assert per_line < 500e-6, f"{per_line * 1e6:.1f} µs per line"


# -- structures and exceptions ----------------------------------------------------------------


def test_nested_values() -> None:
    r = Redactor(["nested-secret-value"])
    Pair = namedtuple("Pair", "a b")
    value: dict[str, Any] = {
        "headers": {"Authorization": f"Bot {BOT_TOKEN}", "User-Agent": "hikari"},
        "urls": [WEBHOOK_URL, ("x", "nested-secret-value")],
        "token": "opaque-but-named",
        "api_key": b"bytes-key-value",
        "count": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "set": {"nested-secret-value"},
        "pair": Pair("nested-secret-value", 1),
        "error": RuntimeError(f"failed for {WEBHOOK_URL}"),
        "url": yarl.URL(WEBHOOK_URL),
        "prompt_tokens": 10,
        7: "nested-secret-value",
    }
    out = r.redact_value(value)
    text = json.dumps(out, default=str)
    for secret in (BOT_TOKEN, WEBHOOK_TOKEN, "nested-secret-value", "opaque-but", "bytes-key"):
        assert secret not in text
    assert out["count"] == 3 and out["ratio"] == 0.5 and out["ok"] is True and out["none"] is None
    assert out["prompt_tokens"] == 10 and out["headers"]["User-Agent"] == "hikari"
    assert out["token"] == REDACTED and out["api_key"] == REDACTED
    assert isinstance(out["urls"][1], tuple)
    assert out["error"].startswith("RuntimeError(")


def test_deeply_nested_values_stop_at_a_depth() -> None:
    deep: Any = WEBHOOK_URL
    for _ in range(50):
        deep = [deep]
    assert WEBHOOK_TOKEN not in str(Redactor().redact_value(deep))


def test_objects_that_cannot_be_printed_do_not_break_redaction() -> None:
    class Hostile(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

        def __repr__(self) -> str:
            raise RuntimeError("no")

    r = Redactor()
    assert r.redact_value({"x": Hostile()}) == {"x": "<unrepresentable Hostile>"}
    assert r.describe(Hostile()) == "Hostile: (unprintable)"


def _webhook_route() -> routes.CompiledRoute:
    return routes.POST_WEBHOOK_WITH_TOKEN.compile(webhook=WEBHOOK_ID, token=WEBHOOK_TOKEN)


def _hikari_errors() -> list[hikari.HTTPError]:
    """hikari's errors built the way hikari.internal.net.generate_error_response builds them:
    (str(response.real_url), headers, raw_body, message, code)."""
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
    body = b'{"message": "Unknown Webhook", "code": 10015}'
    return [
        hikari.NotFoundError(WEBHOOK_URL, headers, body, "Unknown Webhook", 10015),
        hikari.ForbiddenError(
            WEBHOOK_URL, headers, b'{"code": 50013}', "Missing Permissions", 50013
        ),
        hikari.InternalServerError(
            WEBHOOK_URL, http.HTTPStatus.INTERNAL_SERVER_ERROR, headers, b"500: Internal Error"
        ),
        hikari.RateLimitTooLongError(
            route=_webhook_route(),
            is_global=False,
            retry_after=12.5,
            max_retry_after=1.0,
            reset_at=time.time() + 12.5,
            limit=5,
            period=2.0,
        ),
    ]


@pytest.mark.parametrize("error", _hikari_errors(), ids=lambda e: type(e).__name__)
def test_hikari_exceptions_str_repr_and_traceback(error: hikari.HTTPError) -> None:
    assert WEBHOOK_TOKEN in str(error) or WEBHOOK_TOKEN in repr(error)  # the problem itself
    r = Redactor()
    assert WEBHOOK_TOKEN not in r.redact(str(error))
    assert WEBHOOK_TOKEN not in r.redact(repr(error))
    assert WEBHOOK_TOKEN not in r.describe(error)
    assert str(WEBHOOK_ID) in r.redact(str(error))
    try:
        try:
            raise error
        except hikari.HTTPError as inner:
            raise RuntimeError("delivery failed") from inner
    except RuntimeError as outer:
        rendered = r.format_exception(outer)
    assert type(error).__name__ in rendered and "delivery failed" in rendered
    assert WEBHOOK_TOKEN not in rendered


@pytest.mark.parametrize("fmt", ["json", "console"])
@pytest.mark.parametrize("error", _hikari_errors(), ids=lambda e: type(e).__name__)
def test_hikari_exceptions_logged_with_tracebacks(fmt: str, error: hikari.HTTPError) -> None:
    stream = io.StringIO()
    logs.configure_logging("DEBUG", fmt, stream=stream)
    log = logs.get_logger("tzurot.test")
    try:
        raise error
    except hikari.HTTPError as exc:
        log.exception("send failed", error=exc, url=WEBHOOK_URL)
        logging.getLogger("hikari.rest").error("request to %s failed", WEBHOOK_URL, exc_info=True)
        logging.getLogger("lightbulb").warning("failed: %r", exc, exc_info=exc)
    logging.getLogger("hikari.ratelimits").debug(
        "%s is being mapped to new bucket %s",
        _webhook_route(),
        f"UNKNOWN;-42;{_webhook_route().major_param_hash}",
    )
    output = stream.getvalue()
    assert WEBHOOK_TOKEN not in output
    assert output.count("Traceback (most recent call last)") == 3, output
    assert type(error).__name__ in output and f"webhooks/{WEBHOOK_ID}/{REDACTED}" in output


async def test_real_hikari_rest_errors_from_a_server() -> None:
    """hikari's own REST client against a local server answering like Discord refusing."""
    answers: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
        "404": (404, {"message": "Unknown Webhook", "code": 10015}, {}),
        "403": (403, {"message": "Missing Permissions", "code": 50013}, {}),
        "500": (500, {"message": "500: Internal Server Error", "code": 0}, {}),
        "429": (
            429,
            {"message": "You are being rate limited.", "retry_after": 30.0, "global": False},
            {"X-RateLimit-Scope": "shared", "Retry-After": "30"},
        ),
    }
    order = iter(answers)

    async def refuse(_request: web.Request) -> web.Response:
        status, body, headers = answers[next(order)]
        return web.json_response(body, status=status, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/api/v10/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rest_app = hikari.RESTApp(
        url=f"http://127.0.0.1:{port}/api/v10", max_retries=0, max_rate_limit=1.0
    )
    errors: list[Exception] = []
    try:
        await rest_app.start()
        async with rest_app.acquire(None) as rest:
            for _ in answers:
                try:
                    await rest.execute_webhook(WEBHOOK_ID, WEBHOOK_TOKEN, "hello")
                except hikari.HTTPError as exc:
                    errors.append(exc)
    finally:
        await rest_app.close()
        await runner.cleanup()
    assert [type(e) for e in errors] == [
        hikari.NotFoundError,
        hikari.ForbiddenError,
        hikari.InternalServerError,
        hikari.RateLimitTooLongError,
    ]
    r = Redactor()
    for exc in errors:
        text = "\n".join((str(exc), repr(exc), r.format_exception(exc)))
        assert WEBHOOK_TOKEN in str(exc) + repr(exc)
        assert WEBHOOK_TOKEN not in r.redact(text)


def test_aiohttp_client_response_error_repr() -> None:
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bot {BOT_TOKEN}"}))
    info = aiohttp.RequestInfo(yarl.URL(WEBHOOK_URL), "POST", headers, yarl.URL(WEBHOOK_URL))
    error = aiohttp.ClientResponseError(info, (), status=404, message="Not Found")
    r = Redactor()
    for text in (str(error), repr(error), repr(info), r.format_exception(error)):
        out = r.redact(text)
        assert WEBHOOK_TOKEN not in out and BOT_TOKEN not in out


def test_structlog_processor_masks_every_value() -> None:
    r = Redactor(["processor-secret"])
    out = r(None, "info", {"event": "x processor-secret", "token": "t0ken-value", "n": 1})
    assert out == {"event": f"x {REDACTED}", "token": REDACTED, "n": 1}


# -- property tests ---------------------------------------------------------------------------

_TOKEN_CHARS = string.ascii_letters + string.digits + "-_"
_URLS = [
    "https://discord.com/api/v10/webhooks/{id}/{token}",
    "https://discordapp.com/api/webhooks/{id}/{token}?wait=true",
    "https://canary.discord.com/api/v9/webhooks/{id}/{token}/messages/@original",
    "http://127.0.0.1:9999/api/v10/interactions/{id}/{token}/callback",
    "POST /webhooks/{id}/{token}",
    "DELETE /webhooks/{id}/{token}/messages/{id}",
    "/webhooks/{id}/{token}/github",
    "webhooks/{id}/{token}",
]
_ENCODINGS: list[Callable[[str], str]] = [
    lambda s: s,
    lambda s: quote(s, safe=""),
    lambda s: quote(quote(s, safe=""), safe=""),
    lambda s: json.dumps(s).replace("/", "\\/"),
    repr,
]


@settings(max_examples=400, deadline=None)
@given(
    token=st.text(_TOKEN_CHARS, min_size=20, max_size=90),
    snowflake=st.integers(min_value=10**15, max_value=2**63 - 1),
    url=st.sampled_from(_URLS),
    encode=st.sampled_from(_ENCODINGS),
    before=st.sampled_from(["", "failed: ", "'", '"', "(", "url=", "Not Found 404: 'x' for "]),
    after=st.sampled_from(["", " for x", "'", '"', ".", ")", ",", "\n  next line", "?x=1"]),
)
def test_random_tokens_in_urls_are_always_masked(
    token: str,
    snowflake: int,
    url: str,
    encode: Callable[[str], str],
    before: str,
    after: str,
) -> None:
    text = before + encode(url.format(id=snowflake, token=token)) + after
    out = redaction.redactor.redact(text)
    assert token not in out
    assert quote(token, safe="") not in out
    assert str(snowflake) in out


@settings(max_examples=200, deadline=None)
@given(
    token=st.text(_TOKEN_CHARS, min_size=16, max_size=90),
    snowflake=st.integers(min_value=10**15, max_value=10**20),
    prefix=st.sampled_from(["", "abc;-123;", "bucket "]),
)
def test_random_tokens_in_bucket_keys_are_always_masked(
    token: str, snowflake: int, prefix: str
) -> None:
    out = Redactor().redact(f"{prefix}{snowflake}:{token}")
    assert token not in out and f"{snowflake}:{REDACTED}" in out


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(
        st.characters(codec="ascii", exclude_characters="[]", exclude_categories=("Cc",)),
        min_size=8,
        max_size=40,
    ),
    before=st.text(string.printable, max_size=20),
    after=st.text(string.printable, max_size=20),
)
def test_registered_secrets_never_survive(secret: str, before: str, after: str) -> None:
    r = Redactor([secret])
    for form in (secret, quote(secret, safe=""), json.dumps(secret)[1:-1]):
        out = r.redact(before + form + after)
        assert secret not in out
        assert quote(secret, safe="") not in out
