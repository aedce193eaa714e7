"""The console's view: every output a worker publishes in, the figures a trader reads out.

The worker's engine produces the messages (as the worker puts them on the topics; the
per-tick oracle's beside it), and
each figure is checked against the outputs computed independently here.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
from stubs import IMPLS, Stream, decide, fast_config

from tickwise.schemas.decisions import (
    Alert,
    AuditRecord,
    ControlCommand,
    Decision,
    Fill,
    HoldSummary,
    Signal,
)
from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.topics import CONTROL
from tickwise.streams.console.view import CONTRACTS, KEEP_SIGNALS, ConsoleView
from tickwise.streams.live.state import Output
from tickwise.streams.sources import synthetic


def kill(scope: str, state: str, cid: str, operator: str = "alice") -> ControlCommand:
    return ControlCommand(
        command_id=cid,
        command="kill_switch_on" if state == "on" else "kill_switch_off",
        scope=scope,
        reason=f"test {state}",
        operator=operator,
        ts_event_ns=1,  # type: ignore[arg-type]
    )


def run(
    count: int, switches: dict[int, ControlCommand], bad_rate: float = 0.02, impl: str = "engine"
) -> list[Output]:
    """Every output a worker publishes for synthetic ticks, an operator's control commands
    (on the control topic) taken between batches."""
    records = list(synthetic(seed=11, count=count, bad_rate=bad_rate))
    stream = Stream(impl, fast_config())
    bounds = [0, *sorted(switches), count]
    for a, b in itertools.pairwise(bounds):
        if a in switches:
            stream.outputs.append(Output(CONTROL, switches[a].scope, switches[a]))
        stream.feed(records[a:b], {0: [switches[a]]} if a in switches else None)
    return stream.outputs


def feed(view: ConsoleView, outputs: list[Output]) -> int:
    fed = 0
    for out in outputs:
        if out.topic.name in CONTRACTS:
            assert view.apply(out.topic.name, out.encoded())
            fed += 1
    return fed


@pytest.fixture(scope="module", params=IMPLS)
def halted(request: pytest.FixtureRequest) -> tuple[ConsoleView, list[Output]]:
    outputs = run(4000, {3000: kill("global", "on", "k-1")}, impl=request.param)
    view = ConsoleView(fast_config())
    feed(view, outputs)
    return view, outputs


def of(outputs: list[Output], kind: type) -> list:
    return [o.message for o in outputs if isinstance(o.message, kind)]


def test_each_instrument_shows_its_last_price_position_and_decision_counts(halted) -> None:
    view, outputs = halted
    snap = view.snapshot()
    decisions = of(outputs, Decision)
    fills = of(outputs, Fill)
    assert decisions and fills, "the run must trade for this test to mean anything"
    for name, inst in snap["instruments"].items():
        mine = [d for d in decisions if d.instrument == name]
        # HOLDs are not published one by one: the console counts them from the summaries
        holds = sum(h.holds for h in of(outputs, HoldSummary) if h.instrument == name)
        assert holds and inst["holds"] == holds
        assert inst["decisions"] == len(mine) + holds
        assert inst["last_price"] == mine[-1].price
        assert inst["approved_orders"] == sum(d.approved and d.action != "HOLD" for d in mine)
        my_fills = [f for f in fills if f.instrument == name]
        if my_fills:
            last = my_fills[-1]
            assert inst["position"] == last.position_after
            mark = last.position_after * mine[-1].price
            assert inst["pnl"] == pytest.approx(last.cash_after + mark - 1_000_000.0)
    assert set(snap["instruments"]) == {d.instrument for d in decisions}


@pytest.mark.parametrize("impl", IMPLS)
def test_the_last_decision_is_the_run_of_holds_when_holds_came_last(impl: str) -> None:
    # the end of the input closes the open runs of holds
    outputs = decide(impl, synthetic(seed=5, count=1500), fast_config()).outputs
    view = ConsoleView(fast_config())
    feed(view, outputs)
    shown = 0
    for name, inst in view.snapshot()["instruments"].items():
        entries = [o.message for o in outputs if o.topic.name == "audit" and o.key == name]
        last = entries[-1]
        if isinstance(last, HoldSummary):
            shown += 1
            d = inst["last_decision"]
            assert (d["action"], d["holds"], d["reasons"]) == ("HOLD", last.holds, last.reasons)
            assert d["ts_event_ns"] == last.to_ts_event_ns
            assert inst["last_holds"]["holds"] == last.holds
        else:
            assert inst["last_decision"]["ts_event_ns"] == last.decision.ts_event_ns
    assert shown, "some instrument must end on a run of holds"


def test_quality_and_rejections_are_counted_by_reason(halted) -> None:
    view, outputs = halted
    snap = view.snapshot()
    quarantined = Counter(q.reason.value for q in of(outputs, QuarantineRecord))
    assert quarantined and snap["quality"] == dict(quarantined)
    rejected = Counter(r for d in of(outputs, Decision) for r in d.reject_reasons)
    assert "KILL_SWITCH" in rejected
    assert snap["rejections"] == dict(rejected)


def test_the_kill_switch_turns_every_instrument_halted_with_the_operator_on_record(halted) -> None:
    view, _ = halted
    snap = view.snapshot()
    assert snap["kill_switches"]["global"]["on"] is True
    assert snap["kill_switches"]["global"]["operator"] == "alice"
    assert {i["risk_state"] for i in snap["instruments"].values()} == {"HALTED"}
    applied = [a for a in snap["audit"] if a["command_id"] == "k-1"]
    assert {a["instrument"] for a in applied} == set(snap["instruments"])
    assert {a["operator"] for a in applied} == {"alice"}
    assert snap["controls"][0]["operator"] == "alice"


def test_signals_keep_the_latest_few_with_readable_explanations(halted) -> None:
    view, outputs = halted
    snap = view.snapshot()
    for name, inst in snap["instruments"].items():
        mine = [s for s in of(outputs, Signal) if s.instrument == name]
        shown = inst["signals"]
        assert len(shown) == min(KEEP_SIGNALS, len(mine))
        assert shown[0]["ts_event_ns"] == mine[-1].ts_event_ns
        top = mine[-1].explanation[0]
        assert f"{top.feature}=" in shown[0]["explanation"]
        assert shown[0]["stage"] == "production"


def test_model_rows_show_stage_and_an_accuracy_between_zero_and_one(halted) -> None:
    view, _ = halted
    rows = view.snapshot()["models"]
    assert rows
    for row in rows:
        assert row["stages"] == {"logreg:v1": "production"}
        assert row["outcomes"] > 0
        assert 0.0 <= row["accuracy"] <= 1.0


def test_a_kill_switch_off_for_one_instrument_brings_only_it_back(halted) -> None:
    outputs = run(3000, {1500: kill("ES", "on", "es-on"), 2200: kill("ES", "off", "es-off")})
    view = ConsoleView(fast_config())
    feed(view, outputs)
    snap = view.snapshot()
    assert snap["kill_switches"]["ES"]["on"] is False
    assert snap["instruments"]["ES"]["risk_state"] == "ACTIVE"
    commands = [(a["instrument"], a["command"]) for a in snap["audit"]]
    assert ("ES", "kill_switch_on") in commands and ("ES", "kill_switch_off") in commands
    assert all(instrument == "ES" for instrument, _ in commands)


def test_order_of_topics_does_not_change_the_figures(halted) -> None:
    """Topics arrive interleaved in any order: per-topic order is all Kafka promises."""
    _, outputs = halted
    by_topic: dict[str, list[Output]] = {}
    for out in outputs:
        by_topic.setdefault(out.topic.name, []).append(out)
    rng = random.Random(5)
    shuffled: list[Output] = []
    queues = {t: list(reversed(q)) for t, q in by_topic.items()}
    while queues:
        topic = rng.choice(sorted(queues))
        shuffled.append(queues[topic].pop())
        if not queues[topic]:
            del queues[topic]
    a, b = ConsoleView(fast_config()), ConsoleView(fast_config())
    feed(a, outputs)
    feed(b, shuffled)
    sa, sb = a.snapshot(), b.snapshot()
    for key in ("quality", "rejections", "kill_switches", "alert_counts", "counts"):
        assert sa[key] == sb[key]
    for name in sa["instruments"]:
        for field in ("last_price", "position", "pnl", "decisions", "fills"):
            assert sa["instruments"][name][field] == sb["instruments"][name][field]


@pytest.mark.parametrize("topic", sorted(CONTRACTS))
def test_bad_bytes_are_counted_not_raised(topic: str) -> None:
    view = ConsoleView()
    assert view.apply(topic, b'{"not": "a contract"}') is False
    assert view.apply(topic, b"\xff\xfe") is False
    assert view.snapshot()["undecodable"] == {topic: 2}


def test_an_unknown_topic_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="does not read"):
        ConsoleView().apply("features", b"{}")


def test_alerts_are_kept_newest_first_and_counted() -> None:
    view = ConsoleView()
    for i, code in enumerate(["LOW_ACCURACY", "MODEL_DRIFT", "LOW_ACCURACY"]):
        alert = Alert(
            alert_id=f"a{i}",
            ts_event_ns=i,  # type: ignore[arg-type]
            severity="WARNING",  # type: ignore[arg-type]
            code=code,
            detail="d",
            instrument="ES",
        )
        assert view.apply("alerts", alert.to_bytes())
    snap = view.snapshot()
    assert snap["alert_counts"] == {"LOW_ACCURACY": 2, "MODEL_DRIFT": 1}
    assert [a["ts_event_ns"] for a in snap["alerts"]] == [2, 1, 0]


def test_audit_records_from_older_producers_without_operator_still_show() -> None:
    outputs = run(2500, {2000: kill("global", "on", "k-old")}, bad_rate=0.0)
    record = next(
        o.message
        for o in outputs
        if isinstance(o.message, AuditRecord) and o.message.controls_applied
    )
    body = record.model_dump(mode="json")
    for applied in body["controls_applied"]:
        del applied["operator"]
    view = ConsoleView()
    assert view.apply("audit", AuditRecord.model_validate(body).to_bytes())
    assert view.snapshot()["audit"][0]["operator"] is None
