"""What one decision adds to the roll-up: a count, and a sum, in each of its cells.

A cell is a (metric, key) pair; over a bucket of time the roll-up keeps how many decisions
fell in it (``n``) and the sum of one quantity over them (``total``: a line, a latency, a
PD). Everything here is read from the decision's own audit record, so the dashboard counts
what was recorded, plus the applicant's groups (:mod:`service.usecases.monitoring.groups`), the time
of each step and the source breakers the gathering opened, which the record does not keep.

Metrics and their keys:

=========== ======================================= ==========================================
metric      key                                     total
=========== ======================================= ==========================================
outcome     approved | declined | deferred          credit line approved
grade       grade of an approval                    credit line
model       model version (scored decisions)        —
score       model|bin of the card's score bins      score
pd          model|bin of the card's PD bins         PD
feature     model|feature|bin                       —
source      scope|status                            latency, ms
source_ms   scope|latency bin                       latency, ms
breaker     scope (this decision's call opened it)  —
latency     latency bin of the whole decision       ms
step        step|latency bin                        ms
reason      code of a decline's reason              —
fair        dimension|group|outcome (by day only)   credit line approved
fair_pd     dimension|group (scored; by day only)   PD
strategy    strategy|role|outcome                   credit line approved
strategy_pd strategy|role (scored)                  PD
swap        shadow|strategy|outcome>shadow outcome  —
=========== ======================================= ==========================================

The strategy cells are read from the record's ``strategy`` (the strategy that decided, as
champion or challenger) and ``shadows`` (what each shadow would have decided: role
``shadow``, outcome ``failed`` where it failed); a ``swap`` cell pairs the decided outcome
with each shadow's. A record made before strategies has neither, and adds no strategy cell.
A decision adds two cells for the strategy that decided (one if it was not scored) and
three for each shadow (two if the shadow did not score).
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any

from scoring.governance.drift import DriftReference
from service.usecases.monitoring.groups import Groups

Cells = dict[tuple[str, str], list[float]]

# The grains a metric is kept at, where not all three: an applicant's groups are counted by
# day only, so that no five-minute or hourly bucket tells the group of the one applicant
# decided in it.
METRIC_GRAINS: dict[str, tuple[str, ...]] = {"fair": ("day",), "fair_pd": ("day",)}

# Latency bins: 20% wide from 0.1 ms to about 2 minutes, so that a percentile read from
# them is within 10% of the true one.
LATENCY_EDGES_MS: tuple[float, ...] = tuple(0.1 * 1.2 ** k for k in range(77))


# The role of a shadow, and the outcome of a shadow that failed, in a strategy cell's key.
SHADOW = "shadow"
FAILED = "failed"
# A strategy's name is written whole in a key up to this length; a longer one is cut and
# ends in a digest of the whole, so that a swap key, with two names, stays within the
# column's 160 characters.
NAME_IN_KEY = 64


def strategy_key(name: str) -> str:
    """A strategy's name as it is written in a cell's key: ``|`` separates a key's parts,
    so a name holding one has it as ``¦``; a name past :data:`NAME_IN_KEY` is cut."""
    name = name.replace("|", "\N{BROKEN BAR}")
    if len(name) <= NAME_IN_KEY:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{name[:NAME_IN_KEY - 9]}~{digest}"


def latency_bin(ms: float) -> int:
    """The latency bin of ``ms``: 0 below the first edge, ``len(edges)`` above the last."""
    return bisect.bisect_right(LATENCY_EDGES_MS, ms)


def bin_bounds(index: int) -> tuple[float, float]:
    """The lower and upper edge of a latency bin, in ms (the outer bins' open ends closed at
    0 and at 20% past the last edge)."""
    low = LATENCY_EDGES_MS[index - 1] if index > 0 else 0.0
    high = (LATENCY_EDGES_MS[index] if index < len(LATENCY_EDGES_MS)
            else LATENCY_EDGES_MS[-1] * 1.2)
    return low, high


def _add(cells: Cells, metric: str, key: str, total: float = 0.0) -> None:
    cell = cells.get((metric, key))
    if cell is None:
        cells[(metric, key)] = [1.0, float(total)]
    else:
        cell[0] += 1
        cell[1] += float(total)


def decision_cells(payload: Mapping[str, Any], *, groups: Groups | None,
                   durations_ms: Mapping[str, float], opened_breakers: Iterable[str],
                   references: Mapping[str, DriftReference | None]) -> Cells:
    """The cells of one decision, from its audit record's payload."""
    cells: Cells = {}
    outcome = str(payload["outcome"])
    decision: Mapping[str, Any] = (payload.get("decision") or {}
                                   if "model_version" in payload else {})
    scored = bool(decision)
    line = float(decision["credit_limit"]) if scored and outcome == "approved" else 0.0
    _add(cells, "outcome", outcome, line)
    if scored:
        _scored_cells(cells, payload, decision, outcome, line, references)
    strategy = payload.get("strategy")
    if isinstance(strategy, Mapping):
        _strategy_cells(cells, payload, strategy, outcome, line,
                        decision.get("pd") if scored else None)
    for scope, source in payload.get("sources", {}).items():
        ms = float(source["latency_ms"])
        _add(cells, "source", f"{scope}|{source['status']}", ms)
        _add(cells, "source_ms", f"{scope}|{latency_bin(ms)}", ms)
    for scope in opened_breakers:
        _add(cells, "breaker", scope)
    elapsed = float(payload.get("decided_ms") or sum(durations_ms.values()))
    _add(cells, "latency", str(latency_bin(elapsed)), elapsed)
    for step, ms in durations_ms.items():
        _add(cells, "step", f"{step}|{latency_bin(ms)}", ms)
    if groups is not None:
        for dimension, group in groups.items():
            _add(cells, "fair", f"{dimension}|{group}|{outcome}", line)
            if scored and decision.get("pd") is not None:
                _add(cells, "fair_pd", f"{dimension}|{group}", float(decision["pd"]))
    return cells


