"""Per-signal explanations a trader can read, cheap enough to compute on every tick.

* Linear kinds: weight times (standardised) value, exactly the terms of the score.
* Hoeffding tree: the decision path; each split on the path is one line, and its contribution
  is how much the score moves when that feature is set to its running mean (occlusion).
* Forest and MLP: occlusion on every feature (one extra prediction per feature).

Occlusion contributions are reported with ``weight = contribution / (value - mean)``, the local
slope, so ``contribution = weight * (value - mean)`` reads the same way as for linear models.
"""

from __future__ import annotations

from collections.abc import Callable

from river import base, tree

from tickwise.schemas.decisions import Contribution
from tickwise.streams.operators.models.linear import CompiledLinear
from tickwise.streams.operators.models.zoo import LINEAR_KINDS, final_step, model_inputs

Score = Callable[[dict[str, float]], float]


def _top(items: list[Contribution], k: int) -> list[Contribution]:
    return sorted(items, key=lambda c: (-abs(c.contribution), c.feature))[:k]


def explain_linear(
    estimator: base.Estimator,
    x: dict[str, float],
    k: int,
    inputs: dict[str, float] | None = None,
) -> list[Contribution]:
    """Top-``k`` weight x input terms of a linear model (contracts built for the top only);
    ``inputs`` are ``x`` standardised, when the caller has them already."""
    final = final_step(estimator)
    if inputs is None and isinstance(final, CompiledLinear):  # the same terms, from its arrays
        ranked = sorted(final.terms(x), key=lambda t: (-abs(t[0]), t[1]))[:k]
        return [Contribution(feature=n, value=x[n], weight=w, contribution=c) for c, n, w in ranked]
    z = model_inputs(estimator, x) if inputs is None else inputs
    weights = final.weights
    terms = sorted(
        ((weights.get(n, 0.0) * z.get(n, 0.0), n) for n in x), key=lambda t: (-abs(t[0]), t[1])
    )[:k]
    return [
        Contribution(feature=n, value=x[n], weight=weights.get(n, 0.0), contribution=c)
        for c, n in terms
    ]


def _occlude(
    score: Score, base_score: float, x: dict[str, float], name: str, ref: float
) -> tuple[float, float]:
    delta = base_score - score({**x, name: ref})
    gap = x[name] - ref
    return delta, (delta / gap if abs(gap) > 1e-12 else 0.0)


def tree_path(estimator: base.Estimator, x: dict[str, float]) -> list[tuple[str, str]]:
    """The (feature, readable split) pairs on ``x``'s path through a Hoeffding tree."""
    root = getattr(final_step(estimator), "_root", None)
    if not isinstance(root, tree.base.Branch):
        return []
    out = []
    for node in root.walk(x, until_leaf=True):
        feature = getattr(node, "feature", None)
        threshold = getattr(node, "threshold", None)
        if feature is None or feature not in x:
            continue
        if threshold is None:
            out.append((feature, f"{feature} = {x[feature]:g}"))
        else:
            op = "<=" if x[feature] <= threshold else ">"
            out.append((feature, f"{feature} {x[feature]:.4g} {op} {threshold:.4g}"))
    return out


def explain(
    kind: str,
    estimator: base.Estimator,
    score: Score,
    x: dict[str, float],
    means: dict[str, float],
    k: int,
    inputs: dict[str, float] | None = None,
) -> list[Contribution]:
    """Explain ``score(x)`` for any zoo kind (see the module docstring for the method)."""
    if kind in LINEAR_KINDS:
        return explain_linear(estimator, x, k, inputs)
    base_score = score(x)
    if kind == "hoeffding_tree":
        terms = []
        seen: set[str] = set()
        for feature, detail in tree_path(estimator, x):
            if feature in seen:
                continue
            seen.add(feature)
            ref = means.get(feature, 0.0)
            delta, slope = _occlude(score, base_score, x, feature, ref)
            terms.append(
                Contribution(
                    feature=feature,
                    value=x[feature],
                    weight=slope,
                    contribution=delta,
                    detail=detail,
                )
            )
        return terms[:k]
    terms = []
    for name in x:
        delta, slope = _occlude(score, base_score, x, name, means.get(name, 0.0))
        terms.append(Contribution(feature=name, value=x[name], weight=slope, contribution=delta))
    return _top(terms, k)
