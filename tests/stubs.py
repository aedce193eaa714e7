"""Shared builders for the broker-free tests: payloads, models and hypothesis strategies.

Builders take keyword overrides so a test states only what matters to it, e.g.
``trade(price=-1.0)`` is a valid trade message except for its price.
"""

from __future__ import annotations

import base64
import csv
import gzip
import itertools
import json
import random
import shutil
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hypothesis import strategies as st

from tests.oracle.validator import Validator
from tickwise.schemas.decisions import (
    AUDIT_ADAPTER,
    AuditRecord,
    Contribution,
    ControlCommand,
    Decision,
    FeatureVector,
    HoldSummary,
    Side,
    Signal,
)
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import CleanTick, QuoteTick, SourceRef, TradeTick
from tickwise.schemas.topics import Topics
from tickwise.streams.config import (
    AuditConfig,
    DecisionConfig,
    LabelConfig,
    ModelConfig,
    SignalsConfig,
    TickwiseConfig,
    ValidationConfig,
    load_config,
)
from tickwise.streams.sources import RawRecord

if TYPE_CHECKING:
    from tests.oracle.pipeline import Pipeline
    from tickwise.replay.backtest import BacktestResult
    from tickwise.streams.live.state import EngineState, Output

T0_NS = 1_704_205_800 * 10**9  # 2024-01-02T14:30:00Z
# Real E-mini S&P 500 trades beside the repository (../shared/data); tests skip without them.
ES_TRADES = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "es_trades_2013-09-01T17_to_09-03T09.csv.gz"
)
MS = 10**6
S = 10**9


def src(offset: int = 0, topic: str = "ticks.raw", partition: int = 0) -> SourceRef:
    """A source reference on ``ticks.raw``."""
    return SourceRef(topic=topic, partition=partition, offset=offset)


def trade_msg(**overrides: object) -> dict[str, object]:
    """A valid trade message as a dict; ``overrides`` replace fields, ``None`` removes one."""
    msg: dict[str, object] = {
        "kind": "trade",
        "tick_id": "t-1",
        "instrument": "ES",
        "ts_event_ns": T0_NS,
        "price": 4700.25,
        "size": 3.0,
    }
    return _apply(msg, overrides)


def quote_msg(**overrides: object) -> dict[str, object]:
    """A valid quote message as a dict; ``overrides`` replace fields, ``None`` removes one."""
    msg: dict[str, object] = {
        "kind": "quote",
        "tick_id": "q-1",
        "instrument": "ES",
        "ts_event_ns": T0_NS,
        "bid": 4700.0,
        "ask": 4700.25,
        "bid_size": 10.0,
        "ask_size": 12.0,
    }
    return _apply(msg, overrides)


def _apply(msg: dict[str, object], overrides: dict[str, object]) -> dict[str, object]:
    for key, value in overrides.items():
        if value is None:
            msg.pop(key, None)
        else:
            msg[key] = value
    return msg


def trade(**overrides: object) -> bytes:
    """Raw ``ticks.raw`` bytes of a trade (see ``trade_msg``)."""
    return json.dumps(trade_msg(**overrides)).encode()


def quote(**overrides: object) -> bytes:
    """Raw ``ticks.raw`` bytes of a quote (see ``quote_msg``)."""
    return json.dumps(quote_msg(**overrides)).encode()


def trade_tick(i: int, price: float, ts_ns: int | None = None, instrument: str = "ES") -> TradeTick:
    """The ``i``-th trade of a path, one second apart unless ``ts_ns`` is given."""
    return TradeTick(
        tick_id=f"{instrument}-{i}",
        instrument=instrument,
        ts_event_ns=T0_NS + i * S if ts_ns is None else ts_ns,
        price=price,
        size=1.0,
    )


def path_ticks(
    prices: Sequence[float], gaps_ns: Sequence[int], instrument: str = "ES"
) -> list[TradeTick]:
    """Trades at ``prices`` whose timestamps advance by ``gaps_ns`` (first gap from ``T0_NS``)."""
    ts, out = T0_NS, []
    for i, (price, gap) in enumerate(zip(prices, gaps_ns, strict=True)):
        ts += gap
        out.append(trade_tick(i, price, ts, instrument))
    return out


