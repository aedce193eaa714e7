"""The watchtower's web views: its health and its trading windows as JSON, for the console.

``GET /watch/health`` answers what the last look found (the workers' group and its lag, with
the lag of the recent looks, the broker, each feed's age, session and staleness, each audit
chain's head, the kill switches, the alarms on); ``GET /watch/windows`` the windows table, every
key or one instrument's (``?instrument=ES``), each key's account and its tumbling and hopping
windows, closed and open, oldest first. A console reads these instead of replaying the topics.

faust serves them (``app.page``) on its web server, which the watchtower starts only when
given ``--web-port``. They show positions and P&L, so they keep the console's doors: loopback
by default, TLS from a certificate and key, plain HTTP off loopback refused unless
``--insecure`` (``doors.check_listen``); every view needs the bearer token of a viewer or
better from the console's users configuration, and answers 401 without one. faust's own
table, router, statistics and graph pages stay off; its index answers ``{"status": "OK"}``.

The JSON is built by plain functions over mappings, tested without faust or Kafka.
"""

from __future__ import annotations

import math
import ssl
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tickwise.schemas.ticks import Instrument
from tickwise.streams.config import AnomalyConfig
from tickwise.streams.watch.health import GroupHealth
from tickwise.streams.watch.windows import HOPPING, TUMBLING, accuracy, window_specs
from tickwise.streams.web.auth import Users, bearer

HEALTH_PATH = "/watch/health"
WINDOWS_PATH = "/watch/windows"
LAG_LOOKS = 600  # looks whose lag /watch/health keeps: ten minutes at one a second
_INSTRUMENT = TypeAdapter(Instrument)


class BadQuery(ValueError):
    """A view's query string asks for something it cannot answer."""


def instrument_of(query: Mapping[str, str]) -> str | None:
    """The instrument ``?instrument=`` names (None: every key); ``BadQuery`` if not one.

    Examples
    --------
    >>> instrument_of({"instrument": "ES"}), instrument_of({})
    ('ES', None)
    """
    unknown = set(query) - {"instrument"}
    if unknown:
        raise BadQuery(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
    name = query.get("instrument")
    if name is None:
        return None
    try:
        return _INSTRUMENT.validate_python(name)
    except ValidationError as exc:
        raise BadQuery(f"not an instrument: {name[:40]!r}") from exc


@dataclass
class HealthBoard:
    """What the watchtower's last look found, kept for ``/watch/health``."""

    lags: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=LAG_LOOKS))
    last: dict[str, Any] = field(default_factory=lambda: {"last_look": None})

    def on_look(
        self,
        now: float,
        group: GroupHealth | Exception,
        max_lag: int,
        feeds: Mapping[str, float],
        in_session: Mapping[str, bool],
        firing: Iterable[tuple[str, str]],
        heads: Mapping[str, Any],
        kill_switches: Mapping[str, bool],
    ) -> None:
        """Keep one look's findings (``feeds``: wall s of each instrument's last tick)."""
        firing = sorted(firing)
        stale = {subject for code, subject in firing if code == "FEED_STALE"}
        workers: dict[str, Any] | None = None
        if not isinstance(group, Exception):
            self.lags.append((now, group.lag))
            workers = {
                "group": group.group,
                "state": group.state,
                "members": group.members,
                "lag": group.lag,
                "max_lag": max_lag,
                "lag_by_partition": {str(p): n for p, n in sorted(group.lag_by_partition.items())},
            }
        self.last = {
            "last_look": now,
            "broker": {
                "reachable": not isinstance(group, Exception),
                "error": str(group) if isinstance(group, Exception) else None,
            },
            "workers": workers,
            "feeds": {
                name: {
                    "age_s": max(0.0, now - feeds[name]) if name in feeds else None,
                    "in_session": open_now,
                    "stale": name in stale,
                }
                for name, open_now in sorted(in_session.items())
            },
            "chains": {name: {"seq": head["seq"]} for name, head in sorted(heads.items()) if head},
            "kill_switches": dict(sorted(kill_switches.items())),
            "firing": [{"code": code, "subject": subject} for code, subject in firing],
        }

    def snapshot(self) -> dict[str, Any]:
        """The last look's findings and the lag of the looks before it, as JSON-ready data."""
        return {**self.last, "lag_history": [[t, lag] for t, lag in self.lags]}


