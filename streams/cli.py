"""The ``tickwise`` command line: one entry point, and every sub-command's arguments.

The parser is built without importing any implementation: each command names the function that
carries it out as ``"module:function"``, imported only when that command runs. The implementations
load river, numpy, pydantic and the Kafka clients, which takes seconds; ``tickwise --help`` and
``tickwise <command> --help`` need none of it. Keep this module, and what it imports while
building the parser, free of those imports (``tests/unit/test_cli_startup.py`` holds it).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from tickwise.streams.live.bootstrap import add_bootstrap_argument
from tickwise.streams.progress import add_progress_argument

# Libraries building the parser (``tickwise --help``) must never load: each costs tenths of a
# second; tests/unit/test_cli_startup.py holds it and benchmarks/startup.py reports on it.
HEAVY_LIBRARIES = (
    "aiohttp",
    "confluent_kafka",
    "faust",
    "numba",
    "numpy",
    "pandas",
    "pyarrow",
    "pydantic",
    "river",
    "scipy",
    "sklearn",
)

Handler = Callable[[argparse.Namespace], "int | None"]
Subparsers = argparse._SubParsersAction


class _DeprecatedAlias(argparse.Action):
    """Store like the option it stands for, after a warning on stderr naming that option."""

    def __init__(self, *args: object, instead: str, **kwargs: object) -> None:
        self.instead = instead
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(
            f"tickwise: warning: {option_string} is deprecated; use {self.instead}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_topic_prefix_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """Add ``--topic-prefix`` (and ``--prefix``, its deprecated spelling, hidden from help)."""
    parser.add_argument("--topic-prefix", default="", help=help)
    parser.add_argument(
        "--prefix",
        dest="topic_prefix",
        action=_DeprecatedAlias,
        instead="--topic-prefix",
        help=argparse.SUPPRESS,
    )


class LazyHandler:
    """A command's handler named ``"module:function"``, imported when the command runs."""

    __slots__ = ("target",)

    def __init__(self, target: str) -> None:
        self.target = target

    def resolve(self) -> Handler:
        """Import the handler's module and return the function."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]

    def __call__(self, args: argparse.Namespace) -> int | None:
        return self.resolve()(args)

    def __repr__(self) -> str:
        return f"LazyHandler({self.target!r})"


def _broker(subparsers: Subparsers) -> None:
    from tickwise.streams.live.broker import DEFAULT_HEAP, DEFAULT_PORT, default_data_dir

    parser = subparsers.add_parser(
        "broker",
        help="run a local Apache Kafka broker (KRaft, no Docker)",
        description=(
            "Run one Apache Kafka node (broker and controller) on 127.0.0.1 from jars that Maven "
            "fetches once into the user cache. Needs Java 17 and Maven."
        ),
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="client port (9092)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"where the broker keeps its files (default: {default_data_dir()})",
    )
    parser.add_argument(
        "--heap", default=DEFAULT_HEAP, help="maximum JVM heap, e.g. 1g; the minimum is 512m"
    )
    parser.add_argument(
        "--timeout", type=float, default=90.0, help="seconds to wait for the broker to answer"
    )
    parser.add_argument(
        "--secure",
        action="store_true",
        help="SASL/SCRAM-SHA-512 and ACLs, one principal per role (streams/live/security.py)",
    )
    parser.set_defaults(func=LazyHandler("tickwise.streams.live.broker:run_cli"))


def _topics(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("topics", help="create or list the topic catalogue")
    parser.add_argument("action", choices=["create", "list"])
    add_topic_prefix_argument(parser, "deployment prefix before every topic name")
    parser.add_argument(
        "--partitions", type=int, default=None, help="override the catalogue's partition counts"
    )
    add_bootstrap_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.streams.live.admin:run_cli"))


def _feed(subparsers: Subparsers) -> None:
    from tickwise.streams.sources import add_source_arguments

    parser = subparsers.add_parser("feed", help="publish a file or a synthetic stream to ticks.raw")
    parser.add_argument("--file", nargs="+", default=None, help="CSV, JSON Lines or Parquet files")
    parser.add_argument("--rate", type=float, default=0.0, help="ticks/s; 0 = as fast as possible")
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="a multiple of the recorded pace (used when --rate is 0)",
    )
    add_topic_prefix_argument(parser, "topic prefix of the deployment")
    add_source_arguments(parser)
    add_bootstrap_argument(parser)
    add_progress_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.streams.live.feed:run_cli"))


def _worker(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("worker", help="run the live pipeline (Kafka transactions)")
    parser.add_argument("--config", default=None, help="TOML config (shared with backtest)")
    parser.add_argument("--topic-prefix", default=None, help="override the config's topic prefix")
    parser.add_argument("--app-id", default=None, help="override the config's app id (group id)")
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        help='keep checkpoints in this directory (live.checkpoint_store = "dir"), '
        "not in the checkpoint topic",
    )
    parser.add_argument("--loglevel", default="WARNING")
    add_metrics_arguments(parser)
    add_bootstrap_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.streams.live.worker:run_cli"))


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    """``--metrics-port`` and ``--metrics-addr``, alike for every process that serves /metrics."""
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port"
    )
    parser.add_argument(
        "--metrics-addr", default="127.0.0.1", help="address /metrics listens on (0.0.0.0: all)"
    )


def _demo(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run broker, worker and feed end to end, briefly")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long the feed runs")
    parser.add_argument("--rate", type=float, default=600.0, help="synthetic ticks per second")
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=120.0,
        help="seconds the worker may take to catch up after the feed ends",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--kill-after",
        type=int,
        default=4000,
        help="pull the global kill switch after this many clean ticks (0: never)",
    )
    parser.add_argument("--bad-rate", type=float, default=0.01, help="share of bad ticks")
    parser.add_argument(
        "--console-port", type=int, default=8321, help="serve the web console here (0: none)"
    )
    parser.add_argument(
        "--hold", type=float, default=0.0, help="keep worker and console this many s at the end"
    )
    add_bootstrap_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.streams.demo:run_cli"))


def _backtest(subparsers: Subparsers) -> None:
    from tickwise.streams.sources import add_source_arguments

    parser = subparsers.add_parser("backtest", help="run the pipeline in-process over files")
    parser.add_argument("--data", nargs="+", default=None, help="CSV, JSON Lines or Parquet files")
    parser.add_argument("--config", default=None, help="TOML config (shared with the worker)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--controls", default=None, help="JSONL of control commands, or a live audit.jsonl"
    )
    add_source_arguments(parser)
    report = parser.add_argument_group("report")
    report.add_argument(
        "--returns-period", default="1min", help="pandas offset alias for Sharpe/Sortino returns"
    )
    report.add_argument(
        "--periods-per-year",
        type=float,
        default=None,
        help="annualisation factor (default: the trading periods of --calendar's year)",
    )
    report.add_argument(
        "--calendar",
        default="24x7",
        help="trading calendar that annualises: 24x7 (default: 365.25 days of 24 h), "
        "cme_equity (23 h x 252 days), us_equity (6.5 h x 252), fx (24 h x 260), or HOURSxDAYS",
    )
    report.add_argument(
        "--walk-forward", default="1D", help="segment length reported separately ('' for none)"
    )
    report.add_argument(
        "--warmup",
        default=None,
        help="event time from the first tick in which nothing trades, e.g. 2h (a kill switch)",
    )
    report.add_argument("--baseline-seed", type=int, default=0, help="seed of the random baseline")
    add_progress_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.replay.command:run_cli"))


def _replay(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "replay", help="republish a recorded time range of a topic under another prefix"
    )
    parser.add_argument("--topic", default="ticks.clean", help="catalogue name, e.g. ticks.raw")
    parser.add_argument(
        "--from", dest="from_", metavar="T", required=True, help="ISO-8601 or epoch ms"
    )
    parser.add_argument("--to", metavar="T", required=True, help="ISO-8601 or epoch ms (exclusive)")
    parser.add_argument("--speed", type=float, default=0.0, help="x recorded pace; 0: at once")
    add_topic_prefix_argument(parser, "prefix of the recorded (source) topics")
    parser.add_argument(
        "--to-prefix", default="replay.", help="prefix of the namespace to republish into"
    )
    add_bootstrap_argument(parser)
    add_progress_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.replay.kafka_replay:run_replay_cli"))

    check = subparsers.add_parser(
        "replay-check", help="re-derive a live period's decisions and compare with the audit"
    )
    check.add_argument(
        "--from", dest="from_", metavar="T", required=True, help="ISO-8601 or epoch ms"
    )
    check.add_argument("--to", metavar="T", required=True, help="ISO-8601 or epoch ms (exclusive)")
    check.add_argument(
        "--warm-from",
        default=None,
        help="replay input from here to rebuild state (default: oldest retained record)",
    )
    add_topic_prefix_argument(check, "topic prefix of the live deployment")
    check.add_argument("--config", default=None, help="the TOML config the worker ran with")
    add_bootstrap_argument(check)
    add_progress_argument(check)
    check.set_defaults(func=LazyHandler("tickwise.replay.kafka_replay:run_check_cli"))


def _schemas(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("schemas", help="generate or check the JSON Schema files")
    parser.add_argument("action", choices=["generate", "check"])
    parser.set_defaults(func=LazyHandler("tickwise.schemas.generate:run_cli"))


def _quarantine(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "quarantine", help="count, inspect and re-inject quarantined messages"
    )
    parser.add_argument("action", choices=("stats", "show", "replay"))
    parser.add_argument("--reason", nargs="+", default=None, help="only these reason codes")
    parser.add_argument("--instrument", nargs="+", default=None, help="only these instruments")
    parser.add_argument("--since", default=None, help="quarantined at or after (ISO 8601 or ms)")
    parser.add_argument("--until", default=None, help="quarantined before (ISO 8601 or ms)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many records")
    parser.add_argument("--json", action="store_true", help="show: one JSON record per line")
    parser.add_argument("--dry-run", action="store_true", help="replay: count, do not publish")
    parser.add_argument("--idle", type=float, default=3.0, help="stop reading after idle s")
    add_topic_prefix_argument(parser, "topic prefix of the deployment")
    add_bootstrap_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.streams.live.quarantine:run_cli"))


def _status(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("status", help="data-quality figures per instrument")
    add_topic_prefix_argument(parser, "topic prefix of the deployment")
    parser.add_argument("--gap-s", type=float, default=60.0, help="event-time gap worth counting")
    parser.add_argument("--idle", type=float, default=3.0, help="stop reading after idle s")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_bootstrap_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.streams.live.status:run_cli"))


def _kill_switch(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("kill-switch", help="halt or resume trading (control topic)")
    parser.add_argument("state", choices=["on", "off"])
    parser.add_argument("--scope", required=True, help="'global' or an instrument")
    parser.add_argument("--reason", required=True, help="why; kept in the audit trail")
    parser.add_argument("--operator", default=None, help="who (default: the login name)")
    parser.add_argument(
        "--effective-ts-event-ns",
        type=int,
        default=None,
        help="apply from this event time (replayable); default: at once on every worker",
    )
    add_topic_prefix_argument(parser, "topic prefix of the deployment")
    add_bootstrap_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.streams.live.control:run_cli"))


def _audit(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("audit", help="show, verify, export the audit store; sink")
    parser.add_argument("action", choices=["show", "verify", "export", "sink"])
    parser.add_argument(
        "--store", default="sqlite:///audit.db", help="sqlite:///PATH or postgresql://..."
    )
    parser.add_argument("--start-ns", type=int, default=None, help="event time from (inclusive)")
    parser.add_argument("--end-ns", type=int, default=None, help="event time to (exclusive)")
    parser.add_argument("--instrument", default=None)
    parser.add_argument("--model", default=None, help="model id")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="show: print each record's JSON")
    parser.add_argument("--out", default="audit.csv", help="export: file (.csv or .parquet)")
    parser.add_argument("--format", choices=["csv", "parquet"], default=None)
    add_topic_prefix_argument(parser, "sink: topic prefix of the deployment")
    parser.add_argument("--from-file", default=None, help="sink: load an audit.jsonl instead")
    parser.add_argument("--idle-exit", type=float, default=None, help="sink: stop when idle (s)")
    add_bootstrap_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.streams.audit.cli:run_cli"))


def _model(subparsers: Subparsers) -> None:
    from tickwise.streams.model_cli import register

    register(subparsers)


def _security(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "security",
        help="secure profile: generate passwords; apply logins, topics and ACLs to a broker",
        description=(
            "secrets: write random passwords for admin, every role and the worker to DIR "
            "(credentials.json and one <principal>.json each), and the workers' checkpoint "
            "signing key (checkpoint.key). apply: as the admin login from "
            "TICKWISE_SASL_USERNAME/_PASSWORD (or TICKWISE_CREDENTIALS_FILE), create or update "
            "every role's SCRAM-SHA-512 login, the catalogue topics and the ACLs of ROLE_ACCESS."
        ),
    )
    parser.add_argument("action", choices=("secrets", "apply"))
    parser.add_argument("--dir", type=Path, default=Path("secrets"), help="secrets: where to")
    parser.add_argument(
        "--credentials",
        default=None,
        help="apply: JSON principal -> password (default: $TICKWISE_CREDENTIALS_FILE)",
    )
    add_topic_prefix_argument(parser, "apply: topic prefix of the deployment")
    parser.add_argument("--app-id", default="tickwise", help="apply: the worker's faust app id")
    add_bootstrap_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.streams.live.security_cli:run_cli"))


def _add_doors(parser: argparse._ActionsContainer, host: str) -> None:
    """Where a web server may listen, its TLS and its users (the console's and the views')."""
    parser.add_argument(
        host, default="127.0.0.1", help="address to listen on (off loopback: TLS or --insecure)"
    )
    parser.add_argument("--tls-cert", default=None, help="PEM certificate (chain): serve HTTPS")
    parser.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain HTTP on a non-loopback address (only behind a TLS-terminating proxy)",
    )
    parser.add_argument(
        "--users",
        default=None,
        help="TOML users file ([users.<name>] role, token or token_sha256); "
        "else $TICKWISE_CONSOLE_USERS_FILE or $TICKWISE_CONSOLE_USERS (name:role:token,...)",
    )


def _console(subparsers: Subparsers) -> None:
    from tickwise.streams.registry import DEFAULT_ROOT

    parser = subparsers.add_parser("console", help="serve the trader and operator web console")
    parser.add_argument("--config", default=None, help="TOML config (topic prefix, P&L basis)")
    parser.add_argument("--topic-prefix", default=None, help="override the config's topic prefix")
    parser.add_argument("--port", type=int, default=8321)
    _add_doors(parser, "--host")
    parser.add_argument("--registry", default=None, help=f"model registry ({DEFAULT_ROOT})")
    tower = parser.add_argument_group(
        "watchtower", "take health, windows and charts from tickwise watch --web-port"
    )
    tower.add_argument(
        "--watch-url",
        default=None,
        help="the watchtower's views, e.g. http://127.0.0.1:8322 (token: $TICKWISE_WATCH_TOKEN); "
        "unset: the console reads its topics from their first offset",
    )
    tower.add_argument("--watch-ca", default=None, help="PEM CA to trust for an https --watch-url")
    tower.add_argument(
        "--tail",
        type=int,
        default=500,
        help="with --watch-url: messages per partition read back from each topic's end",
    )
    add_bootstrap_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.streams.console.server:run_cli"))


def _watch(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="run the watchtower: live audit-chain check, feed, worker and broker health",
        description=(
            "A faust app with its own consumer group: checks every audit record against its "
            "instrument's hash chain as it arrives, that each decision gets its audit record, "
            "that feeds tick, and that the workers' group is alive and keeping up; raises "
            "alerts on the alerts topic (codes in docs/OPERATIONS.md, thresholds in [watch])."
        ),
    )
    parser.add_argument("--config", default=None, help="TOML config ([watch] thresholds)")
    parser.add_argument("--topic-prefix", default=None, help="override the config's topic prefix")
    parser.add_argument("--loglevel", default="WARNING")
    add_metrics_arguments(parser)
    views = parser.add_argument_group(
        "web views", "/watch/health and /watch/windows as JSON, for the console (a viewer token)"
    )
    views.add_argument("--web-port", type=int, default=0, help="serve the views here (0: none)")
    _add_doors(views, "--web-host")
    add_bootstrap_argument(parser)
    parser.set_defaults(func=LazyHandler("tickwise.streams.watch.app:run_cli"))


# Sub-commands in the order `--help` lists them.
COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    _broker,
    _topics,
    _feed,
    _worker,
    _demo,
    _backtest,
    _replay,
    _schemas,
    _quarantine,
    _status,
    _kill_switch,
    _audit,
    _model,
    _security,
    _console,
    _watch,
)


def build_parser() -> argparse.ArgumentParser:
    """Return the whole ``tickwise`` parser; no command's implementation is imported."""
    parser = argparse.ArgumentParser(
        prog="tickwise",
        description="Online ML models in live trading infrastructure, under control.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


# Two-word spellings that run another command.
ALIASES = {("audit", "replay-check"): ["replay-check"]}


def main(argv: list[str] | None = None) -> int:
    """Run one ``tickwise`` sub-command and return its exit code."""
    own = argv is None  # the process's own command line: it runs this one command and exits
    argv = list(sys.argv[1:] if argv is None else argv)
    alias = ALIASES.get(tuple(argv[:2]))  # type: ignore[call-overload]
    if alias is not None:
        argv = alias + argv[2:]
    args = build_parser().parse_args(argv)
    if own:
        from tickwise.streams.engine.heap import native_defaults

        native_defaults(os.environ)  # before the command imports numpy and pyarrow
    func = args.func.resolve() if isinstance(args.func, LazyHandler) else args.func
    if own:
        # What is alive now (modules, contracts' validators, compiled kernels) lives as long
        # as the process: kept out of the collector, a full collection no longer walks it.
        gc.freeze()
    try:
        result = func(args)
    except ValueError as exc:
        # a bad config file: its words, not a traceback (the module is loaded if it raised;
        # importing it here would cost --help the config's imports)
        config = sys.modules.get("tickwise.streams.config")
        if config is None or not isinstance(exc, config.ConfigError):
            raise
        print(f"tickwise {args.command}: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