def clean(tick: TradeTick | QuoteTick, offset: int = 0) -> CleanTick:
    """Wrap a tick as the validator would."""
    return CleanTick(tick=tick, source=src(offset))


def feature_vector(
    tick_id: str = "t-1",
    ts_ns: int = T0_NS,
    price: float = 100.0,
    instrument: str = "ES",
    **values: float,
) -> FeatureVector:
    """A feature vector with the given feature values (``x=0.0`` unless some are given)."""
    return FeatureVector(
        instrument=instrument,
        tick_id=tick_id,
        ts_event_ns=ts_ns,
        price=price,
        values=values or {"x": 0.0},
    )


def signal(
    side: Side = Side.BUY,
    tick_id: str = "t-1",
    instrument: str = "ES",
    ts_ns: int = T0_NS,
    score: float = 0.7,
) -> Signal:
    """A model signal on one tick."""
    return Signal(
        signal_id=f"sig-{tick_id}",
        instrument=instrument,
        tick_id=tick_id,
        ts_event_ns=ts_ns,
        model_id="logreg",
        model_version=1,
        score=score,
        side=side,
        confidence=min(1.0, abs(score - 0.5) * 2.0),
        n_trained=10,
        explanation=[Contribution(feature="x", value=1.0, weight=0.5, contribution=0.5)],
    )


def fast_config(warmup: int = 5, horizon_s: float = 0.3, **model: object) -> TickwiseConfig:
    """A config whose model warms up after a few labels, for short sequences.

    The outlier rule is off: these sequences draw arbitrary price paths to test the model, and
    a steep one would (rightly) be quarantined as outliers by the default validation rules.
    """
    return TickwiseConfig(
        validation=ValidationConfig(outlier_k=0.0),
        model=ModelConfig(warmup_labels=warmup, **model),  # type: ignore[arg-type]
        label=LabelConfig(horizon_s=horizon_s),
    )


def every_tick(config: TickwiseConfig) -> TickwiseConfig:
    """``config`` publishing and auditing every decided tick on its own (each HOLD a decision
    and a record, every signal published): for tests about what each decision carries."""
    return config.model_copy(
        update={"audit": AuditConfig(holds="each"), "signals": SignalsConfig(every="decision")}
    )


def audit_entries(lines: Iterable[bytes]) -> list[AuditRecord | HoldSummary]:
    """The audit topic's (or audit.jsonl's) messages, parsed as their kind."""
    return [AUDIT_ADAPTER.validate_json(line) for line in lines]


def open_at_end(lines: list[bytes]) -> list[bytes]:
    """``lines`` of audit.jsonl without the summaries a replay closes at the end of its input.

    A live worker leaves those runs open; a prefix of the input closes them early. Each is its
    instrument's last entry: a summary closed for any other reason is followed by a record, or
    by the run whose first HOLD closed it.
    """
    last: dict[str, int] = {}
    for i, entry in enumerate(audit_entries(lines)):
        last[entry.instrument] = i if isinstance(entry, HoldSummary) else -1
    closed = set(last.values()) - {-1}
    return [line for i, line in enumerate(lines) if i not in closed]


def threshold_rule(config: TickwiseConfig) -> TickwiseConfig:
    """``config`` under the threshold rule (every BUY or SELL signal trades, whatever it costs).

    For tests of what follows an order (fills, audit, canary sizing, report figures, metrics):
    they need a short stream that trades a lot, and the default edge rule rightly trades little
    on a model this young. The rule itself is tested in ``test_decision_rule``.
    """
    return config.model_copy(update={"decision": DecisionConfig(rule="threshold")})


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a CSV (gzipped when ``path`` ends in .gz) and return its path."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as fh:  # type: ignore[operator]
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --- hypothesis strategies ----------------------------------------------------------------

