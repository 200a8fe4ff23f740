"""Logs: JSON with correlation ids, library logs in the same pipeline, secrets never shown."""

from __future__ import annotations

import io
import json
import logging

import structlog

from tzurot.logs import configure_logging, get_logger, log_context

SECRET = "discord-bot-token-DO-NOT-LEAK-1234567890"


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_records_carry_correlation_ids_from_context() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    log = get_logger("tzurot.test")

    with log_context(request_id="r-1", job_id="llm-r-1", personality="lilith"):
        log.info("inside")
        logging.getLogger("saq").info("library record %s", "formatted")
    log.info("outside")

    inside, library, outside = records(stream)
    assert inside["request_id"] == "r-1" and inside["job_id"] == "llm-r-1"
    assert inside["personality"] == "lilith"
    assert library["event"] == "library record formatted"
    assert library["job_id"] == "llm-r-1" and library["logger"] == "saq"
    assert "request_id" not in outside
    structlog.contextvars.clear_contextvars()


def test_secrets_never_reach_the_logs() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", secrets=[SECRET], stream=stream)
    log = get_logger("tzurot.test")

    log.info("connecting", token=SECRET, headers={"Authorization": f"Bot {SECRET}"})
    logging.getLogger("hikari").warning("token was %s", SECRET)
    try:
        raise RuntimeError(f"bad token {SECRET}")
    except RuntimeError:
        log.exception("failed")
    log.info("provider key", key="sk-or-v1-abcdefabcdefabcdefabcdef")
    log.info("redis", url="redis://user:hunter2secret@127.0.0.1:6379/0")

    output = stream.getvalue()
    assert SECRET not in output
    assert "sk-or-v1-abcdef" not in output
    assert "hunter2secret" not in output
    assert output.count("[redacted]") >= 5
    assert [r["event"] for r in records(stream)][-1] == "redis", output
    assert len(records(stream)) == 5, output


def test_console_format_for_development() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "console", secrets=[SECRET], stream=stream)
    get_logger("tzurot.test").info("hello", token=SECRET)
    text = stream.getvalue()
    assert "hello" in text and SECRET not in text
    assert not text.lstrip().startswith("{")
