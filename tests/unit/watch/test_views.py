"""The watchtower's views as data: the windows of the table in the order a chart draws them,
one instrument's alone when asked, the health of the last look, and a query string that is no
instrument refused."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.stubs import audit_bodies, self_signed_cert
from tickwise.schemas.decisions import AUDIT_ADAPTER, AuditRecord, HoldSummary
from tickwise.streams.config import AnomalyConfig, LabelConfig
from tickwise.streams.live.broker import free_port
from tickwise.streams.watch.health import GroupHealth
from tickwise.streams.watch.views import (
    LAG_LOOKS,
    BadQuery,
    HealthBoard,
    _finite,
    instrument_of,
    windows_json,
)
from tickwise.streams.watch.windows import HOPPING, TUMBLING, Windows
from tickwise.streams.web.auth import USERS_ENV

CONFIG = AnomalyConfig(window_s=0.5, hop_size_s=1.5, hop_step_s=0.5, history=1000, min_history=3)
NO_BROKER = "127.0.0.1:1"
INSTRUMENT = re.compile(r"^[A-Za-z0-9._:/\-]{1,64}$")


@pytest.fixture(scope="module")
def trail() -> list[AuditRecord | HoldSummary]:
    return [AUDIT_ADAPTER.validate_json(b) for b in audit_bodies(1500, hold_summary_s=0.25)]


def filled(trail: list[AuditRecord | HoldSummary]) -> Windows:
    windows = Windows(CONFIG, LabelConfig(horizon_s=0.5), {})
    for entry in trail:
        windows.on_entry(entry)
    return windows


def test_each_key_shows_its_windows_oldest_first_closed_then_open_with_its_account(
    trail: list[AuditRecord | HoldSummary],
) -> None:
    windows = filled(trail)
    out = json.loads(json.dumps(windows_json(windows.states.items(), CONFIG)))
    assert (out["tumbling_s"], out["hopping_s"], out["hopping_step_s"]) == (0.5, 1.5, 0.5)
    assert [k["key"] for k in out["keys"]] == sorted(windows.states)
    records = [e for e in trail if isinstance(e, AuditRecord)]
    for key in out["keys"]:
        state = windows.states[key["key"]]
        for spec in (TUMBLING, HOPPING):
            shown = key[spec]
            starts = [w["start_ns"] for w in shown]
            assert starts == sorted(starts)
            flags = [w["open"] for w in shown]
            assert flags == sorted(flags)  # every closed window before the open ones
            assert len(shown) == len(state["closed"][spec]) + len(state["open"][spec])
            for w in shown:
                assert w["accuracy"] == (w["hits"] / w["outcomes"] if w["outcomes"] else None)
        assert key["account"]["position"] == state["position"]
        assert key[TUMBLING][-1]["position"] == state["position"]
        fills = [f for r in records for f in r.fills if f.instrument == key["instrument"]]
        if fills:
            assert key["account"]["realized_pnl"] == fills[-1].realized_pnl_after
    # the tumbling windows of all keys hold every fill of the trail, once
    shown_fills = sum(w["fills"] for k in out["keys"] for w in k[TUMBLING])
    assert shown_fills == sum(len(r.fills) for r in records) > 0


def test_one_instruments_windows_are_its_keys_alone(
    trail: list[AuditRecord | HoldSummary],
) -> None:
    windows = filled(trail)
    every = windows_json(windows.states.items(), CONFIG)["keys"]
    instruments = sorted({k["instrument"] for k in every})
    assert len(instruments) > 1
    for name in instruments:
        mine = windows_json(windows.states.items(), CONFIG, name)["keys"]
        assert mine == [k for k in every if k["instrument"] == name]
    assert windows_json(windows.states.items(), CONFIG, "NOPE")["keys"] == []


def test_health_shows_the_last_look_and_keeps_the_lag_of_the_recent_ones() -> None:
    board = HealthBoard()
    assert board.snapshot() == {"last_look": None, "lag_history": []}
    group = GroupHealth("tickwise", "STABLE", 2, 40, {1: 30, 0: 10})
    feeds, sessions = {"ES": 95.0}, {"ES": True, "NQ": False}
    firing = [("WORKER_LAG", "tickwise"), ("FEED_STALE", "ES")]
    board.on_look(100.0, group, 25, feeds, sessions, firing, {"ES": {"seq": 7}}, {"ES": True})
    out = board.snapshot()
    assert out["workers"] == {
        "group": "tickwise",
        "state": "STABLE",
        "members": 2,
        "lag": 40,
        "max_lag": 25,
        "lag_by_partition": {"0": 10, "1": 30},
    }
    assert out["feeds"] == {
        "ES": {"age_s": 5.0, "in_session": True, "stale": True},
        "NQ": {"age_s": None, "in_session": False, "stale": False},
    }
    assert out["chains"] == {"ES": {"seq": 7}} and out["kill_switches"] == {"ES": True}
    assert [f["code"] for f in out["firing"]] == ["FEED_STALE", "WORKER_LAG"]
    assert out["broker"] == {"reachable": True, "error": None}
    # a failed probe: the broker is unreachable, no workers, and no lag point for that look
    board.on_look(101.0, OSError("timed out"), 25, feeds, sessions, [], {}, {})
    out = board.snapshot()
    assert out["broker"] == {"reachable": False, "error": "timed out"} and out["workers"] is None
    assert out["lag_history"] == [[100.0, 40]]
    for i in range(LAG_LOOKS + 5):
        board.on_look(200.0 + i, group, 25, feeds, sessions, [], {}, {})
    lags = board.snapshot()["lag_history"]
    assert len(lags) == LAG_LOOKS and lags[-1][0] == 200.0 + LAG_LOOKS + 4


def test_a_float_json_cannot_hold_becomes_null() -> None:
    value = {"a": [1.0, float("inf"), {"b": float("nan")}], "c": -float("inf"), "d": "x"}
    assert _finite(value) == {"a": [1.0, None, {"b": None}], "c": None, "d": "x"}


@given(st.text(max_size=80))
def test_the_query_names_an_instrument_or_is_refused(name: str) -> None:
    if INSTRUMENT.match(name):
        assert instrument_of({"instrument": name}) == name
    else:
        with pytest.raises(BadQuery):
            instrument_of({"instrument": name})


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=10), min_size=1))
def test_a_query_parameter_the_views_do_not_know_is_refused(query: dict[str, str]) -> None:
    query.pop("instrument", None)
    if query:
        with pytest.raises(BadQuery, match="unknown query parameter"):
            instrument_of(query)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "tickwise.streams.cli", *args, "--bootstrap-servers", NO_BROKER]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_watchtower_refuses_its_views_on_doors_the_console_refuses(tmp_path: Path) -> None:
    """Each refusal exits 2 before the watchtower binds or reaches a broker."""
    port = free_port()
    plain = cli("watch", "--web-port", str(port), "--web-host", "0.0.0.0")
    assert plain.returncode == 2 and "refusing to serve plain HTTP on 0.0.0.0" in plain.stderr
    assert not listening(port)
    cert, _ = self_signed_cert(tmp_path)
    half = cli("watch", "--web-port", str(port), "--tls-cert", cert)
    assert half.returncode == 2 and "--tls-key" in half.stderr
    short = cli("watch", "--web-port", str(port), env={USERS_ENV: "bob:viewer:short"})
    assert short.returncode == 2 and "shorter than" in short.stderr
    assert not listening(port)


def test_the_console_refuses_a_watch_url_it_cannot_read() -> None:
    for url in ("ftp://tower:8322", "http://tower:8322/watch/health"):
        result = cli("console", "--port", str(free_port()), "--watch-url", url)
        assert result.returncode == 2 and "--watch-url" in result.stderr, result.stderr