instruments = st.from_regex(r"[A-Za-z0-9._:/\-]{1,12}", fullmatch=True)
tick_ids = st.text(min_size=1, max_size=20)
timestamps = st.integers(min_value=0, max_value=2**63 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)
positive_prices = st.floats(min_value=1e-4, max_value=1e7, allow_nan=False)
sizes = st.floats(min_value=0.0, max_value=1e9, allow_nan=False, exclude_min=True)
_side = st.floats(min_value=0.0, max_value=1e6)
# A quote's (bid size, ask size): both sides, or neither (FX and indicative quotes have none)
book_sizes = st.tuples(_side, _side) | st.just((None, None))


@st.composite
def trade_ticks(draw: st.DrawFn) -> TradeTick:
    return TradeTick(
        tick_id=draw(tick_ids),
        instrument=draw(instruments),
        ts_event_ns=draw(timestamps),
        price=draw(finite),
        size=draw(finite),
        seq=draw(st.none() | st.integers(min_value=-(2**63), max_value=2**63)),
        ts_recv_ns=draw(st.none() | timestamps),
    )


@st.composite
def quote_ticks(draw: st.DrawFn) -> QuoteTick:
    """Any quote the contract holds: sizes both given, both absent, or (v2) one side only."""
    bid_size, ask_size = draw(st.none() | finite), draw(st.none() | finite)
    version = 1 if bid_size is not None and ask_size is not None and draw(st.booleans()) else 2
    return QuoteTick(
        schema_version=version,
        tick_id=draw(tick_ids),
        instrument=draw(instruments),
        ts_event_ns=draw(timestamps),
        bid=draw(finite),
        ask=draw(finite),
        bid_size=bid_size,
        ask_size=ask_size,
        seq=draw(st.none() | st.integers(min_value=0, max_value=2**40)),
        ts_recv_ns=draw(st.none() | timestamps),
    )


@st.composite
def valid_trades(draw: st.DrawFn) -> TradeTick:
    """Trades the validator must accept on a fresh instrument (positive finite price and size)."""
    return TradeTick(
        tick_id=draw(tick_ids),
        instrument=draw(instruments),
        ts_event_ns=draw(timestamps),
        price=draw(positive_prices),
        size=draw(sizes),
    )


@st.composite
def valid_quotes(draw: st.DrawFn) -> QuoteTick:
    """Quotes the validator must accept on a fresh instrument (positive, not crossed, sizes
    on both sides or on neither)."""
    bid = draw(positive_prices)
    bid_size, ask_size = draw(book_sizes)
    return QuoteTick(
        tick_id=draw(tick_ids),
        instrument=draw(instruments),
        ts_event_ns=draw(timestamps),
        bid=bid,
        ask=bid + draw(st.floats(min_value=0.0, max_value=100.0)),
        bid_size=bid_size,
        ask_size=ask_size,
    )


def quarantined_bytes(record: QuarantineRecord) -> bytes:
    """The raw bytes a quarantine record kept, decoded from its ``raw_encoding``."""
    if record.raw_encoding == "base64":
        return base64.b64decode(record.raw, validate=True)
    return record.raw.encode("utf-8")


class OneVerdictValidator(Validator):
    """A validator for configs that do not reorder: exactly one verdict per message, unwrapped.

    The validator returns a list (a reordering config may hold a tick and release it later);
    tests of the per-message rules assert that there is exactly one and look at it.
    """

    def on_raw(self, raw: bytes, source: SourceRef, reinjected: bool = False):  # type: ignore[override]
        verdicts = super().on_raw(raw, source, reinjected)
        assert len(verdicts) == 1, verdicts
        return verdicts[0]


IMPLS = ("engine", "oracle")  # what decides a stream in tests: the product, and its reference


