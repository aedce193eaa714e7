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

from collections.abc import Sequence
from itertools import chain
from json.encoder import encode_basestring
from typing import Any

import orjson

from tickwise.schemas.decisions import HoldSummary, Side, Stage

# A JSON string, quoted, as pydantic writes it: UTF-8 as is, '"', '\' and control characters
# escaped (the C encoder behind ``json.dumps(s, ensure_ascii=False)``).
json_str = encode_basestring


def json_float(x: float) -> str:
    """A finite float as pydantic writes it: the shortest text that reads back as ``x``, with
    pydantic's exponents (``1e-7``, ``1e+16``, but ``0.00001``), which orjson writes alike
    (Python's ``repr`` does not: ``1e-07``, ``1e-05``).

    Examples
    --------
    >>> json_float(0.1), json_float(5.0), json_float(1e-7), json_float(1e16)
    ('0.1', '5.0', '1e-7', '1e+16')
    """
    return json_floats([x])[0]


def json_floats(values: list[float]) -> list[str]:
    """``json_float`` of each of ``values`` (Python floats), in bulk: one orjson call writes
    them all, six times faster than a ``repr`` each.

    Examples
    --------
    >>> json_floats([0.1, -0.0, 2.0, 1e-7])
    ['0.1', '-0.0', '2.0', '1e-7']
    """
    if not values:
        return []
    text = orjson.dumps(values).decode()
    if "n" in text:  # orjson writes inf and nan as null
        raise ValueError(f"{values} holds a number that is not finite: no contract allows it")
    return text[1:-1].split(",")


class SignalWire:
    """``Signal`` s of one model version as their JSON bytes.

    The settings every signal of the version shares are encoded once; ``lines`` writes
    signals from their values in columns, each explanation as up to ``k`` terms (feature,
    value, weight, contribution) with no ``detail`` (what a linear model explains).
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

    def lines(
        self,
        signal_id: Sequence[str],
        instrument: Sequence[str],
        tick_id: Sequence[str],
        ts_event_ns: Sequence[int],
        score: list[float],
        side: Sequence[Side],
        confidence: list[float],
        n_trained: Sequence[int],
        feature: Sequence[Sequence[int]],
        value: list[list[float]],
        weight: list[list[float]],
        contribution: list[list[float]],
    ) -> list[bytes]:
        """The signals' bytes, one a row. Explanations: row ``i``'s terms are
        ``feature[i][t]`` (a position in ``features``; negative: no term) with
        ``value[i][t]``, ``weight[i][t]`` and ``contribution[i][t]``, every row as long."""
        n = len(signal_id)
        k = len(feature[0]) if n else 0
        flat = chain.from_iterable
        texts = json_floats([*score, *confidence, *flat(value), *flat(weight), *flat(contribution)])
        at_w, at_c = 2 * n + n * k, 2 * n + 2 * n * k
        names, sides, tail, model = self._features, self._sides, self._tail, self._model
        out = []
        for i in range(n):
            at = 2 * n + i * k
            terms = ",".join(
                f"{names[f]}{texts[at + t]},"
                f'"weight":{texts[at_w + i * k + t]},'
                f'"contribution":{texts[at_c + i * k + t]},"detail":""}}'
                for t, f in enumerate(feature[i])
                if f >= 0
            )
            head = (
                f'{{"schema_version":1,"signal_id":{json_str(signal_id[i])},'
                f'"instrument":{json_str(instrument[i])},"tick_id":{json_str(tick_id[i])},'
                f'"ts_event_ns":{ts_event_ns[i]},{model},"score":{texts[i]},'
                f'"side":{sides[side[i]]},"confidence":{texts[n + i]},'
                f'"n_trained":{n_trained[i]},"explanation":[{terms}'
            )
            out.append(head.encode() + tail)
        return out


# a summary's fields in the contract's order, its hash (the last) left out
_HOLD_SUMMARY_BODY = tuple(HoldSummary.model_fields)[:-1]


def hold_summary_body(fields: dict[str, Any]) -> bytes:
    """A ``HoldSummary``'s JSON from its fields (as validation makes them) but ``hash``: the
    body its hash covers (what ``operators.audit.seal`` hashes). orjson writes the strings,
    integers, floats, the reasons and the trading state's value as pydantic does.

    Why the fields must come in the contract's order, rather than be put in it here: the
    audit chain seals a summary per run of holds from a dict it builds in that order (the
    summary's own, once its hash is added), and reordering it was half of what writing one
    cost; a dict out of order is refused, never written in another order than the contract's.
    """
    if tuple(fields) != _HOLD_SUMMARY_BODY:
        raise ValueError(f"a hold summary's fields but its hash, in order: {_HOLD_SUMMARY_BODY}")
    return orjson.dumps(fields)


__all__ = ["SignalWire", "hold_summary_body", "json_float", "json_floats", "json_str"]
