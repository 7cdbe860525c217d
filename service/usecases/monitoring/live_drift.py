"""Population stability of live decisions against the training set of the model that decided.

For each model that decided in a window, the share of its decisions in each bin of its
card's drift reference (:mod:`scoring.governance.drift`) is set against the training share: the PSI
of
the score, the PD and every feature, with its level (stable below 0.1, watch from 0.1, act
from 0.25) and the features that moved most.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from scoring.governance.drift import ACT, WATCH, Bins, DriftReference, level, psi

Sums = Mapping[tuple[str, str], tuple[int, float]]
# How many features a model's summary names as having moved most.
MOVED_MOST = 5
# Below this many decisions of a model in the window, its PSI is given but not judged: with
# a handful of decisions every bin's share is noise, and the index is large by chance.
MIN_DECISIONS = 100


def judged(value: float | None, decisions: int) -> str:
    """The level of a PSI over ``decisions`` decisions: ``too_few`` below the minimum."""
    return "too_few" if value is not None and decisions < MIN_DECISIONS else level(value)


def counts_by_model(sums: Sums, metric: str) -> dict[str, dict[str, dict[str, int]]]:
    """A binned metric's counts as model → variable → bin key → count (``score`` and ``pd``
    cells are keyed model|bin, ``feature`` cells model|feature|bin)."""
    found: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for (name, key), (n, _) in sums.items():
        if name != metric:
            continue
        parts = key.split("|")
        model, variable = parts[0], (parts[1] if len(parts) == 3 else metric)
        found[model][variable][parts[-1]] = n
    return found


def drift_of(sums: Sums,
             reference_of: Callable[[str], tuple[DriftReference | None, str | None]],
             labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each model's PSI of score, PD and features over the summed cells ``sums``."""
    decided = {key: n for (metric, key), (n, _) in sums.items() if metric == "model"}
    scores, pds = counts_by_model(sums, "score"), counts_by_model(sums, "pd")
    features = counts_by_model(sums, "feature")
    models = []
    for model in sorted(decided, key=lambda m: (-decided[m], m)):
        reference, why = reference_of(model)
        entry: dict[str, Any] = {"model_version": model, "decisions": decided[model]}
        if reference is None:
            models.append({**entry, "reference": None, "score": None, "pd": None,
                           "features": [], "moved_most": [], "note": why or ""})
            continue
        rows: list[dict[str, Any]] = []
        for name, bins in reference.features.items():
            value = psi(bins.expected(), _binned(bins, features.get(model, {}).get(name, {})))
            rows.append({"feature": name, "label": labels.get(name, name),
                         "psi": value, "level": judged(value, decided[model])})
        rows.sort(key=lambda r: (-(r["psi"] or 0.0), r["feature"]))
        models.append({
            **entry, "reference": {"split": "train", "rows": reference.rows},
            "score": _variable(reference.score, scores.get(model, {}).get("score", {}),
                               decided[model]),
            "pd": _variable(reference.pd, pds.get(model, {}).get("pd", {}), decided[model]),
            "features": rows,
            "moved_most": [r["feature"] for r in rows[:MOVED_MOST]
                           if r["level"] in ("watch", "act")]})
    return models


def _binned(bins: Bins, counts: Mapping[str, int]) -> dict[str, int]:
    """The counts of the bins of ``bins`` alone. Cells of other bins are those counted against
    an earlier version of the card's distributions (rewritten since): they are not compared
    with this one."""
    known = set(bins.keys())
    return {key: n for key, n in counts.items() if key in known}


def _variable(bins: Bins, counts: Mapping[str, int], decisions: int) -> dict[str, Any]:
    counts = _binned(bins, counts)
    expected = bins.expected()
    value = psi(expected, counts)
    total = sum(counts.values())
    labels = bins.labels()
    order = bins.keys()
    return {"psi": value, "level": judged(value, decisions),
            "bins": [{"key": key, "label": labels[key], "expected": expected[key],
                      "observed": (counts.get(key, 0) / total) if total else None,
                      "count": counts.get(key, 0)}
                     for key in order
                     if expected[key] > 0 or counts.get(key, 0) > 0]}


THRESHOLDS = {"watch": WATCH, "act": ACT, "min_decisions": MIN_DECISIONS}