class Stream:
    """Raw messages through what a worker partition runs (``engine``: ``EngineState``) or the
    per-tick reference it is held to (``oracle``: ``Pipeline``), outputs kept topic by topic.

    Behaviour tests parametrized over ``IMPLS`` pin the product and the oracle to the same
    observable behaviour: only published messages, never either one's internals.
    """

    def __init__(
        self, impl: str, config: TickwiseConfig, state: EngineState | Pipeline | None = None
    ) -> None:
        from tests.oracle.pipeline import Pipeline
        from tickwise.streams.live.state import EngineState

        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, not {impl!r}")
        self.impl = impl
        self.state = state or (EngineState(config) if impl == "engine" else Pipeline(config))
        self.outputs: list[Output] = []  # in the order published
        self.out: defaultdict[str, list[Output]] = defaultdict(list)  # the same, by topic
        self.offset = 0  # the next raw message's offset when it is given as bytes

    def feed(
        self,
        records: Iterable[RawRecord | bytes],
        controls: Mapping[int, Sequence[ControlCommand]] | None = None,
        topic: str = "t",
    ) -> Stream:
        """Decide ``records`` (offsets: a record's index, else counted on); ``controls``:
        operator commands taken before the record at that position of ``records``, between
        batches as a worker takes them."""
        import numpy as np

        controls = controls or {}
        payloads, offsets = [], []
        for rec in records:
            offset = self.offset if isinstance(rec, bytes) else rec.index
            payloads.append(rec if isinstance(rec, bytes) else rec.payload)
            offsets.append(offset)
            self.offset = offset + 1
        chunk = 5_000  # a consume call's batch (``EngineState.chunk``)
        cuts = {*range(0, len(payloads), chunk), *(c for c in controls if c < len(payloads))}
        bounds = [*sorted(cuts), len(payloads)]
        for a, b in itertools.pairwise(bounds):
            for command in controls.get(a, ()):
                self.state.on_control(command)
            if self.impl == "engine":
                flags = np.zeros(b - a, np.bool_)
                at = np.asarray(offsets[a:b], np.int64)
                self._keep(self.state.process(payloads[a:b], topic, 0, at, flags))
            else:
                for raw, offset in zip(payloads[a:b], offsets[a:b], strict=True):
                    source = SourceRef(topic=topic, partition=0, offset=offset)
                    self._keep(self.state.process(raw, source))
        return self

    def finish(self) -> Stream:
        """The end of a finite input (a replay): held ticks decided, open hold runs summarised."""
        self._keep(self.state.finish())
        return self

    def _keep(self, outputs: list[Output]) -> None:
        self.outputs += outputs
        for o in outputs:
            self.out[o.topic.name].append(o)

    def messages(self, topic: str) -> list:
        """The messages published on ``topic``, in order, as contracts (a clean tick the
        engine encoded in bulk is parsed from its bytes)."""
        parse = CleanTick.model_validate_json
        return [parse(o.encoded()) if o.message is None else o.message for o in self.out[topic]]

    def wire(self, topic: str) -> list[bytes]:
        """The bytes published on ``topic``, in order."""
        return [o.encoded() for o in self.out[topic]]


def decide(
    impl: str,
    records: Iterable[RawRecord | bytes],
    config: TickwiseConfig,
    controls: Mapping[int, Sequence[ControlCommand]] | None = None,
    finish: bool = True,
) -> Stream:
    """``records`` decided from a fresh state by ``impl`` (``IMPLS``), to their end."""
    stream = Stream(impl, config).feed(records, controls)
    return stream.finish() if finish else stream


def squeezed_feed(
    seed: int, count: int, start: int, stop: int, factor: int, instrument: str = "ES"
) -> list[RawRecord]:
    """A synthetic feed of one instrument whose records ``[start, stop)`` come ``factor`` times
    faster in event time (the later ones shifted to follow): the same trading at a faster pace,
    an order-rate burst per event-time window."""
    from tickwise.streams.sources import synthetic

    out: list[RawRecord] = []
    origin = shift = 0
    for i, rec in enumerate(synthetic(seed=seed, count=count, instruments=[instrument])):
        msg = json.loads(rec.payload)
        ts = msg["ts_event_ns"]
        if i == start:
            origin = ts
        if start <= i < stop:
            squeezed = origin + (ts - origin) // factor
            shift = ts - squeezed
        msg["ts_event_ns"] = ts - shift
        payload = json.dumps(msg, separators=(",", ":")).encode()
        out.append(RawRecord(rec.key, payload, rec.origin, rec.index, ts - shift))
    return out


