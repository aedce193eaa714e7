"""The console's side of the watchtower: the address it is given, the chart series it draws from
the windows, and the accounts and kill switches it takes over from its own tail."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.stubs import audit_bodies
from tickwise.schemas.decisions import AUDIT_ADAPTER, ControlCommand
from tickwise.streams.config import AnomalyConfig, LabelConfig
from tickwise.streams.console.charts import SERIES, instrument_series, lag_series
from tickwise.streams.console.view import ConsoleView
from tickwise.streams.console.watch import TOKEN_ENV, WatchSource, WatchURLError
from tickwise.streams.watch.health import GroupHealth
from tickwise.streams.watch.views import HealthBoard, windows_json
from tickwise.streams.watch.windows import TUMBLING, Windows

CONFIG = AnomalyConfig(window_s=0.5, hop_size_s=1.5, hop_step_s=0.5, history=1000)


@pytest.fixture(scope="module")
def windows() -> dict:
    """The watchtower's /watch/windows answer over a synthetic run's trail."""
    w = Windows(CONFIG, LabelConfig(horizon_s=0.5), {})
    for body in audit_bodies(1500, hold_summary_s=0.25):
        w.on_entry(AUDIT_ADAPTER.validate_json(body))
    return windows_json(w.states.items(), CONFIG)


def test_the_watch_url_is_a_server_and_the_token_comes_from_the_environment() -> None:
    source = WatchSource.of("https://tower.example:8322/", "ca.pem", env={TOKEN_ENV: "t0ken-123"})
    assert source == WatchSource("https://tower.example:8322", "t0ken-123", "ca.pem")
    assert WatchSource.of("http://127.0.0.1:8322", env={}).token is None
    for bad in ("127.0.0.1:8322", "http://h:1/watch/health", "http://h:1/?x=1", "http://:1"):
        with pytest.raises(WatchURLError):
            WatchSource.of(bad, env={})
    with pytest.raises(WatchURLError, match="--watch-ca"):
        WatchSource.of("http://127.0.0.1:8322", "ca.pem", env={})


@given(st.text(max_size=60))
def test_any_watch_url_is_taken_or_refused_with_its_own_error(url: str) -> None:
    try:
        source = WatchSource.of(url, env={})
    except WatchURLError:
        return
    assert source.url.split("://")[0] in ("http", "https") and "/" not in source.url.split("://")[1]


def test_the_chart_series_add_up_to_the_windows(windows: dict) -> None:
    charts = instrument_series(windows)
    assert set(charts) == {k["instrument"] for k in windows["keys"]}
    for name, cols in charts.items():
        keys = [k for k in windows["keys"] if k["instrument"] == name]
        shown = [w for k in keys for w in k[TUMBLING]]
        assert all(len(cols[s]) == len(cols["t"]) for s in SERIES)
        assert cols["t"] == sorted({w["end_ns"] / 1e9 for w in shown})
        assert sum(cols["orders"]) == sum(w["orders"] for w in shown)
        assert sum(cols["refusals"]) == sum(sum(w["refusals"].values()) for w in shown)
        assert cols["pnl"][-1] == pytest.approx(sum(w["marked_pnl"] for w in shown))
        latest = max(keys, key=lambda k: k["latest_ns"])
        assert cols["position"][-1] == latest[TUMBLING][-1]["position"]
        for acc in cols["accuracy"]:
            assert acc is None or 0.0 <= acc <= 1.0
    assert lag_series({"last_look": None}) == {"t": [], "lag": []}


def test_the_watchtowers_accounts_and_switches_stand_beside_the_console_tail(
    windows: dict,
) -> None:
    view = ConsoleView()
    cmd = ControlCommand(command_id="k1", command="kill_switch_on", scope="ES",
                         reason="desk", operator="alice", ts_event_ns=1)  # fmt: skip
    view.apply("control", cmd.to_bytes())
    health = {"last_look": 5.0, "kill_switches": {"ES": True, "global": False}, "lag_history": []}
    view.on_watch("http://t:1", health, windows, None)
    snap = view.snapshot()
    accounts = {}
    for key in sorted(windows["keys"], key=lambda k: k["latest_ns"]):
        if key["account"]["cash"] is not None:
            accounts[key["instrument"]] = key["account"]
    assert accounts and set(accounts) <= set(snap["instruments"])
    for name, account in accounts.items():
        shown = snap["instruments"][name]
        assert shown["position"] == account["position"]
        assert shown["last_price"] == account["price"]  # the console's tail had no decision
        assert shown["pnl"] == pytest.approx(
            account["cash"] + account["position"] * account["price"] - 1_000_000.0
        )
    # the switch the console read keeps its details; the one only the watchtower holds shows
    assert snap["kill_switches"]["ES"]["operator"] == "alice"
    assert snap["kill_switches"]["global"] == {
        "on": False, "operator": None, "reason": None, "ts_event_ns": None,
    }  # fmt: skip
    assert snap["watch"]["charts"] == instrument_series(windows)
    assert "lag_history" not in snap["watch"]["health"]
    # the lag series ends at the lag the health shows, both from one look
    board = HealthBoard()
    for i, lag in enumerate((10, 250, 12_722)):
        board.on_look(float(i), GroupHealth("g", "STABLE", 1, lag, {0: lag}), 5, {}, {}, [], {}, {})
    view.on_watch("http://t:1", board.snapshot(), windows, None)
    lag = view.snapshot()["watch"]
    assert lag["lag"] == {"t": [0.0, 1.0, 2.0], "lag": [10, 250, 12_722]}
    assert lag["health"]["workers"]["lag"] == 12_722
    # a failed read keeps the last answers and says why
    view.on_watch("http://t:1", None, None, "ClientConnectorError: refused")
    again = view.snapshot()["watch"]
    assert again["error"].startswith("ClientConnectorError")
    assert again["charts"] == snap["watch"]["charts"]
