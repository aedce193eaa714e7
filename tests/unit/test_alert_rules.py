"""deploy/prometheus's alert rules: valid for promtool, firing as its rule tests expect, and
written only against metrics the watchtower exports (a renamed metric breaks this test)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tickwise.streams.watch.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "tickwise-alerts.yml"
# Series Prometheus makes itself for every scrape target
PROMETHEUS_OWN = frozenset({"up"})
# PromQL words that look like identifiers but name no series
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
    | {"offset", "inf", "nan"}
)
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def series_names(expr: str) -> set[str]:
    """The series an expression selects: identifiers outside strings, label sets, ranges and
    grouping clauses that are neither functions, aggregations nor keywords.

    Examples
    --------
    >>> sorted(series_names('sum by (group) (rate(a_total{code=~"X|Y"}[5m])) > b or up'))
    ['a_total', 'b', 'up']
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in IDENT.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group() in KEYWORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]?", match.group()):
            continue
        names.add(match.group())
    return names


def rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is required: Debian's prometheus package (`make test` and .ci/run "
            "install it through .ci/provision test)"
        )
    return path


def test_the_rules_cover_what_the_watchtower_watches() -> None:
    names = {rule["alert"] for rule in rules()}
    for wanted in ("FeedStale", "WorkerDown", "WorkerLag", "AuditBroken", "KillSwitchOn"):
        assert f"Tickwise{wanted}" in names


def test_every_series_in_the_rules_is_one_the_watchtower_exports() -> None:
    used: set[str] = set()
    for rule in rules():
        names = series_names(str(rule["expr"]))
        assert names, f"{rule['alert']}: selects no series"
        used |= names
    assert used - METRIC_NAMES - PROMETHEUS_OWN == set()


@given(st.sampled_from(sorted(METRIC_NAMES)), st.sampled_from(["rate", "increase", "max"]))
def test_the_name_reader_finds_a_series_wherever_promql_puts_it(name: str, func: str) -> None:
    expr = f'{func} by (instrument) ({name}{{code=~"A|B",x="y"}}[5m]) > on (group) up * 2'
    if func == "max":
        expr = f"max by (instrument) ({name}) > on (group) up * 2"
    assert series_names(expr) == {name, "up"}


def test_a_renamed_metric_is_caught() -> None:
    expr = "tickwise_watch_worker_members_count == 0"
    assert series_names(expr) - METRIC_NAMES == {"tickwise_watch_worker_members_count"}


def test_promtool_checks_the_rules_and_the_config_that_loads_them() -> None:
    """prometheus.yml (compose's) names the rules file, so its check reads the rules too."""
    outputs = []
    for args in (["check", "rules", RULES.name], ["check", "config", "prometheus.yml"]):
        result = subprocess.run(
            [promtool(), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout + result.stderr)
    assert f"SUCCESS: {len(rules())} rules found" in outputs[0]
    assert "1 rule files found" in outputs[1]


def test_promtool_rule_tests_pass() -> None:
    """Each rule fires on its series after its ``for``, and resolves (tickwise-alerts.test.yml)."""
    result = subprocess.run(
        [promtool(), "test", "rules", "tickwise-alerts.test.yml"],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
