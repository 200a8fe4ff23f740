"""`python -m tzurot` runs the bot; `python -m tzurot check-config` prints the configuration."""

from __future__ import annotations

import argparse
import asyncio
import sys

from tzurot.config import ConfigError, Settings, load_settings
from tzurot.infra import RedisServerMissing
from tzurot.logs import configure_logging, get_logger
from tzurot.redaction import redactor


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tzurot", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "check-config"],
        help="run the bot (default) or print the effective configuration with secrets masked",
    )
    return parser


def check_config(settings: Settings) -> int:
    for name, value in settings.masked().items():
        print(f"{name}={value}")  # noqa: T201
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"tzurot: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    if args.command == "check-config":
        return check_config(settings)

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


if __name__ == "__main__":
    sys.exit(main())
