"""Contracts' JSON bytes written straight from their values, for the hot paths that publish
many messages of one kind: the bytes ``Contract.to_bytes`` gives, without building and
validating each model first.

Why: a default replay of 200k ES trades publishes about 2,000 signals and seals as many hold
summaries, and validating them into models only to serialise them again was a fifth of its
time. The values must be what validation would accept (finite floats, the contract's ranges):
they come from the engine's own columns and state, never from outside.
``tests/contract/test_wire.py`` holds every encoder here equal to the contract's own
serialisation, floats and strings included.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from pydantic_core import to_json

from tickwise.schemas.decisions import Side, Stage

# A JSON string, quoted, as pydantic writes it: UTF-8 as is, '"', '\' and control characters
# escaped (the C encoder behind ``json.dumps(s, ensure_ascii=False)``).
json_str = encode_basestring


def json_float(x: float) -> str:
    """A finite float as pydantic writes it.

    Python's ``repr`` is the shortest text that reads back as ``x``, as pydantic's is; they
    differ only in exponents (``1e-07`` against ``1e-7``, ``1e-05`` against ``0.00001``), so
    those few go through pydantic itself.

    Examples
    --------
    >>> json_float(0.1), json_float(5.0), json_float(1e-7), json_float(1e16)
    ('0.1', '5.0', '1e-7', '1e+16')
    """
    text = repr(x)
    if "e" in text or "n" in text:  # an exponent, or inf/nan
        if not math.isfinite(x):
            raise ValueError(f"{text} is not a finite number: no contract allows it")
        return to_json(x).decode()
    return text


class SignalWire:
    """``Signal`` s of one model version as their JSON bytes.

    The settings every signal of the version shares are encoded once; ``encode`` writes one
    signal from its values, its explanation as ``(feature, value, weight, contribution)`` with
    no ``detail`` (what a linear model explains).
    """

    def __init__(
        self,
        model_id: str,
        model_version: int,
        task: str,
        stage: Stage,
        capital_fraction: float,
        features: Sequence[str],
    ) -> None:
        self._model = f'"model_id":{json_str(model_id)},"model_version":{int(model_version)}'
        self._tail = (
            f'],"task":{json_str(task)},"stage":{json_str(stage.value)},'
            f'"capital_fraction":{json_float(capital_fraction)}}}'
        ).encode()
        self._features = [f'{{"feature":{json_str(name)},"value":' for name in features]
        self._sides = {side: json_str(side.value) for side in Side}

    def encode(
        self,
        signal_id: str,
        instrument: str,
        tick_id: str,
        ts_event_ns: int,
        score: float,
        side: Side,
        confidence: float,
        n_trained: int,
        explanation: Iterable[tuple[int, float, float, float]],
    ) -> bytes:
        """One signal's bytes; each explanation term names its feature by its position in
        ``features``."""
        f = json_float
        terms = ",".join(
            f'{self._features[n]}{f(v)},"weight":{f(w)},"contribution":{f(c)},"detail":""}}'
            for n, v, w, c in explanation
        )
        head = (
            f'{{"schema_version":1,"signal_id":{json_str(signal_id)},'
            f'"instrument":{json_str(instrument)},"tick_id":{json_str(tick_id)},'
            f'"ts_event_ns":{ts_event_ns},{self._model},"score":{f(score)},'
            f'"side":{self._sides[side]},"confidence":{f(confidence)},"n_trained":{n_trained},'
            f'"explanation":[{terms}'
        )
        return head.encode() + self._tail


def hold_summary_body(fields: Mapping[str, Any]) -> bytes:
    """A ``HoldSummary``'s JSON from its fields (as validation makes them) but ``hash``: the
    body its hash covers (what ``operators.audit.seal`` hashes)."""
    f = fields
    reasons = ",".join(f"{json_str(k)}:{n}" for k, n in f["reasons"].items())
    return (
        f'{{"schema_version":{f["schema_version"]},"kind":{json_str(f["kind"])},'
        f'"audit_id":{json_str(f["audit_id"])},"seq":{f["seq"]},'
        f'"instrument":{json_str(f["instrument"])},"ts_event_ns":{f["ts_event_ns"]},'
        f'"model_id":{json_str(f["model_id"])},"model_version":{f["model_version"]},'
        f'"period_s":{json_float(f["period_s"])},"from_ts_event_ns":{f["from_ts_event_ns"]},'
        f'"to_ts_event_ns":{f["to_ts_event_ns"]},"first_tick_id":{json_str(f["first_tick_id"])},'
        f'"last_tick_id":{json_str(f["last_tick_id"])},"holds":{f["holds"]},'
        f'"decided_ticks":{f["decided_ticks"]},"reasons":{{{reasons}}},'
        f'"position":{json_float(f["position"])},'
        f'"trading_state":{json_str(f["trading_state"].value)},'
        f'"prev_hash":{json_str(f["prev_hash"])}}}'
    ).encode()


__all__ = ["SignalWire", "hold_summary_body", "json_float", "json_str"]
