"""Which Kafka broker a command talks to: ``--bootstrap-servers``, else the environment.

Every command and client of the live edge resolves the broker here the same way. It imports
nothing heavy, because the command line's parser uses it while ``tickwise --help`` runs.
"""

from __future__ import annotations

import argparse
import os

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


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
