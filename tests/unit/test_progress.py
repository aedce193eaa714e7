"""Progress bars: on stderr when asked, none by default off a terminal, the totals drawn last.

The Kafka commands (``feed``, ``replay``, ``replay-check``) are held the same way in
``tests/integration/test_progress_kafka.py``.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from tickwise.replay.compare import evaluate_config
from tickwise.streams.cli import main
from tickwise.streams.config import load_config
from tickwise.streams.progress import Progress, utc_second
from tickwise.streams.sources import synthetic


def bar_lines(err: str, desc: str) -> list[str]:
    """Every drawing of the bar named ``desc``; tqdm redraws with carriage returns, padding a
    drawing shorter than the one before with spaces."""
    return [line.rstrip(" ") for line in re.split(r"[\r\n]", err) if line.startswith(f"{desc}:")]


def test_the_last_drawing_holds_the_final_count_and_fields_in_order() -> None:
    stream = io.StringIO()
    with Progress(True, "job", stream=stream) as bar:
        bar.update(1024, decisions=7, equity="1,000.00")
        bar.close(123_457, decisions=123_456, equity="999.50")
    last = bar_lines(stream.getvalue(), "job")[-1]
    # counts exact: tqdm alone would print 123456 as 1.23e+5
    assert last.startswith("job: 123457 ticks [")
    assert last.endswith(", decisions=123456, equity=999.50]")
    assert stream.getvalue().endswith("\n")


def test_an_error_still_ends_the_line_and_a_disabled_bar_draws_nothing() -> None:
    stream = io.StringIO()
    with pytest.raises(RuntimeError), Progress(True, "job", stream=stream) as bar:
        bar.update(1024, decisions=3)
        raise RuntimeError("source broke")
    assert stream.getvalue().endswith("\n")  # the error message starts on a line of its own

    quiet = io.StringIO()
    with Progress(False, "job", stream=quiet) as bar:
        bar.update(1024, decisions=3)
        bar.close(2000, decisions=4)
    assert quiet.getvalue() == ""


def test_backtest_draws_a_bar_when_asked_and_none_by_default_off_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["backtest", "--synthetic", "--count", "1500", "--seed", "3"]
    assert main([*args, "--out", str(tmp_path / "shown"), "--progress"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out[: out.index("\n}\n") + 2])
    last = bar_lines(err, "backtest")[-1]
    # 1500 is not a multiple of the update interval: the count is the run's, not the last update's
    assert last.startswith("backtest: 1500 ticks [")
    assert f", decisions={summary['decisions']}," in last and summary["decisions"] > 0
    report = json.loads((tmp_path / "shown" / "report.json").read_text())
    assert last.endswith(
        f", event_time={report['end'][:19]}Z, equity={report['last_equity']:,.2f}]"
    )

    assert main([*args, "--out", str(tmp_path / "quiet")]) == 0  # capsys's stderr is no terminal
    assert bar_lines(capsys.readouterr().err, "backtest") == []


def test_model_compare_draws_one_bar_per_config_with_its_total(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "small.toml"
    config.write_text("[label]\nhorizon_s = 0.5\n[model]\nwarmup_labels = 5\n")
    argv = ["model", "compare", "--synthetic", "--count", "1200", "--config", str(config)]
    assert main([*argv, "--progress"]) == 0
    last = bar_lines(capsys.readouterr().err, "small")[-1]
    records = list(synthetic(seed=1, count=1200))
    evaluated = evaluate_config(records, load_config(str(config)), "small")
    assert "| 1200/1200 [" in last and last.startswith("small: 100%")
    assert f", decisions={evaluated.decisions}, " in last and evaluated.decisions > 0
    assert last.endswith(f", event_time={utc_second(evaluated.last_ts_ns)}]")

    assert main(argv) == 0
    assert bar_lines(capsys.readouterr().err, "small") == []
