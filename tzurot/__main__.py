"""`python -m tzurot` runs the bot; `python -m tzurot check-config` prints the configuration;
`python -m tzurot chat [personality]` talks to a character in the terminal (no Discord)."""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path
from typing import TextIO

from tzurot.config import Component, ConfigError, Settings, load_settings
from tzurot.infra import RedisServerMissing
from tzurot.logs import configure_logging, get_logger
from tzurot.redaction import redactor


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tzurot", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "check-config", "chat", "prepare-models"],
        help="run the bot (default), print the effective configuration with secrets masked, "
        "chat with a character in the terminal, or fetch and build the local embedding model "
        "into MODELS_DIR (the Dockerfile does, so a container starts with it)",
    )
    chat = parser.add_argument_group("chat [personality]")
    chat.add_argument(
        "personality", nargs="*", help="chat: the character to talk to (asked when left out)"
    )
    chat.add_argument(
        "--user",
        default="terminal",
        help="chat: the user id the conversation, its settings and history belong to "
        "(default: terminal; a Discord user id uses that user's settings)",
    )
    chat.add_argument("--name", default="User", help="chat: what the character calls you")
    chat.add_argument(
        "--log-file",
        type=Path,
        help="chat: write the logs here (default: DATA_DIR/chat.log at a terminal, else stderr)",
    )
    chat.add_argument(
        "--api", action="store_true", help="chat: run the HTTP API as well (API_HOST/API_PORT)"
    )
    return parser


def check_config(settings: Settings) -> int:
    for name, value in settings.masked().items():
        print(f"{name}={value}")  # noqa: T201
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.personality and args.command != "chat":
        print(f"tzurot: unexpected arguments: {' '.join(args.personality)}", file=sys.stderr)  # noqa: T201
        return 2
    overrides = {}
    if args.command == "chat":  # no Discord (and no token needed), no API unless --api
        chat_parts = {Component.WORKER, *([Component.API] if args.api else [])}
        overrides["components"] = frozenset(chat_parts)
    if args.command == "prepare-models":  # at image build time: no token, no Redis
        overrides["components"] = frozenset({Component.WORKER})
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"tzurot: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    if args.command == "check-config":
        return check_config(settings)
    if args.command == "chat":
        return chat(settings, args)
    if args.command == "prepare-models":
        return prepare_models(settings)

    configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets())
    from tzurot.app import run

    try:
        return asyncio.run(run(settings))
    except RedisServerMissing as exc:
        print(f"tzurot: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        get_logger("tzurot").exception("tzurot failed to start")
        print(f"tzurot: failed: {type(exc).__name__}: {redactor.redact(str(exc))}", file=sys.stderr)  # noqa: T201
        return 1


def prepare_models(settings: Settings) -> int:
    from tzurot.memory.local_model import ensure_local_model

    try:
        path = ensure_local_model(settings.models_path)
    except Exception as exc:
        print(f"tzurot: could not prepare the embedding model: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    print(f"local embedding model ready in {path}")  # noqa: T201
    return 0


def chat(settings: Settings, args: argparse.Namespace) -> int:
    """`chat [personality]`: the worker only; logs at WARNING (LOG_LEVEL overrides) to
    --log-file, else DATA_DIR/chat.log for a person at a terminal, else stderr (scripts), so
    the conversation stays readable."""
    from tzurot.terminal import ChatError, check_user_id, clean_line, run_chat, terminal_settings

    try:
        check_user_id(args.user)
    except ChatError as exc:
        print(f"tzurot: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    name = " ".join(clean_line(args.name).split())[:80] or "User"
    chosen = settings.model_fields_set
    level = settings.log_level if "log_level" in chosen else "WARNING"
    fmt = settings.log_format if "log_format" in chosen else "console"
    log_stream: TextIO = sys.stderr
    log_file: Path | None = args.log_file
    if log_file is None and sys.stdin.isatty() and sys.stderr.isatty():
        log_file = settings.data_dir / "chat.log"  # a person is reading: keep the screen clear
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_stream = log_file.open("a", encoding="utf-8")
        except OSError as exc:
            print(f"tzurot: log file: {exc.strerror}: {log_file}", file=sys.stderr)  # noqa: T201
            return 2
        if args.log_file is None:
            print(f"(logs: {log_file})", file=sys.stderr)  # noqa: T201
    configure_logging(level, fmt, secrets=settings.secrets(), stream=log_stream)
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="replace")  # undecodable bytes are not worth a traceback
    try:
        return run_chat(
            terminal_settings(settings, with_api=args.api),
            " ".join(args.personality) or None,
            user_id=args.user,
            user_name=name,
            stdin=sys.stdin,
            stdout=sys.stdout,
            stderr=sys.stderr,
        )
    except RedisServerMissing as exc:
        print(f"tzurot: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        get_logger("tzurot").warning(
            "tzurot chat failed", error=redactor.redact(f"{type(exc).__name__}: {exc}")
        )
        print(f"tzurot: failed: {type(exc).__name__}: {redactor.redact(str(exc))}", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        if log_stream is not sys.stderr:
            log_stream.close()


if __name__ == "__main__":
    sys.exit(main())
