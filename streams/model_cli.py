"""``tickwise model``: the registry (list, show, register), rollout (promote, rollback), compare.

``promote`` and ``rollback`` record the change in the registry with who asked and why, then
publish the registry's log on the ``registry`` topic (the entries it lacks) and the matching
``ControlCommand`` on the ``control`` topic; every worker applies it at each instrument's next
tick, without a restart. ``verify`` checks the log's hash chain as stored: it lives here, not
under ``tickwise audit verify``, because it reads the registry's directory (``--registry``),
while ``audit verify`` reads the audit store the sink fills from the ``audit`` topic.

Configs and the evaluation are imported when a command runs: the ``tickwise`` parser imports this
module for ``model``'s arguments and must not load pydantic or river.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tickwise.streams.live.bootstrap import add_bootstrap_argument, resolve_bootstrap
from tickwise.streams.progress import add_progress_argument, wants_progress
from tickwise.streams.registry import DEFAULT_ROOT, Registry, RegistryError
from tickwise.streams.sources import SourceError, add_source_arguments, open_sources

if TYPE_CHECKING:
    from tickwise.streams.config import TickwiseConfig

STAGE_CHOICES = ("shadow", "canary", "production", "retired")


def _registry(args: argparse.Namespace) -> Registry:
    return Registry(args.registry or DEFAULT_ROOT)


def _publish(args: argparse.Namespace, command: object) -> None:
    if args.no_publish:
        print(command.to_bytes().decode())  # type: ignore[attr-defined]
        return
    from tickwise.schemas.topics import Topics
    from tickwise.streams.live.control import send_control
    from tickwise.streams.live.registry_log import publish_log

    topics, bootstrap = Topics(args.topic_prefix or ""), resolve_bootstrap(args)
    n = publish_log(_registry(args), bootstrap, topics.registry)
    print(f"published {n} registry entries to {topics.registry}")
    send_control(bootstrap, topics.control, command)  # type: ignore[arg-type]
    print(f"published {command.command_id} to {topics.control}")  # type: ignore[attr-defined]


def _list(args: argparse.Namespace) -> int:
    for v in _registry(args).versions():
        metric = ", ".join(f"{k}={x:.4g}" for k, x in v.metrics.get("overall", {}).items())
        parent = v.parent or "-"
        print(f"{v.key:<24} {v.stage:<11} {v.config['kind']:<15} parent={parent:<16} {metric}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    print(json.dumps(asdict(_registry(args).get(args.key)), indent=2, sort_keys=True))
    return 0


def _verify(args: argparse.Namespace) -> int:
    registry = _registry(args)
    problems, head = registry.verify()
    for problem in problems:
        print(f"FAIL {problem}")
    if head is not None:
        print(f"head: seq {head[0]} hash {head[1]}")
    verdict = "FAILED" if problems else "OK"
    print(f"{verdict}: {len(registry.log_lines())} registry entries, {len(problems)} problems")
    return 1 if problems else 0


def _evaluate(args: argparse.Namespace, config: TickwiseConfig, name: str):
    from tickwise.replay.compare import evaluate_config

    records = list(open_sources(args, args.data or []))
    return evaluate_config(records, config, name, progress=wants_progress(args))


def _register(args: argparse.Namespace) -> int:
    from tickwise.streams.config import load_config

    config = load_config(args.config)
    model = config.model
    if args.model_id:
        model = model.model_copy(update={"model_id": args.model_id})
    window: dict[str, object] = {}
    metrics: dict[str, object] = {}
    if args.data or args.synthetic:
        result = _evaluate(args, config.model_copy(update={"model": model}), model.model_id)
        window = {
            "data": [str(p) for p in args.data or []] or ["synthetic"],
            "first_ts_event_ns": result.first_ts_ns,
            "last_ts_event_ns": result.last_ts_ns,
        }
        metrics = {"overall": result.metrics, "labels": result.n, "task": result.task}
    mv = _registry(args).register(
        model, args.operator, args.reason, args.parent, window, metrics, now_ns=time.time_ns()
    )
    print(f"registered {mv.key}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    command = _registry(args).promote(
        args.key,
        args.stage,
        args.operator,
        args.reason,
        time.time_ns(),
        instruments=args.instruments,
        capital_fraction=args.capital_fraction,
    )
    _publish(args, command)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    command = _registry(args).rollback(args.operator, args.reason, time.time_ns())
    print(f"rolling back to {command.model_id}:v{command.model_version}")
    _publish(args, command)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from tickwise.replay.compare import evaluate_config, table
    from tickwise.streams.config import load_config

    records = list(open_sources(args, args.data or []))
    results = []
    for path in args.config:
        config = load_config(path)
        results.append(
            evaluate_config(records, config, Path(path).stem, progress=wants_progress(args))
        )
    print(table(results))
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        return args.model_func(args)
    except (RegistryError, SourceError, FileNotFoundError, ValueError) as exc:
        print(f"tickwise model: {exc}", file=sys.stderr)
        return 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``model`` sub-command and its own sub-commands."""
    parser = subparsers.add_parser("model", help="model registry, rollout and comparison")
    sub = parser.add_subparsers(dest="model_command", required=True)

    def command(name: str, func: object, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--registry", default=None, help=f"registry directory ({DEFAULT_ROOT})")
        p.set_defaults(func=_run, model_func=func)
        return p

    def who(p: argparse.ArgumentParser) -> None:
        p.add_argument("--operator", default=getpass.getuser(), help="who asks (audited)")
        p.add_argument("--reason", required=True, help="why (audited)")

    def rollout(p: argparse.ArgumentParser) -> None:
        who(p)
        p.add_argument("--topic-prefix", default=None, help="topic prefix of the deployment")
        p.add_argument("--no-publish", action="store_true", help="print the command instead")
        add_bootstrap_argument(p)

    command("list", _list, "list model versions and their stages")
    show = command("show", _show, "show one version (MODEL_ID:vN)")
    show.add_argument("key")
    command("verify", _verify, "check the hash chain of the registry's log")

    reg = command("register", _register, "register a model version from a config")
    reg.add_argument("--config", required=True, help="TOML config whose [model] is registered")
    reg.add_argument("--model-id", default=None)
    reg.add_argument("--parent", default=None, help="the version this one derives from")
    reg.add_argument("--data", nargs="+", default=None, help="evaluate on these files first")
    add_source_arguments(reg)
    add_progress_argument(reg)
    who(reg)

    promote = command("promote", _promote, "move a version to a stage (publishes to control)")
    promote.add_argument("key")
    # schemas.decisions.Stage's values: the parser is built without importing pydantic
    # (tests/unit/test_stages.py holds the two equal)
    promote.add_argument("--stage", required=True, choices=STAGE_CHOICES)
    promote.add_argument("--instruments", nargs="+", default=None, help="canary instruments")
    promote.add_argument("--capital-fraction", type=float, default=None, help="canary size")
    rollout(promote)

    rollback = command("rollback", _rollback, "bring back the previous production version")
    rollout(rollback)

    compare = command("compare", _compare, "rank model configs prequentially over a file")
    compare.add_argument("--data", nargs="+", default=None, help="CSV, JSON Lines or Parquet files")
    compare.add_argument("--config", nargs="+", required=True, help="TOML configs to compare")
    add_source_arguments(compare)
    add_progress_argument(compare)
