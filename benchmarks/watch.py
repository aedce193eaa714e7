"""The watchtower under load: how far ``tickwise watch`` falls behind a worker at full speed.

    python -m benchmarks.watch                        # 200,000 ticks, the worst case (~2 min)
    python -m benchmarks.watch --ticks 20000          # quick

Broker: ``--bootstrap-servers``, else ``KAFKA_BOOTSTRAP_SERVERS``, else a ``LocalBroker`` the
benchmark starts and stops itself. Every run uses its own topic prefix.

1. **Beside a worker.** A watchtower starts on fresh topics, ``--ticks`` synthetic ticks are
   preloaded to a one-partition ``ticks.raw`` (the watchtower's tick reader reads their keys,
   as it reads a live feed: its ``tickwise_watch_ticks_read_total`` gives its ticks/s and its
   CPU per tick), then a ``tickwise worker`` runs through them at full speed, as in
   ``benchmarks.live``. Every ``--sample-s`` the benchmark scrapes the watchtower's
   ``tickwise_watch_checked_total`` (messages of ``decisions`` and ``audit`` it has checked).
   Afterwards it reads both topics for the time the worker produced each record (Kafka's
   ``CreateTime``). At each sample, *behind* = records the worker had produced by then -
   records checked, and *lag* = the age of the oldest record not yet checked. *Catch-up* is
   the time from the worker's last record until the watchtower had checked them all.
2. **Backlog.** A second watchtower (a group of its own) starts on the same, now full, topics:
   its records/s with the CPU to itself, the capacity the first phase draws on.

The default configuration is the worst case for the watchtower: every HOLD published and
recorded one by one (``[audit] holds = "each"``, a decision and an audit record per tick) and
the plain ``threshold`` rule, which trades on every signal. ``--config defaults`` runs the
built-in configuration (what ``benchmarks.live`` measures), ``--config PATH`` another; the
benchmark adds the ``[watch]`` section itself.
"""

from __future__ import annotations

import argparse
import bisect
import os
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, command_line, table, write_results
from benchmarks.live import SEED, broker_for, new_prefix, output_times, wait_committed
from tickwise.schemas.topics import Topics
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.bootstrap import add_bootstrap_argument
from tickwise.streams.live.broker import free_port
from tickwise.streams.live.feed import publish
from tickwise.streams.live.metrics import scrape
from tickwise.streams.live.tap import spawn_watch, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

DEFAULTS = "defaults"  # --config defaults: the built-in configuration, as benchmarks.live runs
WORST_CASE = '[decision]\nrule = "threshold"\n\n[audit]\nholds = "each"\n'
CHECKED = "tickwise_watch_checked_total"
TICKS_READ = "tickwise_watch_ticks_read_total"
# [watch] stale_after_s, the tick reader's lookback: the preload is read however long the
# watchtower takes to start on a loaded machine
LOOKBACK_S = 3600.0
FEED_AGE = "tickwise_watch_feed_age_seconds"
TICK_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """What the watchtower had checked (``decisions`` + ``audit``) at wall time ``t``."""

    t: float
    checked: int


def checked_of(port: int, topics: Topics) -> int | None:
    """Messages of ``decisions`` and ``audit`` the watchtower on ``port`` has checked."""
    try:
        samples = scrape(port, timeout=2.0)
    except OSError:
        return None
    wanted = {topics.decisions, topics.audit}
    return int(
        sum(
            v
            for (name, labels), v in samples.items()
            if name == CHECKED and dict(labels).get("topic") in wanted
        )
    )


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process so far (Linux)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK_S


class Sampler:
    """Scrapes the watchtower's checked count every ``period`` s in a thread."""

    def __init__(self, port: int, topics: Topics, period: float) -> None:
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._args = (port, topics, period)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        port, topics, period = self._args
        while not self._stop.is_set():
            checked = checked_of(port, topics)
            if checked is not None:
                self.samples.append(Sample(time.time(), checked))
            self._stop.wait(period)

    def last(self) -> int:
        return self.samples[-1].checked if self.samples else 0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def lag_figures(produced_ms: list[int], samples: list[Sample]) -> dict[str, Any]:
    """Behind and lag at each sample, from the records' CreateTimes (ms) and the samples.

    *behind*: records produced by the sample's time and not yet checked; *lag*: seconds since
    the oldest of those was produced (0 when none). *catch_up_s*: from the last record's
    production to the first sample that had checked them all (None if none had).

    Examples
    --------
    >>> s = [Sample(1.0, 0), Sample(2.0, 1), Sample(3.0, 4), Sample(3.5, 4)]
    >>> f = lag_figures([500, 1500, 1800, 2500], s)
    >>> f["max_behind"], f["max_lag_s"], f["catch_up_s"]
    (2, 0.5, 0.5)
    """
    times = sorted(produced_ms)
    total = len(times)
    series = []
    for s in samples:
        made = bisect.bisect_right(times, s.t * 1000)
        behind = max(made - s.checked, 0)
        lag = (s.t * 1000 - times[s.checked]) / 1000 if behind and s.checked < total else 0.0
        series.append({"t": round(s.t, 3), "behind": behind, "lag_s": round(lag, 3)})
    done = next((s.t for s in samples if s.checked >= total), None)
    last = times[-1] / 1000 if times else None
    return {
        "records": total,
        "max_behind": max((p["behind"] for p in series), default=0),
        "max_lag_s": max((p["lag_s"] for p in series), default=0.0),
        "catch_up_s": round(max(done - last, 0.0), 2) if done and last else None,
        "series": series,
    }


