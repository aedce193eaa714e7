"""Scale-out: one versus two ``tickwise worker`` processes on a two-partition ``ticks.raw``.

    python -m benchmarks.scaleout                  # 100,000 ticks per run
    python -m benchmarks.scaleout --ticks 20000    # a quick run (~1-2 min)

For each worker count the benchmark makes fresh topics with two partitions, starts the workers
in one consumer group, waits until the group has assigned both partitions (so no partition moves
while ticks flow), then publishes ``--ticks`` synthetic ticks of four instruments chosen so that
each partition gets two. Rates come from the outputs' ``CreateTime`` as in ``benchmarks.live``:
per partition (i.e. per worker when there are two) and in total. Both cores of these machines
are shared with the broker, the feed and other users, so there is no target: this shows how
much a second process buys here, not on a real cluster.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
import zlib
from typing import Any

from confluent_kafka.admin import AdminClient

from benchmarks.common import RESULTS, add_config_argument, command_line, table, write_results
from benchmarks.live import (
    SEED,
    broker_for,
    new_prefix,
    output_times,
    output_topics,
    span_rate,
    wait_committed,
)
from tickwise.schemas.topics import Topics
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.bootstrap import add_bootstrap_argument
from tickwise.streams.live.feed import publish
from tickwise.streams.live.security import env_client_config
from tickwise.streams.live.tap import spawn_worker, stop_process
from tickwise.streams.sources import synthetic

PARTITIONS = 2
CANDIDATES = ("ES", "NQ", "CL", "GC", "ZN", "ZB", "6E", "YM", "RTY", "SI", "HG", "NG")


def balanced_instruments(per_partition: int = 2) -> list[str]:
    """Instruments that librdkafka's default partitioner (CRC32 of the key) spreads evenly."""
    chosen: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for name in CANDIDATES:
        bucket = chosen[zlib.crc32(name.encode()) % PARTITIONS]
        if len(bucket) < per_partition:
            bucket.append(name)
    return sorted(n for names in chosen.values() for n in names)


def wait_assigned(bootstrap: str, group: str, topic: str, members: int, timeout: float) -> None:
    """Wait until ``members`` consumers of ``group`` hold all partitions of ``topic``."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **env_client_config()})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = admin.describe_consumer_groups([group])[group].result(10)
        owners = [
            {tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic}
            for m in desc.members
        ]
        owning = [o for o in owners if o]
        if len(owning) == members and set().union(*owning) == set(range(PARTITIONS)):
            return
        time.sleep(1.0)
    raise RuntimeError(f"{members} workers did not share {topic} within {timeout:.0f} s")


def run(
    bootstrap: str, workers: int, ticks: int, timeout: float, config: str | None = None
) -> dict[str, Any]:
    """Time ``workers`` processes over ``ticks`` on a fresh two-partition topic."""
    prefix = new_prefix(f"scale{workers}")
    topics = Topics(prefix)
    create_topics(bootstrap, prefix, partitions=PARTITIONS)
    app_id = f"bench-scale-{uuid.uuid4().hex[:6]}"
    procs = []
    with tempfile.TemporaryDirectory(prefix="tickwise-bench-ckpt-") as ckpt:
        try:
            for _ in range(workers):
                procs.append(spawn_worker(bootstrap, prefix, app_id, config, checkpoint_dir=ckpt))
            wait_assigned(bootstrap, app_id, topics.raw, workers, 180)
            publish(synthetic(SEED, ticks, balanced_instruments()), bootstrap, topics.raw)
            done = wait_committed(bootstrap, app_id, topics.raw, PARTITIONS, ticks, timeout)
        finally:
            for proc in procs:
                stop_process(proc)
    seen = output_times(bootstrap, output_topics(prefix))
    lineage = seen[topics.clean] + seen[topics.quarantine]
    everything = [pt for times in seen.values() for pt in times]
    total, first, last = span_rate([t for _, t in everything], len(lineage))
    row: dict[str, Any] = {
        "workers": workers,
        "ticks": ticks,
        "accounted": len(lineage),
        "finished": done,
        "seconds": round((last - first) / 1000, 2),
        "ticks_per_s": round(total),
    }
    for p in range(PARTITIONS):
        count = sum(1 for q, _ in lineage if q == p)
        rate, _, _ = span_rate([t for q, t in everything if q == p], count)
        row[f"p{p}_ticks"] = count
        row[f"p{p}_ticks_per_s"] = round(rate)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=1200.0, help="per run, seconds")
    parser.add_argument("--out", default=str(RESULTS / "scaleout.json"))
    add_bootstrap_argument(parser)
    add_config_argument(parser)
    args = parser.parse_args(argv)
    rows = []
    with broker_for(args.bootstrap_servers) as bootstrap:
        for workers in (1, 2):
            row = run(bootstrap, workers, args.ticks, args.timeout, args.config)
            print(json.dumps(row), flush=True)
            rows.append(row)
    cols = ["workers", "ticks", "seconds", "ticks_per_s", "p0_ticks_per_s", "p1_ticks_per_s"]
    print(table(rows, cols))
    speedup = rows[1]["ticks_per_s"] / rows[0]["ticks_per_s"]
    print(f"two workers / one: {speedup:.2f}x")
    write_results(args.out, command_line(), {"rows": rows, "speedup": round(speedup, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
