"""Logs: JSON with correlation ids, library logs in the same pipeline, secrets never shown."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
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
        logging.getLogger("saq").warning("library record %s", "formatted")
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


def test_console_tracebacks_and_library_records_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "console", secrets=[SECRET], stream=stream)
    url = "https://discord.com/api/v10/webhooks/123456789012345678/webhook-token-abcdefghijklmn"
    try:
        raise RuntimeError(f"bad token {SECRET} for {url}")
    except RuntimeError:
        get_logger("tzurot.test").exception("failed")
        logging.getLogger("hikari.rest").error("failed %s %r", url, (SECRET,), exc_info=True)
    text = stream.getvalue()
    assert SECRET not in text and "webhook-token-abcdefghijklmn" not in text
    assert text.count("Traceback (most recent call last)") == 2, text
    assert "RuntimeError: bad token [redacted] for" in text


def test_a_record_that_cannot_be_formatted_does_not_print_its_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", secrets=[SECRET], stream=stream)
    logging.getLogger("saq").warning("needs a number: %d", SECRET)
    err = capsys.readouterr().err
    assert SECRET not in err + stream.getvalue()
    assert "logging error in saq" in err


def test_uncaught_exceptions_and_warnings_go_through_the_pipeline() -> None:
    script = textwrap.dedent(
        f"""
        import threading, warnings
        from tzurot.logs import configure_logging
        configure_logging("INFO", "json", secrets=[{SECRET!r}])

        def work():
            raise RuntimeError("thread saw {SECRET}")

        thread = threading.Thread(target=work, name="worker-1")
        thread.start()
        thread.join()
        warnings.warn("warning about {SECRET}")
        raise SystemError("main saw {SECRET}")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert SECRET not in output
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert "uncaught exception in thread worker-1" in events, output
    assert "uncaught exception" in events, output
    assert any("warning about [redacted]" in event for event in events), output
    assert all("[redacted]" in line.get("exception", "[redacted]") for line in lines), output