def watch_config(base: str | None, tmp: Path, group: str, worker_group: str) -> str:
    """The worker's TOML with the ``[watch]`` section of this run; its path. ``base``: a TOML
    file, ``DEFAULTS`` for the built-in configuration, None for the worst case."""
    text = WORST_CASE if base is None else "" if base == DEFAULTS else Path(base).read_text()
    if "watch" in tomllib.loads(text):
        raise SystemExit("the benchmark writes the [watch] section itself: drop it from --config")
    path = tmp / f"{group}.toml"
    path.write_text(
        f'{text}\n[watch]\ngroup_id = "{group}"\nworker_group = "{worker_group}"\n'
        f"stale_after_s = {LOOKBACK_S}\n"
    )
    return str(path)


def ticks_read(port: int) -> int | None:
    """Ticks of ``ticks.raw`` the watchtower on ``port`` has read."""
    try:
        return int(scrape(port, timeout=2.0).get((TICKS_READ, ()), 0))
    except OSError:
        return None


def read_ticks(port: int, pid: int, ticks: int, timeout: float) -> dict[str, Any]:
    """Until the watchtower has read ``ticks`` raw ticks: its ticks/s and CPU us per tick, from
    the first sample that saw some (its first batch in) to the first that saw them all."""
    deadline = time.monotonic() + timeout
    first: tuple[float, int, float] | None = None
    while time.monotonic() < deadline:
        n = ticks_read(port)
        if n:
            now, cpu = time.time(), cpu_s(pid)
            if first is None:
                first = (now, n, cpu)
            if n >= ticks:
                seconds, cpu_used, timed = now - first[0], cpu - first[2], n - first[1]
                return {  # None: all read between two samples, too quick to time
                    "ticks": n,
                    "seconds": round(seconds, 2),
                    "ticks_per_s": round(timed / max(seconds, 1e-3)) if timed else None,
                    "cpu_us_per_tick": round(cpu_used / timed * 1e6, 2) if timed else None,
                }
        time.sleep(0.05)
    raise RuntimeError(
        f"the watchtower read {ticks_read(port)} of {ticks} ticks in {timeout:.0f} s"
    )