def audit_bodies(
    count: int = 1500, seed: int = 4, hold_summary_s: float = 0.05, holds: str = "summary"
) -> list[bytes]:
    """Audit entries (topic bytes) of a synthetic run through the whole pipeline: records and
    hold summaries (a short period, for many; ``holds="each"``: a record per decision), the
    runs still open closed at the end."""
    from tests.oracle.pipeline import Pipeline
    from tickwise.streams.config import load_config
    from tickwise.streams.sources import synthetic

    pipeline, out = (
        Pipeline(load_config(audit={"hold_summary_s": hold_summary_s, "holds": holds})),
        [],
    )
    for rec in synthetic(seed=seed, count=count):
        verdict = pipeline.validate(rec.payload, src(rec.index))
        if isinstance(verdict, CleanTick):
            out += [wire for _, wire in pipeline.decide(verdict).audit_entries]
    return out + [wire for _, wire in pipeline.audit.close_runs()]


def self_signed_cert(directory: Path) -> tuple[str, str]:
    """A throwaway certificate and key (PEM) for 127.0.0.1 and localhost, made by ``openssl``.

    A client trusts it by taking the certificate itself as its CA file, or chromium by
    ``--ignore-certificate-errors``.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make the test certificate")
    cert, key = directory / "console-cert.pem", directory / "console-key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


# --- live runs against the backtest (the Kafka fault, recovery and scale-out tests) ----------

# Every decided tick a decision message (holds each, a signal per decision), so a comparison
# with the backtest covers every decision, not only the order intents summarised holds leave on
# the topic; checkpoints often, so a worker killed mid-stream leaves one behind.
EVERY_DECISION_TOML = (
    '[live]\ncheckpoint_interval_s = 0.5\n[audit]\nholds = "each"\n[signals]\nevery = "decision"\n'
)


@dataclass
class Backtested:
    """A live run's input and what an uninterrupted run of it (the backtest) decided."""

    records: list[RawRecord]
    config_file: Path  # the worker's --config
    topics: Topics
    expected: BacktestResult
    replay: list[bytes]  # the backtest's decisions, as the decisions topic carries them


@dataclass
class LiveOutputs:
    """What the output topics hold after a live run (read_committed, as any consumer sees)."""

    decisions: list[tuple[bytes | None, bytes]]
    clean: list[tuple[bytes | None, bytes]]
    quarantine: list[tuple[bytes | None, bytes]]


def backtested(
    workdir: Path,
    topic_prefix: str,
    records: list[RawRecord],
    commands: Sequence[ControlCommand] = (),
) -> Backtested:
    """Write the every-decision config under ``workdir`` and backtest ``records`` with it (and
    ``commands``, which a live run must send before its worker starts).

    The topics are the caller's to create and feed: runs differ in how the ticks arrive.
    """
    from tickwise.replay.engine import run_backtest

    config_file = workdir / "tickwise.toml"
    config_file.write_text(EVERY_DECISION_TOML)
    config = load_config(config_file, topic_prefix=topic_prefix)
    expected = run_backtest(records, config, workdir / "bt", commands)
    replay = (workdir / "bt" / "decisions.jsonl").read_bytes().splitlines()
    return Backtested(records, config_file, Topics(topic_prefix), expected, replay)


def trickle(records: list[RawRecord], rate: float, hurry: threading.Event) -> Iterator[RawRecord]:
    """``records`` at ``rate`` a second until ``hurry`` is set, then the rest at once: ticks
    flow through a test's faults however long they take, and the run is no longer than they
    are (a feed sized to outlast them at a fixed rate goes on idling long after)."""
    for record in records:
        if not hurry.is_set():
            hurry.wait(1 / rate)
        yield record


def live_outputs(
    bootstrap: str, run: Backtested, group: str, timeout: float = 240.0
) -> LiveOutputs:
    """The output topics once every expected decision is out and ``group`` (the worker's app
    id) has committed the whole raw topic: the outputs of every transaction that handled a raw
    message, a duplicate's included, are then there to read, with no silence waited for."""
    from tickwise.streams.live.tap import read_values

    topics = run.topics
    read_values(bootstrap, topics.decisions, len(run.replay), timeout)
    wait_consumed(bootstrap, group, topics.raw, timeout)
    return LiveOutputs(
        decisions=read_all(bootstrap, topics.decisions),
        clean=read_all(bootstrap, topics.clean),
        quarantine=read_all(bootstrap, topics.quarantine),
    )


