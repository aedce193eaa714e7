"""The ``tickwise`` command line: one entry point, one sub-command per module.

Each command module exposes ``register(subparsers)`` and sets ``func`` on its parser, so the
commands stay next to the code they drive and this file only assembles them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

# Modules that contribute sub-commands, in the order `--help` lists them.
COMMAND_MODULES = (
    "streams.live.broker",
    "streams.live.admin",
    "streams.live.feed",
    "streams.live.worker",
    "streams.live.demo",
    "replay.backtest",
    "replay.kafka_replay",
    "schemas.generate",
    "streams.live.quarantine",
    "streams.live.status",
    "streams.live.control",
    "streams.auditstore",
    "streams.model_cli",
    "streams.live.security_cli",
    "streams.console.server",
)


def bootstrap_servers() -> str:
    """Return the broker address from ``KAFKA_BOOTSTRAP_SERVERS`` or the local default."""
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP


def add_bootstrap_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--bootstrap-servers``; every command that talks to Kafka takes it the same way."""
    parser.add_argument(
        "--bootstrap-servers",
        default=None,
        help=f"Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or {DEFAULT_BOOTSTRAP})",
    )


def resolve_bootstrap(args: argparse.Namespace) -> str:
    """Pick the broker: the flag first, then the environment, then the local default."""
    return getattr(args, "bootstrap_servers", None) or bootstrap_servers()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tickwise",
        description="Online ML models in live trading infrastructure, under control.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


# Two-word spellings of commands that live in another module's parser.
ALIASES = {("audit", "replay-check"): ["replay-check"]}


def main(argv: list[str] | None = None) -> int:
    """Run one ``tickwise`` sub-command and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    alias = ALIASES.get(tuple(argv[:2]))  # type: ignore[call-overload]
    if alias is not None:
        argv = alias + argv[2:]
    args = build_parser().parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
