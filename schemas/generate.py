"""Generate the JSON Schema files downstream consumers read, and check they are current.

``tickwise schemas generate`` writes them; ``tickwise schemas check`` (and the test suite) fails
when a model changed and the files were not regenerated.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from tickwise.schemas.decisions import (
    Alert,
    AuditRecord,
    ControlCommand,
    Decision,
    FeatureVector,
    Fill,
    HoldSummary,
    Signal,
)
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.registry import RegistryEntry
from tickwise.schemas.ticks import TICK_ADAPTER, CleanTick, QuoteTick, TradeTick

SCHEMA_DIR = Path(__file__).parent / "json"

MODELS: dict[str, type[BaseModel]] = {
    "trade_tick": TradeTick,
    "quote_tick": QuoteTick,
    "clean_tick": CleanTick,
    "quarantine_record": QuarantineRecord,
    "feature_vector": FeatureVector,
    "signal": Signal,
    "decision": Decision,
    "audit_record": AuditRecord,
    "hold_summary": HoldSummary,
    "alert": Alert,
    "control_command": ControlCommand,
    "fill": Fill,
    "registry_entry": RegistryEntry,
}


def render() -> dict[str, str]:
    """Return file name -> JSON Schema text for every contract, deterministically formatted."""
    docs = {name: model.model_json_schema() for name, model in MODELS.items()}
    raw = TICK_ADAPTER.json_schema()
    raw["title"] = "RawTick"
    raw["description"] = "A message on ticks.raw: a trade or a quote, told apart by 'kind'."
    docs["raw_tick"] = raw
    return {
        f"{name}.schema.json": json.dumps(doc, indent=2, sort_keys=True) + "\n"
        for name, doc in sorted(docs.items())
    }


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing, outdated or no longer generated."""
    wanted = render()
    out = [
        name
        for name, text in wanted.items()
        if not (directory / name).exists() or (directory / name).read_text() != text
    ]
    out += sorted(p.name for p in directory.glob("*.schema.json") if p.name not in wanted)
    return out


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Write every schema file, remove ones no longer generated; return the names written."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = render()
    for old in directory.glob("*.schema.json"):
        if old.name not in wanted:
            old.unlink()
    for name, text in wanted.items():
        (directory / name).write_text(text)
    return sorted(wanted)


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise schemas generate|check`` and return the exit code."""
    if args.action == "generate":
        for name in write():
            print(f"wrote schemas/json/{name}")
        return 0
    bad = stale()
    if bad:
        print("stale JSON Schema files (run `tickwise schemas generate`): " + ", ".join(bad))
        return 1
    print("JSON Schema files are current")
    return 0


if __name__ == "__main__":
    ns = argparse.Namespace(action=sys.argv[1] if len(sys.argv) > 1 else "generate")
    sys.exit(run_cli(ns))
