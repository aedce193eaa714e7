"""A recorded quotes file with crossed and out-of-order quotes, fed with `tickwise feed`.

Quotes are built from the real ES trades in ../shared/data (bid one tick under the traded price,
ask at it), with some quotes crossed and some moved back in time. Through the real worker each
bad quote must be quarantined under its reason, and raw = clean + quarantined exactly, whether
the file has size columns or, as FX and indicative quotes come, none.
"""

from __future__ import annotations

import csv
import gzip
import uuid
from collections import Counter
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest

from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import CleanTick
from tickwise.schemas.topics import Topics
from tickwise.streams.cli import main
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.tap import read_values, spawn_worker, stop_process

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ES_FILE = ES / "es_trades_2013-09-01T17_to_09-03T09.csv.gz"
ROWS = 3000
FMT = "%Y-%m-%d %H:%M:%S.%f"


def build_quotes(path: Path, sizes: bool) -> dict[int, str]:
    """Write the quotes file (with size columns or, as FX quotes come, without); return row
    number -> the reason its quote must get."""
    expected: dict[int, str] = {}
    with gzip.open(ES_FILE, "rt", newline="") as src, open(path, "w", newline="") as out:
        reader = csv.DictReader(src)
        writer = csv.writer(out)
        writer.writerow(["time", "bid", "ask", "bid_size", "ask_size"][: 5 if sizes else 3])
        previous = ""
        for i, row in enumerate(islice(reader, ROWS)):
            price, when = float(row["Price"]), row["DateTime"]
            bid, ask = price - 0.25, price
            if i > 10 and i % 97 == 0:
                bid, ask = price + 0.25, price - 0.25
                expected[i] = "CROSSED_QUOTE"
            elif i > 10 and i % 131 == 0:
                earlier = datetime.strptime(previous, FMT) - timedelta(seconds=5)
                when = earlier.strftime(FMT)[:-3]
                expected[i] = "OUT_OF_ORDER"
            writer.writerow([when, bid, ask, row["Volume"], row["Volume"]][: 5 if sizes else 3])
            previous = row["DateTime"]
    return expected


@pytest.mark.skipif(not ES_FILE.exists(), reason=f"recorded data {ES_FILE} is absent")
@pytest.mark.parametrize("sizes", [True, False], ids=["with-sizes", "without-sizes"])
def test_recorded_quotes_with_crossed_and_late_quotes(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, sizes: bool
) -> None:
    path = tmp_path / "es_quotes.csv"
    expected = build_quotes(path, sizes)
    assert Counter(expected.values()) == {"CROSSED_QUOTE": 30, "OUT_OF_ORDER": 22}
    topics = Topics(topic_prefix)
    create_topics(kafka_bootstrap, topic_prefix, partitions=3)
    worker = spawn_worker(kafka_bootstrap, topic_prefix, f"quotes-{uuid.uuid4().hex[:8]}")
    try:
        feed = ["feed", "--file", str(path), "--symbol", "ES", "--tz", "America/Chicago"]
        assert (
            main([*feed, "--topic-prefix", topic_prefix, "--bootstrap-servers", kafka_bootstrap])
            == 0
        )
        quarantined = read_values(kafka_bootstrap, topics.quarantine, len(expected), 120)
        clean = read_values(kafka_bootstrap, topics.clean, ROWS - len(expected), 120)
    finally:
        stop_process(worker)

    records = [QuarantineRecord.model_validate_json(v) for _, v in quarantined]
    cleaned = [CleanTick.model_validate_json(v) for _, v in clean]
    assert len(cleaned) + len(records) == ROWS, "raw = clean + quarantined"
    offsets = sorted(x.source.offset for x in (*cleaned, *records))
    assert offsets == list(range(ROWS)), "every row exactly once (one instrument: one partition)"
    got = {int(r.tick_id.rsplit(":", 1)[1]): r.reason.value for r in records if r.tick_id}
    assert got == expected
    assert all((c.tick.bid_size is not None) is sizes for c in cleaned)
