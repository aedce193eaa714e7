"""The registry's lineage, stages and audit trail, and ``tickwise model`` list/compare."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickwise.streams.cli import main
from tickwise.streams.config import ModelConfig
from tickwise.streams.registry import Registry, RegistryError


def test_promote_and_rollback_keep_lineage_and_an_audit_trail(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    v1 = reg.register(ModelConfig(), "ann", "baseline")
    v2 = reg.register(ModelConfig(), "bob", "retrained", parent=v1.key)
    assert (v1.key, v2.key) == ("logreg:v1", "logreg:v2")  # next free version number
    assert reg.get(v2.key).parent == v1.key

    reg.promote(v1.key, "production", "ann", "first", 1)
    cmd = reg.promote(v2.key, "production", "bob", "better", 2)
    assert (
        cmd.model_spec is not None and ModelConfig.model_validate(cmd.model_spec).model_version == 2
    )
    assert [v.stage for v in reg.versions()] == ["retired", "production"]

    back = reg.rollback("carol", "slippage", 3)
    assert (back.command, back.model_id, back.model_version) == ("rollback", "logreg", 1)
    assert [v.stage for v in reg.versions()] == ["production", "retired"]
    stages = [
        (e.model, e.to_stage, e.operator, e.reason) for e in reg.audit_trail() if e.event == "stage"
    ]
    assert stages[-2:] == [
        ("logreg:v2", "retired", "carol", "slippage"),
        ("logreg:v1", "production", "carol", "rollback of logreg:v2: slippage"),
    ]


def test_registry_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    with pytest.raises(RegistryError, match="nothing is in production"):
        reg.rollback("ann", "why", 1)
    v1 = reg.register(ModelConfig(), "ann", "baseline")
    reg.promote(v1.key, "production", "ann", "go", 1)
    with pytest.raises(RegistryError, match="replaced no earlier"):
        reg.rollback("ann", "why", 2)
    with pytest.raises(RegistryError, match="no model version"):
        reg.promote("logreg:v9", "shadow", "ann", "x", 3)
    with pytest.raises(RegistryError, match="expected MODEL_ID:vN"):
        reg.get("logreg")


def test_model_commands_register_list_and_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, tree = tmp_path / "base.toml", tmp_path / "tree.toml"
    base.write_text("[label]\nhorizon_s = 0.5\n[model]\nwarmup_labels = 5\n")
    tree.write_text(
        '[label]\nhorizon_s = 0.5\n[model]\nkind = "hoeffding_tree"\nmodel_id = "tree"\n'
        "grace_period = 50\nwarmup_labels = 5\n"
    )
    reg = ["--registry", str(tmp_path / "reg")]
    syn = ["--synthetic", "--count", "1500"]
    assert main(["model", "register", *reg, "--config", str(base), "--reason", "b", *syn]) == 0
    assert main(["model", "list", *reg]) == 0
    listed = capsys.readouterr().out
    assert "logreg:v1" in listed and "LogLoss=" in listed

    assert main(["model", "compare", *syn, "--config", str(base), str(tree)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [r[0] for r in rows] == ["1", "2"] and {r[1] for r in rows} == {"base", "tree"}
    losses = [float(next(f for f in r if f.startswith("LogLoss=")).split("=")[1]) for r in rows]
    assert losses == sorted(losses)
    assert main(["model", "show", *reg, "logreg:v9"]) == 2
