"""``tickwise audit show|verify|export|sink``: the audit store from the command line.

The sink needs Kafka and the other actions do not, so the sink's module is imported only when
it runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tickwise.streams.audit.store import HOLD_SUMMARY, Query, open_store


def _query(args: argparse.Namespace) -> Query:
    return Query(args.start_ns, args.end_ns, args.instrument, args.model, args.limit)


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise audit show|verify|export|sink`` and return the exit code."""
    if args.action == "sink":
        from tickwise.streams.audit.sink import run_sink

        return run_sink(args)
    store = open_store(args.store)
    try:
        if args.action == "show":
            for row in store.rows(_query(args)):
                print(row[-1] if args.json else _summary(row))
            return 0
        if args.action == "verify":
            problems, heads = store.verify()
            for problem in problems:
                print(f"FAIL {problem}")
            for instrument, (seq, head) in sorted(heads.items()):
                print(f"head {instrument}: seq {seq} hash {head}")
            verdict = "FAILED" if problems else "OK"
            print(f"{verdict}: {store.count()} records, {len(problems)} problems")
            return 1 if problems else 0
        out = Path(args.out)
        fmt = args.format or ("parquet" if out.suffix == ".parquet" else "csv")
        n = store.export(out, fmt, _query(args))
        print(f"exported {n} records to {out} ({fmt})")
        return 0
    finally:
        store.close()


def _summary(row: tuple[Any, ...]) -> str:
    audit_id, instrument, seq, ts, model_id, version, approved, action, *_rest, body = row
    if action == HOLD_SUMMARY:
        doc = json.loads(body)
        return (
            f"{ts} {instrument} #{seq} {model_id}/v{version} {doc['holds']} holds from "
            f"{doc['from_ts_event_ns']} ({audit_id})"
        )
    reasons = json.loads(body)["decision"]["reject_reasons"]
    verdict = "approved" if approved else "rejected " + ",".join(reasons)
    return f"{ts} {instrument} #{seq} {model_id}/v{version} {action} {verdict} ({audit_id})"
