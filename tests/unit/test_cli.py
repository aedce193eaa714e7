"""The ``tickwise`` command line, broker-free commands only: backtest and schemas check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stubs

from tickwise.replay.backtest import FILES, REPORT_FILES
from tickwise.schemas.decisions import Decision
from tickwise.streams.cli import main


def test_synthetic_backtest_succeeds_and_writes_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["backtest", "--synthetic", "--count", "3000", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {*FILES.values(), *REPORT_FILES}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ticks"] == 3000 and summary["decisions"] > 0
    for line in (out / "decisions.jsonl").read_bytes().splitlines():
        Decision.model_validate_json(line)
    assert '"ticks": 3000' in capsys.readouterr().out


def test_bad_rate_flag_reaches_the_quarantine(tmp_path: Path) -> None:
    args = ["backtest", "--synthetic", "--count", "800", "--bad-rate", "0.2", "--out"]
    assert main([*args, str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["quarantined"] > 0
    assert summary["clean"] + summary["quarantined"] == 800


def _naive_csv(tmp_path: Path) -> Path:
    rows = [[f"2024-01-02 09:30:0{i}", f"{4700 + i}.25", "1"] for i in range(5)]
    return stubs.write_csv(tmp_path / "naive.csv", ["time", "price", "size"], rows)


def test_naive_csv_without_tz_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _naive_csv(tmp_path)
    code = main(["backtest", "--data", str(data), "--symbol", "ES", "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--tz" in err and "2024-01-02 09:30:00" in err


def test_naive_csv_with_tz_succeeds(tmp_path: Path) -> None:
    data = _naive_csv(tmp_path)
    args = ["backtest", "--data", str(data), "--symbol", "ES", "--tz", "America/New_York"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert (summary["ticks"], summary["clean"]) == (5, 5)


def test_missing_data_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.csv"
    assert main(["backtest", "--data", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_backtest_without_a_source_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "--out", str(tmp_path)]) == 2
    assert "--synthetic" in capsys.readouterr().err


def test_schemas_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "check"]) == 0
    assert "current" in capsys.readouterr().out


def test_audit_replay_check_is_the_replay_check_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`tickwise audit replay-check` (the issue's spelling) runs `tickwise replay-check`."""
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "replay-check", "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: tickwise replay-check")


def test_only_the_process_command_line_freezes_what_is_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process's command (``argv`` read from ``sys.argv``) keeps what it imported out of the
    collector; a caller passing ``argv`` (a test, a benchmark) keeps its collector as it was."""
    import gc

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    args = ["backtest", "--synthetic", "--count", "50", "--no-progress", "--out"]
    assert main([*args, str(tmp_path / "a")]) == 0
    assert frozen == []
    monkeypatch.setattr("sys.argv", ["tickwise", *args, str(tmp_path / "b")])
    assert main() == 0
    assert frozen == [True]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[live]\nengine = "columnar"\n', "live.engine: Extra inputs are not permitted"),
        ("[risk]\nmax_position = -1\n", "risk.max_position: "),
        ("x = [\n", "not TOML"),
        (None, "No such file or directory"),
    ],
    ids=["a setting that no longer exists", "a bad value", "not TOML", "missing"],
)
def test_a_bad_config_is_named_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, said: str
) -> None:
    path = tmp_path / "bad.toml"
    if text is not None:
        path.write_text(text)
    for command in (["backtest", "--synthetic", "--count", "5", "--out", str(tmp_path / "o")],
                    ["worker", "--bootstrap-servers", "127.0.0.1:1"]):  # fmt: skip
        assert main([*command, "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"tickwise {command[0]}: config {path}: {said}" in err, err
        assert "Traceback" not in err