@dataclass(frozen=True)
class WebDoor:
    """Where the views listen and who may read them (``doors.check_listen`` gave the TLS)."""

    port: int
    users: Users
    host: str = "127.0.0.1"
    ssl_context: ssl.SSLContext | None = None

    def settings(self) -> dict[str, Any]:
        """The faust app settings that serve the views and nothing else of faust's."""
        return {
            "web_enabled": True,
            "web_port": self.port,
            "web_bind": self.host,
            "web_host": self.host,
            "web_ssl_context": self.ssl_context,
            "web_router_enabled": False,
            "web_tables_enabled": False,
            "web_stats_enabled": False,
            "web_graph_enabled": False,
            "web_metrics_enabled": False,
        }


def _windows(state: Mapping[str, Any], spec: str) -> list[dict[str, Any]]:
    """One family's windows of a key, closed then open, oldest first, with their accuracy."""
    closed = [{**w, "open": False} for w in state["closed"][spec]]
    still = sorted(state["open"][spec].values(), key=lambda w: w["start_ns"])
    return [{**w, "accuracy": accuracy(w)} for w in closed + [{**w, "open": True} for w in still]]


def windows_json(
    states: Iterable[tuple[str, Any]], config: AnomalyConfig, instrument: str | None = None
) -> dict[str, Any]:
    """The windows of every key (``states``: the trading-windows table's items), or of one
    instrument's keys, sorted by key.

    Examples
    --------
    >>> from tickwise.streams.watch.windows import new_state
    >>> out = windows_json([("ES|m|v1", new_state())], AnomalyConfig(window_s=60))
    >>> out["tumbling_s"], [k["instrument"] for k in out["keys"]]
    (60.0, ['ES'])
    """
    tumbling, hopping = window_specs(config)
    keys = []
    for key, state in sorted(states, key=lambda kv: kv[0]):
        name, model_id, version = key.split("|")
        if state is None or (instrument is not None and name != instrument):
            continue
        keys.append(
            {
                "key": key,
                "instrument": name,
                "model_id": model_id,
                "model_version": int(version[1:]),
                "latest_ns": state["latest_ns"],
                "account": {
                    "cash": state["cash"],
                    "position": state["position"],
                    "price": state["price"],
                    "realized_pnl": state["realized"],
                },
                "firing": list(state["firing"]),
                TUMBLING: _windows(state, TUMBLING),
                HOPPING: _windows(state, HOPPING),
            }
        )
    return {
        "tumbling_s": tumbling.size_ns / 1e9,
        "hopping_s": hopping.size_ns / 1e9,
        "hopping_step_s": hopping.step_ns / 1e9,
        "keys": keys,
    }


def _finite(value: Any) -> Any:
    """JSON has no infinity or NaN: such a float becomes null (the page shows a gap)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def add_views(
    app: Any, board: HealthBoard, windows: Any, config: AnomalyConfig, users: Users
) -> None:
    """Declare ``/watch/health`` and ``/watch/windows`` on the faust ``app``.

    ``windows``: the trading-windows table; ``users``: who may read (a viewer or better).
    """

    def denied(view: Any, request: Any) -> Any:
        if users.authenticate(bearer(request.headers.get("Authorization"))) is None:
            return view.error(
                401,
                "log in with a viewer or operator token",
                headers={"WWW-Authenticate": 'Bearer realm="tickwise"'},
            )
        return None

    @app.page(HEALTH_PATH)
    async def watch_health(self: Any, request: Any) -> Any:
        refused = denied(self, request)
        return refused or self.json(_finite(board.snapshot()))

    @app.page(WINDOWS_PATH)
    async def watch_windows(self: Any, request: Any) -> Any:
        refused = denied(self, request)
        if refused:
            return refused
        try:
            instrument = instrument_of(dict(request.query))
        except BadQuery as exc:
            return self.error(400, str(exc))
        return self.json(_finite(windows_json(list(windows.items()), config, instrument)))