def _scored_cells(cells: Cells, payload: Mapping[str, Any], decision: Mapping[str, Any],
                  outcome: str, line: float,
                  references: Mapping[str, DriftReference | None]) -> None:
    model = str(payload["model_version"])
    _add(cells, "model", model)
    if outcome == "approved" and decision.get("grade"):
        _add(cells, "grade", str(decision["grade"]), line)
    if outcome == "declined":
        for code in payload.get("reason_codes") or [r["code"] for r in payload["reasons"]]:
            _add(cells, "reason", str(code))
    reference = references.get(model)
    if reference is None:
        return
    score, pd = decision.get("score"), decision.get("pd")
    if score is not None:
        _add(cells, "score", f"{model}|{reference.score.key_of(float(score))}", float(score))
    if pd is not None:
        _add(cells, "pd", f"{model}|{reference.pd.key_of(float(pd))}", float(pd))
    values = payload.get("features", {})
    for name, bins in reference.features.items():
        value = values.get(name)
        key = bins.key_of(None if value is None or not math.isfinite(value) else float(value))
        _add(cells, "feature", f"{model}|{name}|{key}")


def _strategy_cells(cells: Cells, payload: Mapping[str, Any], strategy: Mapping[str, Any],
                    outcome: str, line: float, pd: float | None) -> None:
    name = strategy_key(str(strategy["name"]))
    role = str(strategy["role"])
    _add(cells, "strategy", f"{name}|{role}|{outcome}", line)
    if pd is not None:
        _add(cells, "strategy_pd", f"{name}|{role}", float(pd))
    for shadow in payload.get("shadows") or ():
        shadow_name = strategy_key(str(shadow["strategy"]))
        would = str(shadow.get("outcome") or FAILED)
        shadow_line = (float(shadow.get("credit_limit") or 0.0) if would == "approved"
                       else 0.0)
        _add(cells, "strategy", f"{shadow_name}|{SHADOW}|{would}", shadow_line)
        if shadow.get("scored") and shadow.get("pd") is not None:
            _add(cells, "strategy_pd", f"{shadow_name}|{SHADOW}", float(shadow["pd"]))
        _add(cells, "swap", f"{shadow_name}|{name}|{outcome}>{would}")


def merge(into: Cells, more: Cells) -> Cells:
    """Add ``more`` to ``into`` (the cells of a batch of decisions) and return it."""
    for key, (n, total) in more.items():
        cell = into.get(key)
        if cell is None:
            into[key] = [n, total]
        else:
            cell[0] += n
            cell[1] += total
    return into