def read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every committed (key, value) of ``topic`` up to its end now: a read that stops at the
    high watermarks fixed before it starts, not after a silence (which cost each test that
    checks exactly-once over a minute of waiting)."""
    from tickwise.streams.live.reader import RangeReader

    with RangeReader(bootstrap) as reader:
        ranges = {p: reader.watermarks(topic, p) for p in reader.partitions(topic)}
        return [(m.key(), m.value() or b"") for _, m in reader.read(topic, ranges) if m is not None]


def wait_consumed(bootstrap: str, group: str, topic: str, timeout: float = 120.0) -> None:
    """Wait until ``group`` has committed every partition of ``topic`` up to its end. A worker
    commits its input offsets in the transaction of the outputs they gave rise to, so from then
    on every output of what ``topic`` holds is visible (``read_all``), with no silence waited
    for."""
    from confluent_kafka import Consumer, TopicPartition

    from tickwise.streams.live.reader import RangeReader, consumer_settings

    deadline = time.monotonic() + timeout
    with RangeReader(bootstrap) as reader:
        ends = {p: reader.watermarks(topic, p)[1] for p in reader.partitions(topic)}
    asking = Consumer(consumer_settings(bootstrap, group))  # never joins: only asks
    try:
        tps = [TopicPartition(topic, p) for p in ends]
        while True:
            done = {tp.partition: tp.offset for tp in asking.committed(tps, timeout=10)}
            if all(end == 0 or done.get(p, -1) >= end for p, end in ends.items()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{group} committed {done} of {topic}, ends {ends}")
            time.sleep(0.2)
    finally:
        asking.close()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:g} s")
        time.sleep(0.5)


def wait_for_log(path: Path, text: str, count: int = 1, timeout: float = 90.0) -> str:
    """The log once ``text`` appears in it ``count`` times; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = path.read_text(errors="replace") if path.exists() else ""
        if log.count(text) >= count:
            return log
        time.sleep(0.2)
    raise AssertionError(f"{path.name}: no {text!r} after {timeout:g} s:\n{log[-3000:]}")