def wait_reading(port: int, timeout: float) -> None:
    """Until the watchtower shows a feed's age: it has joined its group and reads ticks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(name == FEED_AGE for name, _ in scrape(port, timeout=2.0)):
                return
        except OSError:
            pass  # not serving yet
        time.sleep(0.2)
    raise RuntimeError(f"the watchtower read no tick within {timeout:.0f} s")


def wait_checked(sampler: Sampler, total: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sampler.last() >= total:
            return True
        time.sleep(0.1)
    return False


def run(
    bootstrap: str, ticks: int, config: str | None, period: float, timeout: float, backlog: bool
) -> dict[str, Any]:
    prefix = new_prefix("watch")
    topics = Topics(prefix)
    create_topics(bootstrap, prefix, partitions=1)
    app_id = f"bench-watch-worker-{uuid.uuid4().hex[:6]}"
    results: dict[str, Any] = {"ticks": ticks, "prefix": prefix}
    with tempfile.TemporaryDirectory(prefix="tickwise-bench-watch-") as tmp_dir:
        tmp = Path(tmp_dir)
        cfg = watch_config(config, tmp, "watch-beside", app_id)
        port = free_port()
        watch = spawn_watch(bootstrap, prefix, cfg, port, str(tmp / "watch.log"))
        sampler = None
        try:
            publish(synthetic(SEED, ticks), bootstrap, topics.raw)
            results["tick_reader"] = read_ticks(port, watch.pid, ticks, 300)
            wait_reading(port, 120)  # its group join is not the load's
            sampler = Sampler(port, topics, period)
            cpu0 = cpu_s(watch.pid)
            worker = spawn_worker(bootstrap, prefix, app_id, cfg, checkpoint_dir=str(tmp))
            try:
                finished = wait_committed(bootstrap, app_id, topics.raw, 1, ticks, timeout)
            finally:
                stop_process(worker)
            seen = output_times(bootstrap, [topics.decisions, topics.audit])
            produced = [ms for times in seen.values() for _, ms in times]
            caught_up = wait_checked(sampler, len(produced), timeout)
            sampler.stop()
            watch_cpu = cpu_s(watch.pid) - cpu0
        finally:
            if sampler is not None:
                sampler.stop()
            stop_process(watch)
        figures = lag_figures(produced, sampler.samples)
        first, last = min(produced) / 1000, max(produced) / 1000
        results["beside"] = {
            "worker_finished": finished,
            "caught_up": caught_up,
            "decisions": len(seen[topics.decisions]),
            "audit": len(seen[topics.audit]),
            "records_per_tick": round(len(produced) / ticks, 2),
            "worker_seconds": round(last - first, 2),
            "worker_records_per_s": round(len(produced) / max(last - first, 1e-3)),
            "watch_cpu_s": round(watch_cpu, 1),
            "watch_cpu_us_per_record": round(watch_cpu / max(len(produced), 1) * 1e6, 1),
            **figures,
        }
        if backlog:
            results["backlog"] = drain(bootstrap, prefix, tmp, config, app_id, len(produced))
    return results


def drain(
    bootstrap: str, prefix: str, tmp: Path, config: str | None, worker_group: str, total: int
) -> dict[str, Any]:
    """A fresh watchtower over the full topics: seconds and records/s until it checked all."""
    topics = Topics(prefix)
    cfg = watch_config(config, tmp, "watch-backlog", worker_group)
    port = free_port()
    started = time.time()
    watch = spawn_watch(bootstrap, prefix, cfg, port, str(tmp / "watch-backlog.log"))
    sampler = Sampler(port, topics, 0.1)
    try:
        done = wait_checked(sampler, total, 600)
        cpu = cpu_s(watch.pid)
    finally:
        sampler.stop()
        stop_process(watch)
    moving = [s for s in sampler.samples if s.checked > 0]
    first = moving[0].t if moving else started
    end = next((s.t for s in sampler.samples if s.checked >= total), time.time())
    return {
        "records": total,
        "checked_all": done,
        "startup_s": round(first - started, 1),
        "seconds": round(end - first, 2),
        "records_per_s": round(total / max(end - first, 1e-3)),
        "watch_cpu_s": round(cpu, 1),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200_000, help="ticks preloaded")
    parser.add_argument("--sample-s", type=float, default=0.25, help="scrape period, s")
    parser.add_argument("--timeout", type=float, default=900.0, help="each phase, s")
    parser.add_argument("--skip-backlog", action="store_true", help="no second watchtower")
    parser.add_argument("--out", default=str(RESULTS / "watch.json"))
    parser.add_argument(
        "--config",
        default=None,
        help="TOML of the worker and watchtower, without a [watch] section (default: "
        '[decision] rule = "threshold", [audit] holds = "each"; "defaults": the built-in '
        "configuration, as benchmarks.live runs it)",
    )
    add_bootstrap_argument(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with broker_for(args.bootstrap_servers) as bootstrap:
        results = run(
            bootstrap, args.ticks, args.config, args.sample_s, args.timeout, not args.skip_backlog
        )
    beside = results["beside"]
    rows = [
        {
            "what": "worker, decisions + audit",
            "records": beside["records"],
            "seconds": beside["worker_seconds"],
            "records_per_s": beside["worker_records_per_s"],
        },
    ]
    if "backlog" in results:
        b = results["backlog"]
        rows.append(
            {
                "what": "watchtower, backlog alone",
                "records": b["records"],
                "seconds": b["seconds"],
                "records_per_s": b["records_per_s"],
            }
        )
    reader = results["tick_reader"]
    rows.insert(
        0,
        {
            "what": "watchtower, raw ticks read",
            "records": reader["ticks"],
            "seconds": reader["seconds"],
            "records_per_s": reader["ticks_per_s"],
        },
    )
    print(table(rows, ["what", "records", "seconds", "records_per_s"]))
    print(
        f"beside the worker: max {beside['max_behind']:,} records behind, max lag "
        f"{beside['max_lag_s']:.2f} s, caught up {beside['catch_up_s']} s after the worker's "
        f"last record; {beside['watch_cpu_us_per_record']} us of watchtower CPU per record; "
        f"{reader['cpu_us_per_tick']} us per raw tick read"
    )
    write_results(args.out, command_line(), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
