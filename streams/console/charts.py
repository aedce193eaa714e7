"""The console's chart series, from the watchtower's views: per instrument over its tumbling
windows, and the workers' lag over the watchtower's recent looks.

Pure: JSON in (what ``/watch/windows`` and ``/watch/health`` answer), columns out, one list per
series, as uPlot draws them (x first, ``None`` for a gap). An instrument traded by several model
versions has a key per version; their windows of the same start add up (orders, refusals, P&L,
scored signals) and the position is the account's, which every key of the instrument reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SERIES = ("pnl", "realized_pnl", "position", "orders", "refusals", "accuracy")


def instrument_series(windows: Mapping[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """Per instrument: ``t`` (window end, Unix s) and one column per name of ``SERIES``.

    ``pnl`` and ``realized_pnl`` add up from the first window shown (P&L over the windows);
    ``accuracy`` is None for a window with no scored signal.

    Examples
    --------
    >>> w = {"start_ns": 0, "end_ns": 60 * 10**9, "orders": 2, "refusals": {"max_position": 1},
    ...      "marked_pnl": 5.0, "realized_pnl": 1.0, "position": 3.0, "outcomes": 4, "hits": 3}
    >>> es = instrument_series({"keys": [{"instrument": "ES", "latest_ns": 1, "tumbling": [w]}]})
    >>> es["ES"]["t"], es["ES"]["pnl"], es["ES"]["refusals"], es["ES"]["accuracy"]
    ([60.0], [5.0], [1], [0.75])
    """
    slots: dict[str, dict[int, dict[str, Any]]] = {}
    # keys oldest first: a later key's position overwrites an earlier one's for the same window
    for key in sorted(windows.get("keys", []), key=lambda k: k.get("latest_ns") or 0):
        mine = slots.setdefault(key["instrument"], {})
        for w in key.get("tumbling", []):
            slot = mine.setdefault(
                w["end_ns"],
                {"marked": 0.0, "realized": 0.0, "orders": 0, "refusals": 0, "n": 0, "hits": 0},
            )
            slot["marked"] += w["marked_pnl"] or 0.0
            slot["realized"] += w["realized_pnl"] or 0.0
            slot["orders"] += w["orders"]
            slot["refusals"] += sum(w["refusals"].values())
            slot["n"] += w["outcomes"]
            slot["hits"] += w["hits"]
            slot["position"] = w.get("position")
    out: dict[str, dict[str, list[Any]]] = {}
    for instrument, by_end in sorted(slots.items()):
        cols: dict[str, list[Any]] = {"t": [], **{name: [] for name in SERIES}}
        pnl = realized = 0.0
        for end_ns, slot in sorted(by_end.items()):
            pnl += slot["marked"]
            realized += slot["realized"]
            cols["t"].append(end_ns / 1e9)
            cols["pnl"].append(pnl)
            cols["realized_pnl"].append(realized)
            cols["position"].append(slot["position"])
            cols["orders"].append(slot["orders"])
            cols["refusals"].append(slot["refusals"])
            cols["accuracy"].append(slot["hits"] / slot["n"] if slot["n"] else None)
        out[instrument] = cols
    return out


def lag_series(health: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The workers' lag on ``ticks.raw`` at each of the watchtower's recent looks (wall s).

    Examples
    --------
    >>> lag_series({"lag_history": [[10.0, 3], [11.0, 0]]})
    {'t': [10.0, 11.0], 'lag': [3, 0]}
    """
    history = health.get("lag_history") or []
    return {"t": [t for t, _ in history], "lag": [lag for _, lag in history]}