def worker_story(directory: Path, most: int = 80) -> str:
    """What the worker logs in ``directory`` said of faults and recoveries (warnings, errors and
    each partition's recovery), for a failed exactly-once check to show: the logs are gone
    with the run, on CI."""
    said = []
    for path in sorted(directory.glob("worker*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if any(w in line for w in (" WARNING ", " ERROR ", " CRITICAL ", "without emitting")):
                said.append(f"{path.name}: {line[:300]}")
    return "\n".join(said[-most:])


def exactly_once_problems(run: Backtested, out: LiveOutputs) -> list[str]:
    """How the live outputs break exactly-once against the backtest; empty when they do not.

    Nothing twice (decisions, clean ticks), nothing lost (raw = clean + quarantined, each bad
    tick quarantined for its injected reason), and every decision the backtest's, in order,
    per instrument.
    """
    problems: list[str] = []
    ids = Counter(Decision.model_validate_json(v).decision_id for _, v in out.decisions)
    doubled = [i for i, n in ids.items() if n > 1]
    if doubled:
        problems.append(f"{len(doubled)} decisions duplicated, e.g. {doubled[:3]}")
    ticks = Counter(CleanTick.model_validate_json(v).tick.tick_id for _, v in out.clean)
    doubled = [t for t, n in ticks.items() if n > 1]
    if doubled:
        problems.append(f"{len(doubled)} clean ticks emitted twice, e.g. {doubled[:3]}")
    if len(out.clean) != run.expected.clean:
        problems.append(f"{len(out.clean)} clean ticks, the backtest has {run.expected.clean}")
    if len(out.clean) + len(out.quarantine) != len(run.records):
        problems.append(
            f"raw {len(run.records)} != clean {len(out.clean)} + quarantined {len(out.quarantine)}"
        )
    reasons = sorted(
        QuarantineRecord.model_validate_json(v).reason.value for _, v in out.quarantine
    )
    if reasons != sorted(r.injected for r in run.records if r.injected):
        problems.append("quarantine reasons differ from the injected faults")
    live: dict[str, list[bytes]] = defaultdict(list)
    offline: dict[str, list[bytes]] = defaultdict(list)
    for _, v in out.decisions:
        live[Decision.model_validate_json(v).instrument].append(v)
    for v in run.replay:
        offline[Decision.model_validate_json(v).instrument].append(v)
    differ = sum(
        sum(a != b for a, b in zip(live[k], offline[k], strict=False))
        + abs(len(live[k]) - len(offline[k]))
        for k in set(live) | set(offline)
    )
    if differ:
        problems.append(f"{differ} of {len(run.replay)} decisions differ from the backtest's")
    return problems


LATE_T0 = 1_700_000_000 * S


def late_ticks(seed: int, n: int = 3_000) -> list[bytes]:
    """Ticks of three instruments, 1 to 7 ms apart on each, sent out of order (one in seven
    overtaken by up to 60 later ones, one in twenty by up to 200), some resent (duplicates, by
    id or by sequence number), bursts at one event time, price spikes, ticks far behind or
    ahead (some confirmed by the next: a time jump). For the ``reorder`` policy."""
    rng = random.Random(seed)
    names = ("ES", "NQ", "CL")
    price = {"ES": 4000.0, "NQ": 15000.0, "CL": 80.0}
    clock = dict.fromkeys(names, LATE_T0)
    seq = dict.fromkeys(names, 0)
    out: list[tuple[float, bytes]] = []  # (arrival key, payload)
    for i in range(n):
        name = rng.choice(names)
        clock[name] += rng.randrange(1, 8) * MS
        price[name] *= 1.0 + rng.gauss(0.0, 0.0004)
        seq[name] += 1
        ts, p = clock[name], round(price[name], 4)
        roll = rng.random()
        if roll < 0.02:  # a spike: an outlier, refused when it leaves the buffer
            p = round(p * rng.choice((0.9, 1.12)), 4)
        elif roll < 0.03:  # far behind: stale
            ts -= rng.randrange(2, 9) * 10**9
        elif roll < 0.04:  # far ahead, sometimes confirmed by the next one (a jump)
            ts += 5 * 10**9
            clock[name] += 5 * 10**9 * (rng.random() < 0.5)
        tick: dict[str, object] = {"instrument": name, "tick_id": f"{name}-{i}", "ts_event_ns": ts}
        if rng.random() < 0.5:
            tick["seq"] = seq[name]
        if rng.random() < 0.3:
            tick |= {"kind": "quote", "bid": p - 0.25, "ask": p + 0.25}
            tick |= {"bid_size": 1.0, "ask_size": 2.0} if rng.random() < 0.5 else {}
        else:
            tick |= {"kind": "trade", "price": p, "size": float(rng.randrange(1, 5))}
        raw = json.dumps(tick).encode()
        late = rng.random()
        key = i + (rng.uniform(1, 60) if late < 0.15 else rng.uniform(60, 200) if late < 0.2 else 0)
        out.append((key, raw))
        if rng.random() < 0.03:  # the same tick again, a little later
            out.append((key + rng.uniform(0, 20), raw))
        if rng.random() < 0.01 and "seq" in tick:  # another id, the same sequence number
            again = tick | {"tick_id": f"{name}-{i}-again"}
            out.append((key + rng.uniform(0, 20), json.dumps(again).encode()))
        if rng.random() < 0.01:  # a burst at one event time
            for b in range(rng.randrange(3, 8)):
                burst = tick | {"tick_id": f"{name}-{i}-burst{b}", "seq": None}
                out.append((key + 0.01 * (b + 1), json.dumps(burst).encode()))
    out.sort(key=lambda pair: pair[0])
    return [raw for _, raw in out]
